"""The miner's cycle loop, driven by the chain's block height.

    run: check the hotkey is registered, then for each cycle it can still make:
      run_cycle: find the model -> my group -> fetch -> train -> write -> commit -> reveal

State is saved after every step (state.py), so a restart picks up a written or committed file
while its phase is still open. Infrastructure errors (chain or hub unreachable) back off and
retry; a refused model (hash mismatch) skips the cycle and waits for a valid one.
"""

import logging
import time

import bittensor as bt

from blockzero.chain.errors import ChainError, NotRegistered
from blockzero.chain.port import Chain
from blockzero.data.domains import DomainCorpus, load_data_config, load_domain
from blockzero.data.tokenizer import load_tokenizer
from blockzero.delta.codecs import CODECS
from blockzero.delta.feedback import ErrorFeedback
from blockzero.delta.hashing import sha256_file
from blockzero.delta.submission import SubmissionMeta, write_submission
from blockzero.global_model import ModelCache, canonical_model
from blockzero.hub.errors import HubError
from blockzero.hub.port import Hub
from blockzero.miner import submit
from blockzero.miner.cheats import Strategy, apply_strategy, latest_revealed_delta
from blockzero.miner.fetch import prune_cache, update_model
from blockzero.miner.state import CycleRecord, Stage, StateStore
from blockzero.miner.steps import (
    TrainSetup,
    assigned_group,
    check_registered,
    order_seed,
    prune_submissions,
    train_deadline,
    train_group,
)
from blockzero.model.group_rows import GroupTensors
from blockzero.model.shards import ManifestMismatch, read_model_files
from blockzero.model.training import NonFiniteLossError
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.expert_groups import ExpertGroup, load_registry
from blockzero.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_TIME_S = 12.0
MAX_BACKOFF_S = 60.0


class ConfigError(ValueError):
    """The miner's configuration cannot work (e.g. a group's domain has no data)."""


class Miner:
    def __init__(
        self,
        *,
        settings: Settings,
        protocol: ProtocolConfig,
        chain: Chain,
        hub: Hub,
        wallet: bt.Wallet,
    ) -> None:
        cfg = settings.miner
        self.cfg, self.protocol, self.chain, self.hub, self.wallet = (
            cfg,
            protocol,
            chain,
            hub,
            wallet,
        )
        self.schedule = protocol.cycle
        self.hotkey = wallet.hotkey.ss58_address
        self.registry = load_registry(cfg.registry)
        self.data = load_data_config(cfg.data)
        missing = sorted({g.domain for g in self.registry.groups} - set(self.data.domains))
        if missing:
            raise ConfigError(f"{cfg.data} has no data for the registry's domains {missing}")
        owner = settings.hub.repo_owner
        if owner is None and settings.hub.backend != "local":
            raise ConfigError(
                "set hub.repo_owner (your Hugging Face user or org) to publish deltas"
            )
        self.repo_id = f"{owner or self.hotkey}/{cfg.repo_name}"
        self.dir = settings.paths.work_dir.expanduser() / "miner" / self.hotkey
        self.cache = ModelCache(self.dir / "models")
        self.store = StateStore(self.dir / "state.json")
        self.feedback = ErrorFeedback(self.dir / "residual.safetensors")
        self.state = self.store.load()
        self.block_time_s = cfg.block_time_s or getattr(chain, "block_time_s", DEFAULT_BLOCK_TIME_S)
        self.setup = self._train_setup()
        self._corpora: dict[str, DomainCorpus] = {}
        self._attempted = -1

    def _train_setup(self) -> TrainSetup:
        return TrainSetup.from_settings(self.cfg)

    def run(self, *, cycles: int | None = None) -> None:
        """Mine until `cycles` cycles produced a submission (forever when None). Infrastructure
        errors back off and retry; they never end the loop."""
        check_registered(self.chain, self.hotkey)
        done, backoff = 0, 1.0
        while cycles is None or done < cycles:
            try:
                record = self.run_cycle(self.next_cycle())
                done, backoff = done + (record is not None), 1.0
            except NotRegistered:
                raise
            except (ChainError, HubError, TimeoutError, ConnectionError) as e:
                logger.warning("infrastructure error (%s); retrying in %.0f s", e, backoff)
                time.sleep(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF_S)

    def next_cycle(self) -> int:
        """The cycle to work on now: one with a pending file, the current one if enough of its
        train phase is left, else the next (after waiting for it to start)."""
        head = self.chain.current_block()
        cycle = self.schedule.cycle_of(head)
        self._expire_pending(before=cycle)
        record = self.state.record(cycle)
        if record is not None:
            if record.stage in (Stage.WRITTEN, Stage.COMMITTED):
                return cycle
        elif cycle > self._attempted and self._train_time_left(cycle) >= self.cfg.min_train_s:
            return cycle
        self.chain.wait_for_block(self.schedule.cycle_start(cycle + 1))
        return cycle + 1

    def _expire_pending(self, *, before: int) -> None:
        """Submissions of past cycles that never got revealed (the miner was down) are missed."""
        for r in self.state.records:
            if r.cycle < before and r.stage in (Stage.WRITTEN, Stage.COMMITTED):
                reason = f"miner was down until cycle {before}"
                self._save(r.model_copy(update={"stage": Stage.MISSED, "reason": reason}))

    def _train_time_left(self, cycle: int) -> float:
        deadline = train_deadline(
            self.chain,
            self.schedule,
            cycle,
            block_time_s=self.block_time_s,
            headroom_s=self.cfg.headroom_s,
        )
        return deadline - time.monotonic()

    def run_cycle(self, cycle: int) -> CycleRecord | None:
        """Take `cycle` as far as its phases allow; None when the cycle was skipped."""
        record = self.state.record(cycle)
        if record is None:
            self._attempted = cycle
            record = self.train_and_write(cycle)
            if record is None:
                return None
            self._save(record)
        if record.stage is Stage.WRITTEN:
            record = self._save(submit.commit_hash(self.chain, self.schedule, self.wallet, record))
        if record.stage is Stage.COMMITTED and record.revision is None:
            record = self._save(
                submit.upload_file(self.chain, self.schedule, self.hub, self.repo_id, record)
            )
        if record.stage is Stage.COMMITTED:
            record = self._save(
                submit.reveal(self.chain, self.schedule, self.wallet, self.repo_id, record)
            )
        prune_submissions(self.dir / "submissions", {r.file for r in self.state.records[-2:]})
        return record

    def train_and_write(self, cycle: int) -> CycleRecord | None:
        """Find the model and the group, fetch, train and write the file; None skips the cycle."""
        canon = canonical_model(
            self.chain, at_block=self.schedule.cycle_start(cycle), publisher=self.cfg.publisher
        )
        if canon is None:
            logger.warning("cycle %d: no model committed on chain yet; waiting", cycle)
            return None
        group = assigned_group(
            self.chain,
            self.schedule,
            self.protocol.miners,
            self.registry,
            hotkey=self.hotkey,
            cycle=cycle,
        )
        if group is None:
            return None
        try:
            manifest = self.cache.manifest(self.hub, canon)
            local = update_model(
                self.cache,
                self.hub,
                canon,
                manifest,
                self.state.held,
                group_id=group.id,
                cycle=cycle,
                max_stale_cycles=self.cfg.max_stale_cycles,
            )
            model = read_model_files(local.paths, local.manifest, self.registry)
        except ManifestMismatch as e:
            logger.error(
                "cycle %d: refusing model %s: %s; waiting for a valid one",
                cycle,
                canon.revision[:10],
                e,
            )
            return None
        prune_cache(self.cache, self.state.held)
        seed = order_seed(self.hotkey, cycle)
        deadline = train_deadline(
            self.chain,
            self.schedule,
            cycle,
            block_time_s=self.block_time_s,
            headroom_s=self.cfg.headroom_s,
        )
        try:
            report, delta = train_group(
                model, group, self._corpus(group), self.setup, seed=seed, deadline=deadline
            )
        except (NonFiniteLossError, ValueError) as e:
            logger.error("cycle %d: training failed: %s", cycle, e)
            return None
        delta = self._apply_strategy(delta, seed)
        path = self.dir / "submissions" / f"cycle-{cycle}.safetensors"
        meta = SubmissionMeta(
            base_revision=canon.revision,
            cycle=cycle,
            group=group.id,
            hotkey=self.hotkey,
            tokens=report.tokens,
            codec=self.cfg.codec,
            density=self.cfg.density if CODECS[self.cfg.codec].sparse else None,
        )
        delta = self.feedback.add(delta, meta, parent_revision=manifest.parent_revision)
        write_submission(path, delta, meta)
        self.feedback.keep(delta, meta)
        logger.info(
            "cycle %d group %d: %d steps, %d tokens, loss %.4f -> %.4f, %.0f tok/s, peak %.0f MiB, "
            "fetched %d bytes",
            cycle,
            group.id,
            report.steps,
            report.tokens,
            report.loss_start,
            report.loss_end,
            report.tokens_per_second,
            report.peak_memory_bytes / 2**20,
            local.bytes_fetched,
        )
        return CycleRecord(
            cycle=cycle,
            group=group.id,
            base_revision=canon.revision,
            file=path,
            file_sha256=sha256_file(path),
            tokens=report.tokens,
            stage=Stage.WRITTEN,
        )

    def _apply_strategy(self, delta: GroupTensors, seed: int) -> GroupTensors:
        strategy = Strategy(self.cfg.strategy)
        copied = None
        if strategy.copies:
            copied = latest_revealed_delta(
                self.chain, self.hub, own_hotkey=self.hotkey, source=self.cfg.copy_from, like=delta
            )
        return apply_strategy(strategy, delta, copied=copied, seed=seed)

    def _corpus(self, group: ExpertGroup) -> DomainCorpus:
        if group.domain not in self._corpora:
            tokenizer = load_tokenizer(self.data.tokenizer)
            self._corpora[group.domain] = load_domain(group.domain, self.data, tokenizer)
        return self._corpora[group.domain]

    def _save(self, record: CycleRecord) -> CycleRecord:
        self.state.put(record)
        self.store.save(self.state)
        return record
