"""Validator scoring throughput on the tiny model, next to the bare forward passes it is made of.

M synthetic submissions (random deltas, bf16, spread over the expert groups) are committed to a
local hub; the validator's pipeline then fetches and verifies them in its thread pool while the
main thread applies each delta in place, computes the per-sequence losses of its group's domain
and general sets, reverts and judges it. The baseline runs the same forward passes on the same
batches with nothing else. Both are printed side by side, with their ratio (target <= 1.3).

    python scripts/bench_validator.py --submissions 256 --device cuda
"""

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import torch

from blockzero.delta.pseudo_gradient import global_norm
from blockzero.delta.submission import Expectation, SubmissionMeta, write_submission
from blockzero.hub.local_hub import LocalHub
from blockzero.model.evaluation import sequence_losses
from blockzero.model.group_rows import group_tensor_shapes, read_group_rows
from blockzero.model.loading import build_model, read_model_config
from blockzero.protocol.commitments import HashCommitment, RevealCommitment
from blockzero.protocol.expert_groups import load_registry
from blockzero.validator import collect
from blockzero.validator.proof_of_loss import build_eval_set, judge
from blockzero.validator.scoring import ResidentScorer

ROOT = Path(__file__).resolve().parents[1]
BASE = "0" * 40


def _submissions(hub, scorer, registry, num: int, tmp: Path) -> list[collect.Candidate]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(num):
        group = registry.groups[i % len(registry.groups)]
        rows = read_group_rows(scorer.adapter, group)
        delta = {k: torch.randn(v.shape, generator=gen) * 1e-3 for k, v in rows.items()}
        hotkey = f"miner-{i:03d}"
        meta = SubmissionMeta(base_revision=BASE, cycle=1, group=group.id, hotkey=hotkey, tokens=1)
        path = write_submission(tmp / "files" / f"{hotkey}.safetensors", delta, meta)
        repo = f"miners/m{i:03d}"
        hub.ensure_repo(repo)
        revision = hub.upload(repo, {collect.SUBMISSION_FILE: path}, "cycle 1")
        digest = hashlib.sha256(path.read_bytes()).digest()
        out.append(
            collect.Candidate(
                hotkey=hotkey,
                uid=i,
                group=group.id,
                hash=HashCommitment.bind(file_sha256=digest, hotkey=hotkey, cycle=1),
                hash_block=1,
                reveal=RevealCommitment(cycle=1, revision=revision, repo_id=repo),
            )
        )
    return out


def _bare(scorer, todo, eval_sets, batch_size: int, sync) -> float:
    """The same forward passes on the same batches, and nothing else."""
    start = time.perf_counter()
    for c in todo:
        s = eval_sets[c.group]
        sequence_losses(scorer.model, s.domain_seqs, batch_size=batch_size, device=scorer.device)
        sequence_losses(scorer.model, s.general_seqs, batch_size=batch_size, device=scorer.device)
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=64)
    parser.add_argument("--eval-sequences", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    registry = load_registry(ROOT / "configs" / "groups" / "tiny-qwen3-moe.yaml")
    model = build_model(read_model_config(ROOT / "configs" / "models" / "tiny-qwen3-moe.yaml"))
    scorer = ResidentScorer(model, batch_size=args.batch_size, device=args.device)
    gen = torch.Generator().manual_seed(1)
    held = {
        g.domain: torch.randint(4, 260, (4 * args.eval_sequences, args.seq_len), generator=gen)
        for g in registry.groups
    }
    eval_sets = {
        g.id: build_eval_set(g, held, seed=7, num_sequences=args.eval_sequences)
        for g in registry.groups
    }
    base = {g: scorer.eval_losses(s) for g, s in eval_sets.items()}
    shapes = {g.id: group_tensor_shapes(scorer.adapter, g) for g in registry.groups}
    bounds = {g.id: 0.5 * global_norm(read_group_rows(scorer.adapter, g)) for g in registry.groups}

    def expect(c: collect.Candidate, codec: str) -> Expectation:
        meta = SubmissionMeta(
            base_revision=BASE, cycle=1, group=c.group, hotkey=c.hotkey, tokens=0, codec=codec
        )
        return Expectation(
            shapes=shapes[c.group], meta=meta, max_bytes=1 << 30, max_norm=bounds[c.group]
        )

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as tmp:
        hub = LocalHub(Path(tmp) / "hub")
        todo = _submissions(hub, scorer, registry, args.submissions, Path(tmp))
        bare, scoring, passed = [], [], 0
        for rep in range(args.repeats):
            bare.append(_bare(scorer, todo, eval_sets, args.batch_size, sync))
            start = time.perf_counter()
            passed = 0
            for c, got in collect.fetch_all(
                hub,
                todo,
                Path(tmp) / f"dl{rep}",
                expect,
                workers=args.workers,
                max_bytes=1 << 30,
                timeout_s=60,
                verify_in_pool=args.device != "cpu",
            ):
                assert isinstance(got, collect.Verified), got
                domain, general = scorer.score(
                    registry.group(c.group), got.delta, eval_sets[c.group]
                )
                b = base[c.group]
                passed += judge(
                    b[0], domain, b[1], general, significance=0.01, general_tolerance=0.01
                ).passed
            sync()
            scoring.append(time.perf_counter() - start)
            print(f"run {rep}: bare {bare[-1]:.2f} s, scoring {scoring[-1]:.2f} s", flush=True)
    bare_s, scoring_s = min(bare), min(scoring)

    tokens = 2 * args.eval_sequences * args.seq_len
    print(
        f"device {args.device}, {args.submissions} submissions, {2 * args.eval_sequences} sequences x {args.seq_len} tokens each ({tokens} tokens)"
    )
    print(f"bare forward passes : {bare_s:8.2f} s  {args.submissions / bare_s:8.1f} submissions/s")
    print(
        f"validator scoring   : {scoring_s:8.2f} s  {args.submissions / scoring_s:8.1f} submissions/s  (fetch + verify + apply + losses + revert + judge)"
    )
    print(
        f"ratio scoring / bare: {scoring_s / bare_s:.3f}  (best of {args.repeats} alternating runs each)   ({passed} of {args.submissions} random deltas passed)"
    )


if __name__ == "__main__":
    main()
