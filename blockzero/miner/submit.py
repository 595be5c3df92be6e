"""Commit, then reveal: the two chain steps of a submission, each inside its phase window.

Commit: the hotkey-bound hash (`bz1h`) while the commit phase is open. Reveal: only after the
commit phase has closed, upload the file in one hub commit and commit its revision (`bz1r`),
while the reveal phase is open. A hub failure is retried until the reveal phase ends; then the
miss is recorded and the miner carries on. A step whose window has passed is never attempted:
a late commitment scores zero and would spend chain quota for nothing.
"""

import logging
import time

import bittensor as bt

from blockzero.chain.port import Chain
from blockzero.hub.errors import HubError, HubRefused
from blockzero.hub.port import Hub
from blockzero.miner.cheats import SUBMISSION_FILE
from blockzero.miner.state import CycleRecord, Stage
from blockzero.protocol.commitments import HashCommitment, RevealCommitment, encode
from blockzero.protocol.cycle import CycleSchedule, Phase

logger = logging.getLogger(__name__)

HUB_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def hash_text(record: CycleRecord, hotkey: str) -> str:
    commitment = HashCommitment.bind(
        file_sha256=bytes.fromhex(record.file_sha256), hotkey=hotkey, cycle=record.cycle
    )
    return encode(commitment)


def _landed(chain: Chain, hotkey: str, text: str, stop: int) -> bool:
    """Whether our commitment `text` was on chain within the window ending before `stop`."""
    entry = chain.commitments(at_block=stop - 1).get(hotkey)
    return entry is not None and entry.data == text and entry.block < stop


def commit_hash(
    chain: Chain, schedule: CycleSchedule, wallet: bt.Wallet, record: CycleRecord
) -> CycleRecord:
    """WRITTEN -> COMMITTED, or MISSED when the commit phase has closed without our hash."""
    hotkey = wallet.hotkey.ss58_address
    start, stop = schedule.phase_window(record.cycle, Phase.COMMIT)
    text = hash_text(record, hotkey)
    head = chain.wait_for_block(start)
    if head >= stop:
        if _landed(chain, hotkey, text, stop):
            return record.model_copy(update={"stage": Stage.COMMITTED})
        return _missed(record, f"commit phase closed at block {stop} (now {head})")
    chain.publish_commitment(wallet, text)
    logger.info("cycle %d: committed hash at block %d", record.cycle, chain.current_block())
    return record.model_copy(update={"stage": Stage.COMMITTED})


def upload_file(
    chain: Chain, schedule: CycleSchedule, hub: Hub, repo_id: str, record: CycleRecord
) -> CycleRecord:
    """Upload the file once the reveal phase opens; retry until it closes. Sets `revision`."""
    start, stop = schedule.phase_window(record.cycle, Phase.REVEAL)
    chain.wait_for_block(start)
    size = record.file.stat().st_size
    for attempt in range(len(HUB_RETRY_S) + 1):
        if chain.current_block() >= stop:
            break
        began = time.monotonic()
        try:
            hub.ensure_repo(repo_id)
            revision = hub.upload(
                repo_id,
                {SUBMISSION_FILE: record.file},
                f"cycle {record.cycle} group {record.group}",
            )
        except HubError as e:
            wait = HUB_RETRY_S[min(attempt, len(HUB_RETRY_S) - 1)]
            if isinstance(e, HubRefused) and e.retry_after_s:
                wait = max(wait, e.retry_after_s)
            logger.warning(
                "cycle %d: upload failed (%s); retrying in %.0f s", record.cycle, e, wait
            )
            time.sleep(wait)
            continue
        logger.info(
            "cycle %d: uploaded %d bytes in %.1f s to %s@%s",
            record.cycle,
            size,
            time.monotonic() - began,
            repo_id,
            revision[:10],
        )
        return record.model_copy(update={"revision": revision})
    return _missed(record, f"upload did not succeed before the reveal phase closed at block {stop}")


def reveal(
    chain: Chain, schedule: CycleSchedule, wallet: bt.Wallet, repo_id: str, record: CycleRecord
) -> CycleRecord:
    """Commit where the file is (after `upload_file`); COMMITTED -> REVEALED or MISSED."""
    _, stop = schedule.phase_window(record.cycle, Phase.REVEAL)
    assert record.revision is not None, "reveal needs an uploaded revision"
    text = encode(RevealCommitment(cycle=record.cycle, revision=record.revision, repo_id=repo_id))
    head = chain.current_block()
    if head >= stop:
        if _landed(chain, wallet.hotkey.ss58_address, text, stop):
            return record.model_copy(update={"stage": Stage.REVEALED})
        return _missed(record, f"reveal phase closed at block {stop} (now {head})")
    chain.publish_commitment(wallet, text)
    logger.info("cycle %d: revealed %s@%s", record.cycle, repo_id, record.revision[:10])
    return record.model_copy(update={"stage": Stage.REVEALED})


def _missed(record: CycleRecord, reason: str) -> CycleRecord:
    logger.warning("cycle %d: missed: %s", record.cycle, reason)
    return record.model_copy(update={"stage": Stage.MISSED, "reason": reason})
