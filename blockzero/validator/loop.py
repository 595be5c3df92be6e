"""The validator's cycle, top to bottom (docs/validator.md, docs/cycle.md).

    sync the resident model to the canonical model of the cycle
    seed <- hash of the first reveal block; eval sets and base losses per group
    collect: who committed and revealed; fetch + verify in a pool, refuse replays of earlier
        cycles' accepted deltas, score the rest as they arrive
    duplicates, gains far below the group's peers; merge + gate (publisher only)
    save state (one atomic generation, with this cycle's accepted sketches), publish model +
    manifest commitment, set weights, publish evidence

The unit of failure is one cycle: chain, hub and model-file errors end that cycle with a log line
naming it, and the loop goes on with the next one. Anything else is a bug and stops the process.
"""

import dataclasses
import logging
import shutil

import bittensor as bt
import torch
from safetensors.torch import load_file

from blockzero.chain.errors import ChainError
from blockzero.chain.port import Chain
from blockzero.data.domains import load_data_config, load_domain
from blockzero.data.tokenizer import load_tokenizer
from blockzero.delta.outer import OuterConfig
from blockzero.delta.pseudo_gradient import global_norm
from blockzero.delta.submission import Expectation, SubmissionMeta
from blockzero.global_model import CanonicalModel, ModelCache, canonical_model
from blockzero.hub.errors import HubError
from blockzero.hub.port import Hub
from blockzero.model.group_rows import group_tensor_shapes, read_group_rows
from blockzero.model.shards import ManifestMismatch, read_model_files
from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.cycle import Phase
from blockzero.protocol.expert_groups import load_registry
from blockzero.protocol.manifest import MANIFEST_FILE, parse_manifest
from blockzero.protocol.seeds import SeedPurpose, derive_seed, evaluation_block
from blockzero.publish import publish_model
from blockzero.roster import assignment
from blockzero.settings import Settings
from blockzero.validator import collect
from blockzero.validator.collect import PastDelta
from blockzero.validator.evidence import (
    CycleEvidence,
    SubmissionRecord,
    evidence_file,
    write_evidence,
)
from blockzero.validator.merge import Accepted, combine, gate, step_group
from blockzero.validator.proof_of_loss import EvalSet, build_eval_set, judge
from blockzero.validator.records import (
    Scored,
    accepted,
    base_ref,
    cycle_records,
    group_records,
    no_eval_data,
    params,
    verdict,
)
from blockzero.validator.scoring import ResidentScorer
from blockzero.validator.state import StateStore, ValidatorState
from blockzero.validator.weights import ScoreBook, set_weights

logger = logging.getLogger(__name__)


class NoCanonicalModel(RuntimeError):
    """No `bz1m` commitment names a model yet: the owner has not published the initial one."""


class Validator:
    def __init__(
        self,
        *,
        settings: Settings,
        protocol: ProtocolConfig,
        chain: Chain,
        hub: Hub,
        wallet: bt.Wallet,
    ) -> None:
        self.settings, self.cfg = settings, settings.validator
        self.schedule, self.rule = protocol.cycle, protocol.miners
        self.chain, self.hub, self.wallet = chain, hub, wallet
        self.hotkey = wallet.hotkey.ss58_address
        self.registry = load_registry(self.cfg.registry)
        data = load_data_config(self.cfg.data)
        tokenizer = load_tokenizer(data.tokenizer)
        self.held_out = {d: load_domain(d, data, tokenizer).held_out for d in sorted(data.domains)}
        root = settings.paths.work_dir.expanduser() / "validator" / self.hotkey
        self.store = StateStore(root / "state")
        self.cache = ModelCache(root / "models")
        self.downloads = root / "downloads"
        self.evidence_dir = root / "evidence"
        self.state = self.store.load()
        self.sketches = self.store.load_sketches()
        self.scorer: ResidentScorer | None = None
        self.revision: str | None = None
        self.momentum: dict[str, torch.Tensor] = {}
        self.outer = OuterConfig.from_momentum(self.cfg.outer_lr, self.cfg.outer_momentum)

    @property
    def publishes(self) -> bool:
        return self.cfg.model_repo is not None

    def run(self, *, cycles: int | None = None) -> None:
        cycle = (
            self.state.cycle + 1
            if self.state
            else self.schedule.cycle_of(self.chain.current_block())
        )
        done = 0
        while cycles is None or done < cycles:
            window = self.schedule.phase_window(cycle, Phase.VALIDATE)
            self.chain.wait_for_block(window.start)
            if self.chain.current_block() >= window.stop:
                logger.warning("cycle %d: validate phase already over, skipping", cycle)
            else:
                try:
                    self.run_cycle(cycle)
                except (ChainError, HubError, ManifestMismatch, NoCanonicalModel) as e:
                    logger.error("cycle %d failed: %s: %s", cycle, type(e).__name__, e)
            cycle += 1
            done += 1

    def run_cycle(self, cycle: int) -> CycleEvidence:
        canon = self.sync_model(cycle)
        block = evaluation_block(self.schedule, cycle)
        block_hash = self.chain.block_hash(block)
        seed = derive_seed(block_hash, SeedPurpose.EVALUATION)
        eval_sets = self.eval_sets(seed)
        base = {g: self.scorer.eval_losses(s) for g, s in eval_sets.items()}
        groups, uids = assignment(
            self.chain, self.schedule, self.rule, [g.id for g in self.registry.groups], cycle
        )
        found = collect.candidates(self.chain, self.schedule, cycle, groups, uids)
        scored = self.score(cycle, canon, found, eval_sets, base)
        records, medians = cycle_records(
            found,
            scored,
            cosine_threshold=self.cfg.duplicate_cosine,
            min_relative_gain=self.cfg.min_relative_gain,
        )
        outcome = self.merge(scored, records, eval_sets, base) if self.publishes else {}
        scores = {r.hotkey: r.score for r in records}
        book = (self.state.scores if self.state else ScoreBook()).update(
            {n.uid: n.hotkey for n in self.chain.metagraph().neurons}, scores, self.cfg.ema_alpha
        )
        evidence = CycleEvidence(
            cycle=cycle,
            validator=self.hotkey,
            evaluation_block=block,
            block_hash=block_hash,
            seed=seed,
            base=base_ref(canon),
            params=params(self.cfg),
            groups=group_records(eval_sets, base, outcome, medians),
            submissions=records,
        )
        self.commit(cycle, canon, book, evidence, scored)
        return evidence

    def remember(
        self, cycle: int, records: list[SubmissionRecord], scored: dict[str, Scored]
    ) -> tuple[list[PastDelta], dict[str, torch.Tensor]]:
        """The accepted deltas of the last `replay_cycles` cycles, this one included, and their
        sketches: what the next cycles' replay check compares against."""
        window = self.cfg.replay_cycles
        old = [
            p
            for p in (self.state.history if self.state else [])
            if cycle - window < p.cycle < cycle
        ]
        new = [
            PastDelta(cycle=cycle, hotkey=r.hotkey, content_sha256=r.content_sha256)
            for r in (accepted(records) if window else [])
        ]
        sketches = {p.key: self.sketches[p.key] for p in old} | {
            p.key: scored[p.hotkey].verified.sketch for p in new
        }
        return old + new, sketches

    def commit(
        self,
        cycle: int,
        canon: CanonicalModel,
        book: ScoreBook,
        evidence: CycleEvidence,
        scored: dict[str, Scored],
    ) -> None:
        """Save, then publish the model, set weights and publish evidence; each step recorded."""
        history, sketches = self.remember(cycle, evidence.submissions, scored)
        state = ValidatorState(
            cycle=cycle,
            scores=book,
            parent_revision=canon.revision,
            has_model=self.publishes,
            history=history,
        )
        self.store.save(
            state,
            model=self.scorer.model if self.publishes else None,
            registry=self.registry,
            momentum=self.momentum,
            sketches=sketches,
        )
        self.state, self.sketches = state, sketches
        path = self.evidence_dir / f"cycle-{cycle}.json"
        write_evidence(path, evidence)
        if self.publishes:
            self.publish_model()
        set_weights(self.chain, self.wallet, book, cycle=cycle, network=self.settings.network)
        if self.cfg.evidence_repo is not None:
            self.hub.ensure_repo(self.cfg.evidence_repo)
            self.hub.upload(
                self.cfg.evidence_repo, {evidence_file(cycle): path}, f"evidence cycle {cycle}"
            )
            self.state = self.store.update(evidence_published=True)

    def publish_model(self) -> None:
        model_dir = self.store.model_dir()
        manifest = parse_manifest((model_dir / MANIFEST_FILE).read_bytes())
        commitment = publish_model(
            chain=self.chain,
            hub=self.hub,
            wallet=self.wallet,
            repo_id=self.cfg.model_repo,
            model_dir=model_dir,
            manifest=manifest,
        )
        self.revision = commitment.revision
        self.state = self.store.update(published_revision=commitment.revision)

    def resume(self) -> None:
        """A generation saved but not published (killed in between) is published now, if its
        cycle's validate phase is still open; later, the next cycle's canonical model rules."""
        s = self.state
        if s is None or not s.has_model or s.published_revision is not None or not self.publishes:
            return
        if self.chain.current_block() < self.schedule.phase_window(s.cycle, Phase.VALIDATE).stop:
            logger.info("cycle %d: publishing the saved, unpublished model", s.cycle)
            self.publish_model()

    def sync_model(self, cycle: int) -> CanonicalModel:
        """Make the resident model the canonical model miners of `cycle` trained on."""
        at = self.schedule.cycle_start(cycle)
        canon = canonical_model(self.chain, at_block=at, publisher=self.cfg.publisher)
        if canon is None:
            raise NoCanonicalModel(f"no model commitment as of block {at}")
        if self.scorer is not None and self.revision == canon.revision:
            return canon
        s = self.state
        if s is not None and s.has_model and s.published_revision == canon.revision:
            model, _, self.momentum = self.store.load_model(self.registry)
            logger.info("cycle %d: resumed model %s from saved state", cycle, canon.revision[:10])
        else:
            manifest, paths = self.cache.fetch_all(self.hub, canon)
            model = read_model_files(paths, manifest, self.registry)
            # Momentum belongs to the chain of models this validator merged; any other model
            # starts a new one.
            self.momentum = {}
            logger.info("cycle %d: loaded canonical model %s", cycle, canon.revision[:10])
        self.scorer = ResidentScorer(model, batch_size=self.cfg.batch_size, device=self.cfg.device)
        self.revision = canon.revision
        return canon

    def eval_sets(self, seed: int) -> dict[int, EvalSet]:
        n = self.cfg.eval_sequences
        built = {
            g.id: build_eval_set(g, self.held_out, seed=seed, num_sequences=n)
            for g in self.registry.groups
        }
        return {g: s for g, s in built.items() if s is not None}

    def score(
        self,
        cycle: int,
        canon: CanonicalModel,
        found: list[collect.Candidate],
        eval_sets: dict[int, EvalSet],
        base: dict[int, tuple[list[float], list[float]]],
    ) -> dict[str, Scored]:
        """Fetch and verify in the pool while this thread scores whatever has arrived."""
        adapter = self.scorer.adapter
        shapes = {g.id: group_tensor_shapes(adapter, g) for g in self.registry.groups}
        bounds = {
            g.id: self.cfg.max_delta_ratio * global_norm(read_group_rows(adapter, g))
            for g in self.registry.groups
        }

        def expect(c: collect.Candidate, codec: str) -> Expectation:
            meta = SubmissionMeta(
                base_revision=canon.revision,
                cycle=cycle,
                group=c.group,
                hotkey=c.hotkey,
                tokens=0,
                codec=codec,
            )
            return Expectation(
                shapes=shapes[c.group],
                meta=meta,
                max_bytes=self.cfg.max_submission_bytes,
                max_norm=bounds[c.group],
                codecs=frozenset(self.cfg.codecs),
                max_density=self.cfg.max_density,
            )

        work = self.downloads / f"cycle-{cycle}"
        shutil.rmtree(self.downloads, ignore_errors=True)
        todo = [c for c in found if c.reason is None]
        out: dict[str, Scored] = {}
        for c, got in collect.fetch_all(
            self.hub,
            todo,
            work,
            expect,
            workers=self.cfg.download_workers,
            max_bytes=self.cfg.max_submission_bytes,
            timeout_s=self.cfg.download_timeout_s,
            verify_in_pool=self.cfg.device != "cpu",
        ):
            if isinstance(got, collect.Verified):
                got = self.replay_of(cycle, got) or got
            if isinstance(got, collect.Refused):
                out[c.hotkey] = Scored(c, refused=got)
            elif c.group not in eval_sets:
                out[c.hotkey] = no_eval_data(c, got)
            else:
                domain, general = self.scorer.score(
                    self.registry.group(c.group), got.delta, eval_sets[c.group]
                )
                j = judge(
                    base[c.group][0],
                    domain,
                    base[c.group][1],
                    general,
                    significance=self.cfg.significance,
                    general_tolerance=self.cfg.general_tolerance,
                    min_gain=self.cfg.min_gain,
                )
                out[c.hotkey] = Scored(c, verified=dataclasses.replace(got, delta={}), judgement=j)
            logger.info("cycle %d: %s scored: %s", cycle, c.hotkey[:8], verdict(out[c.hotkey]))
        return out

    def replay_of(self, cycle: int, verified: collect.Verified) -> collect.Refused | None:
        return collect.replay_of(
            verified,
            cycle=cycle,
            past=self.state.history if self.state else [],
            sketches=self.sketches,
            window=self.cfg.replay_cycles,
            threshold=self.cfg.duplicate_cosine,
        )

    def merge(
        self,
        scored: dict[str, Scored],
        records: list[SubmissionRecord],
        eval_sets: dict[int, EvalSet],
        base: dict[int, tuple[list[float], list[float]]],
    ) -> dict[int, str]:
        """Combine and step each group with accepted deltas, then gate the whole update."""
        by_group: dict[int, list[Accepted]] = {}
        for r in accepted(records):
            v = scored[r.hotkey].verified
            delta = {k: t.float() for k, t in load_file(str(v.path)).items()}
            by_group.setdefault(r.group, []).append(Accepted(r.hotkey, r.score, v.norm, delta))
        undo = {
            g: step_group(
                self.scorer, self.registry.group(g), combine(by_group[g]), self.momentum, self.outer
            )
            for g in sorted(by_group)
        }
        self.revision = None
        domain_base = {g: base[g][0] for g in eval_sets}
        return gate(
            self.scorer,
            undo,
            eval_sets,
            domain_base,
            self.momentum,
            tolerance=self.cfg.general_tolerance,
        )
