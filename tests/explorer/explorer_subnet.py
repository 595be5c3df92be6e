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
from blockzero.explorer.evidence import EVIDENCE_FILE, CycleEvidence, SubmissionEvidence
from blockzero.hub.local_hub import LocalHub
from blockzero.protocol.commitments import ManifestCommitment, encode
from blockzero.protocol.expert_groups import load_registry
from blockzero.protocol.manifest import MANIFEST_FILE, ModelManifest

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "configs" / "groups" / "tiny-qwen3-moe.yaml"
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


def _evidence(miners: list[int], hotkeys: dict[int, str]) -> list[CycleEvidence]:
    cycles = []
    for i, cycle in enumerate((19, 20, 21)):
        submissions = [
            SubmissionEvidence(
                hotkey=hotkeys[uid],
                uid=uid,
                group=j,
                passed=True,
                loss_before=3.0 - 0.1 * i,
                loss_after=2.9 - 0.1 * i - 0.01 * j,
                improvement=0.1 + 0.01 * j,
            )
            for j, uid in enumerate(miners[:3])
        ]
        submissions.append(
            SubmissionEvidence(
                hotkey=HOSTILE_HOTKEY, uid=miners[3], group=3, passed=False, reason=HOSTILE_REASON
            )
        )
        losses = {"code": 3.1 - 0.15 * i, "prose": 3.4 - 0.1 * i, "math": 2.6 - 0.2 * i}
        cycles.append(CycleEvidence(cycle=cycle, global_losses=losses, submissions=submissions))
    return cycles


def commit_file(hub: LocalHub, repo: str, name: str, data: bytes, message: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
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
    registry = load_registry(REGISTRY)
    manifest = ModelManifest(cycle=0, registry_sha256=registry.sha256(), dtype="float32", files={})
    hub.ensure_repo(MODEL_REPO)
    revision = commit_file(hub, MODEL_REPO, MANIFEST_FILE, manifest.canonical_json(), "cycle 0")
    early = LocalChain(path, NETUID, clock=lambda: genesis + 5 * BLOCK_TIME_S)
    commitment = ManifestCommitment(
        cycle=0, revision=revision, manifest_sha256=manifest.sha256(), repo_id=MODEL_REPO
    )
    early.publish_commitment(validators[0], encode(commitment))

    hotkeys = {chain.uid(w.hotkey.ss58_address): w.hotkey.ss58_address for w in miners}
    evidence = _evidence(miner_uids, hotkeys)
    hub.ensure_repo(EVIDENCE_REPO)
    for cycle in evidence:
        data = cycle.model_dump_json().encode()
        commit_file(hub, EVIDENCE_REPO, EVIDENCE_FILE, data, f"evidence {cycle.cycle}")
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
        str(REGISTRY),
        "--validator.evidence_repo",
        EVIDENCE_REPO,
    ]
    return Subnet(work_dir=work, chain=chain, hub=hub, evidence=evidence, settings_args=args)
