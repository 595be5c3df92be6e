"""A small local subnet for the explorer tests: a chain with two validators and four miners,
weights set, a global model committed, and three cycles of evidence (one hostile) on a local hub."""

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bittensor as bt

from blockzero.chain.local_chain import LocalChain
from blockzero.chain.local_schema import SubnetParams
from blockzero.hub.local_hub import LocalHub
from blockzero.protocol.commitments import ManifestCommitment, encode
from blockzero.protocol.expert_groups import ExpertGroupRegistry, contiguous_registry, save_registry
from blockzero.protocol.manifest import MANIFEST_FILE, ModelManifest
from blockzero.validator.evidence import (
    BaseModelRef,
    CycleEvidence,
    GroupRecord,
    Judgement,
    Reason,
    ScoringParams,
    SubmissionRecord,
    evidence_file,
)

NETUID = 1
BLOCK_TIME_S = 1.0
HEAD_AT_START = 1000
"""Genesis is this many blocks in the past, so the current cycle is well past 0."""
EVIDENCE_REPO = "val/evidence"
MODEL_REPO = "val/model"
HOSTILE_HOTKEY = '<img src=x onerror="alert(1)">'
HOSTILE_REASON = '</td><script>alert("pwned")</script>'


@dataclass(frozen=True)
class Subnet:
    work_dir: Path
    chain: LocalChain
    hub: LocalHub
    evidence: list[CycleEvidence]
    settings_args: list[str]


DOMAIN_LOSS = {
    "code": (3.1, -0.15),
    "prose": (3.4, -0.1),
    "math": (2.6, -0.2),
    "spare": (3.0, -0.05),
}
"""Mean base loss per domain at the first evidence cycle, and its change per cycle."""
EVIDENCE_CYCLES = (19, 20, 21)


def expected_losses(i: int) -> dict[str, float]:
    """The per-domain means `_evidence` builds for its i-th cycle (general: 4.0 - 0.1 i)."""
    return {d: a + b * i for d, (a, b) in DOMAIN_LOSS.items()} | {"general": 4.0 - 0.1 * i}


def _evidence(
    registry: ExpertGroupRegistry, miners: dict[int, str], validator: str, revision: str
) -> list[CycleEvidence]:
    """Three cycles as a validator writes them: three miners pass, one fails (hostile text)."""
    cycles = []
    for i, cycle in enumerate(EVIDENCE_CYCLES):
        losses = expected_losses(i)
        groups = [
            GroupRecord(
                group=g.id,
                domain=g.domain,
                domain_ids=[0, 1],
                general_ids=["code:0", "math:1"],
                base_domain_losses=[losses[g.domain] - 0.1, losses[g.domain] + 0.1],
                base_general_losses=[losses["general"] - 0.2, losses["general"] + 0.2],
                merged=g.id < 3,
            )
            for g in registry.groups
        ]
        submissions = []
        for group, (uid, hotkey) in enumerate(miners.items()):
            before = losses[registry.group(group).domain]
            honest = group < 3
            judgement = Judgement(
                domain_losses=[before - 0.15, before - 0.05] if honest else [before, before],
                general_losses=[losses["general"]] * 2,
                domain_gain=0.1 if honest else 0.0,
                passed=honest,
                score=0.1 if honest else 0.0,
                reason=None if honest else Reason.NOT_SIGNIFICANT,
                detail="" if honest else HOSTILE_REASON,
            )
            submissions.append(
                SubmissionRecord(
                    hotkey=hotkey if honest else HOSTILE_HOTKEY,
                    uid=uid,
                    group=group,
                    judgement=judgement,
                    score=judgement.score,
                )
            )
        cycles.append(
            CycleEvidence(
                cycle=cycle,
                validator=validator,
                evaluation_block=cycle * 45 + 34,
                block_hash="0x" + "ab" * 32,
                seed=cycle,
                base=BaseModelRef(
                    publisher=validator,
                    repo_id=MODEL_REPO,
                    revision=revision,
                    manifest_sha256="00" * 32,
                    cycle=cycle - 1,
                ),
                params=ScoringParams(
                    eval_sequences=2,
                    significance=0.01,
                    general_tolerance=0.01,
                    duplicate_cosine=0.97,
                    max_delta_ratio=1.0,
                ),
                groups=groups,
                submissions=submissions,
            )
        )
    return cycles


def commit_file(hub: LocalHub, repo: str, name: str, data: bytes, message: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return hub.upload(repo, {name: path}, message)


def make_subnet(tmp_path: Path, make_wallet: Callable[[str], bt.Wallet]) -> Subnet:
    work = tmp_path / "work"
    work.mkdir()
    path = work / "chain.db"
    genesis = time.time() - HEAD_AT_START * BLOCK_TIME_S
    LocalChain.create(
        path,
        [SubnetParams(netuid=NETUID, weights_rate_limit=0)],
        block_time_s=BLOCK_TIME_S,
        genesis_time=genesis,
    )
    chain = LocalChain(path, NETUID)
    validators = [make_wallet("val-a"), make_wallet("val-b")]
    miners = [make_wallet(f"miner-{i}") for i in range(4)]
    for wallet, stake in zip(validators, (3000.0, 1500.0), strict=True):
        chain.register(wallet.hotkey.ss58_address)
        chain.add_stake(wallet.hotkey.ss58_address, stake)
    miner_uids = [chain.register(w.hotkey.ss58_address) for w in miners]
    chain.set_weights(validators[0], miner_uids[:3], [0.5, 0.3, 0.2])
    chain.set_weights(validators[1], miner_uids[1:3], [1.0, 3.0])

    hub = LocalHub(tmp_path / "hub")
    registry = contiguous_registry(
        num_experts=16, top_k=2, moe_layers=(0, 1, 2, 3), domains=list(DOMAIN_LOSS)
    )
    registry_path = work / "groups.yaml"
    save_registry(registry, registry_path)
    manifest = ModelManifest(cycle=0, registry_sha256=registry.sha256(), dtype="float32", files={})
    hub.ensure_repo(MODEL_REPO)
    revision = commit_file(hub, MODEL_REPO, MANIFEST_FILE, manifest.canonical_json(), "cycle 0")
    early = LocalChain(path, NETUID, clock=lambda: genesis + 5 * BLOCK_TIME_S)
    commitment = ManifestCommitment(
        cycle=0, revision=revision, manifest_sha256=manifest.sha256(), repo_id=MODEL_REPO
    )
    early.publish_commitment(validators[0], encode(commitment))

    hotkeys = {uid: w.hotkey.ss58_address for uid, w in zip(miner_uids, miners, strict=True)}
    evidence = _evidence(registry, hotkeys, validators[0].hotkey.ss58_address, revision)
    hub.ensure_repo(EVIDENCE_REPO)
    for cycle in evidence:
        data = cycle.model_dump_json().encode()
        commit_file(
            hub, EVIDENCE_REPO, evidence_file(cycle.cycle), data, f"evidence cycle {cycle.cycle}"
        )
    args = [
        "--network",
        "local",
        "--netuid",
        str(NETUID),
        "--paths.work_dir",
        str(work),
        "--hub.local_root",
        str(hub.root),
        "--validator.registry",
        str(registry_path),
        "--validator.evidence_repo",
        EVIDENCE_REPO,
    ]
    return Subnet(work_dir=work, chain=chain, hub=hub, evidence=evidence, settings_args=args)
