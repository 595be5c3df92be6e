"""The miner on a local subnet: a full cycle the validator accepts, a missed commit phase, a
refused model, and restarts after a kill mid-training and after writing."""

import hashlib
import time

import pytest

from blockzero.delta.submission import Expectation, SubmissionMeta, read_submission
from blockzero.miner import loop, steps, submit
from blockzero.miner.cheats import SUBMISSION_FILE
from blockzero.miner.state import Stage
from blockzero.miner.steps import assigned_group
from blockzero.model.families import MoEAdapter
from blockzero.model.group_rows import group_tensor_shapes
from blockzero.model.loading import build_model
from blockzero.protocol.commitments import (
    HashCommitment,
    ManifestCommitment,
    RevealCommitment,
    decode,
    encode,
    submission_digest,
)
from blockzero.protocol.cycle import Phase
from blockzero.settings import load_protocol_config


def _verify_as_validator(subnet, tiny_config, record) -> None:
    """What the validator does for one miner: hash as of the commit phase, reveal, fetch, verify."""
    schedule = load_protocol_config(subnet.settings).cycle
    hotkey = subnet.miner_wallet.hotkey.ss58_address
    commit_stop = schedule.phase_window(record.cycle, Phase.COMMIT).stop
    reveal_stop = schedule.phase_window(record.cycle, Phase.REVEAL).stop
    subnet.chain.wait_for_block(reveal_stop)
    hashed = decode(subnet.chain.commitments(at_block=commit_stop - 1)[hotkey].data)
    revealed = decode(subnet.chain.commitments(at_block=reveal_stop - 1)[hotkey].data)
    assert isinstance(hashed, HashCommitment) and isinstance(revealed, RevealCommitment)
    assert hashed.cycle == revealed.cycle == record.cycle
    path = subnet.hub.download(
        revealed.repo_id,
        SUBMISSION_FILE,
        revealed.revision,
        max_bytes=1 << 26,
        timeout_s=10,
        dest_dir=subnet.tmp / "fetched",
    )
    file_sha = hashlib.sha256(path.read_bytes()).digest()
    assert hashed.digest == submission_digest(file_sha, hotkey, record.cycle)
    miner = subnet.miner()
    group = assigned_group(
        subnet.chain,
        schedule,
        miner.protocol.miners,
        miner.registry,
        hotkey=hotkey,
        cycle=record.cycle,
    )
    expectation = Expectation(
        shapes=group_tensor_shapes(MoEAdapter(build_model(tiny_config)), group),
        meta=SubmissionMeta(
            base_revision=subnet.model_commitment.revision,
            cycle=record.cycle,
            group=group.id,
            hotkey=hotkey,
            tokens=0,
        ),
        max_bytes=1 << 26,
        max_norm=1e3,
    )
    delta, meta = read_submission(path, expectation)
    assert meta.tokens > 0
    assert any(t.abs().sum() > 0 for t in delta.values())


def test_full_cycle_is_accepted_by_the_verifier(subnet, tiny_config):
    miner = subnet.miner()
    miner.run(cycles=1)
    (record,) = miner.state.records
    assert record.stage is Stage.REVEALED
    _verify_as_validator(subnet, tiny_config, record)


def test_missed_commit_phase_does_not_reveal(subnet, monkeypatch):
    miner = subnet.miner()
    real_write = loop.write_submission

    def slow_write(path, delta, meta):
        real_write(path, delta, meta)
        stop = miner.schedule.phase_window(meta.cycle, Phase.COMMIT).stop
        subnet.chain.wait_for_block(stop)

    monkeypatch.setattr(loop, "write_submission", slow_write)
    miner.run(cycles=1)
    (record,) = miner.state.records
    assert record.stage is Stage.MISSED
    assert "commit phase closed" in record.reason
    assert subnet.miner_wallet.hotkey.ss58_address not in subnet.chain.commitments()
    assert not (subnet.tmp / "hub" / miner.repo_id).exists()


@pytest.mark.parametrize("tamper", ["manifest_hash", "shard"])
def test_tampered_model_is_refused(subnet, tamper):
    c = subnet.model_commitment
    if tamper == "manifest_hash":
        bad = ManifestCommitment(
            cycle=c.cycle, revision=c.revision, manifest_sha256=bytes(32), repo_id=c.repo_id
        )
        subnet.chain.publish_commitment(subnet.validator, encode(bad))
    else:
        shard = subnet.tmp / "hub" / c.repo_id / "revisions" / c.revision / "group-1.safetensors"
        shard.chmod(0o644)
        data = bytearray(shard.read_bytes())
        data[-1] ^= 0xFF
        shard.write_bytes(bytes(data))
    miner = subnet.miner()
    cycle = miner.schedule.cycle_of(subnet.chain.current_block()) + 1
    subnet.chain.wait_for_block(miner.schedule.cycle_start(cycle))
    assert miner.train_and_write(cycle) is None
    assert subnet.miner_wallet.hotkey.ss58_address not in subnet.chain.commitments()


def test_restart_after_kill_mid_training_resumes(subnet, tiny_config, monkeypatch):
    real_train = steps.train

    def killed_after_one_step(*args, **kwargs):
        real_train(*args, **{**kwargs, "max_steps": 1})
        raise KeyboardInterrupt

    monkeypatch.setattr(steps, "train", killed_after_one_step)
    with pytest.raises(KeyboardInterrupt):
        subnet.miner().run(cycles=1)
    monkeypatch.setattr(steps, "train", real_train)
    miner = subnet.miner()
    assert miner.state.records == []
    miner.run(cycles=1)
    (record,) = miner.state.records
    assert record.stage is Stage.REVEALED
    _verify_as_validator(subnet, tiny_config, record)


def test_restart_after_kill_before_commit_commits_the_written_file(subnet, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(submit, "commit_hash", killed)
    with pytest.raises(KeyboardInterrupt):
        subnet.miner().run(cycles=1)
    monkeypatch.undo()
    miner = subnet.miner()
    (written,) = miner.state.records
    assert written.stage is Stage.WRITTEN
    miner.run(cycles=1)
    (record,) = miner.state.records
    assert record.stage is Stage.REVEALED
    assert (record.cycle, record.file_sha256) == (written.cycle, written.file_sha256)


def test_unreachable_chain_backs_off_and_retries(subnet, monkeypatch):
    from blockzero.chain.errors import ChainUnavailable

    miner = subnet.miner()
    real = miner.next_cycle
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ChainUnavailable("connection refused")
        return real()

    monkeypatch.setattr(miner, "next_cycle", flaky)
    monkeypatch.setattr(loop.time, "sleep", lambda s: None)
    monkeypatch.setattr(miner, "run_cycle", lambda cycle: cycle)
    miner.run(cycles=1)
    assert len(calls) == 3
