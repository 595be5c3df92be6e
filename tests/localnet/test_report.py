"""The report from synthetic records: files written, the outcome computed as the demo claims it
(loss fell, honest miners hold the incentive, validators agree) and the summary's tables."""

from pathlib import Path

import pytest

from blockzero.explorer.evidence import CycleSummary, SubmissionSummary
from blockzero.localnet.config import LocalnetConfig
from blockzero.localnet.records import CycleRecord, HeldOut, RunRecord
from blockzero.localnet.report import outcome, write_report
from blockzero.localnet.setup import Layout, Node
from blockzero.miner.cheats import Strategy

PNG = b"\x89PNG\r\n\x1a\n"
STRATEGIES = [Strategy.HONEST, Strategy.HONEST, Strategy.NOISE]


def nodes() -> list[Node]:
    validators = [
        Node(name=f"validator-{i}", role="validator", hotkey=f"v{i}", uid=i, flags=[])
        for i in range(2)
    ]
    miners = [
        Node(name=f"miner-{i}", role="miner", hotkey=f"m{i}", uid=2 + i, strategy=s, flags=[])
        for i, s in enumerate(STRATEGIES)
    ]
    return validators + miners


def summary(cycle: int, validator: str, drift: float) -> CycleSummary:
    subs = [
        SubmissionSummary(
            hotkey=f"m{i}",
            uid=2 + i,
            group=i,
            passed=s is Strategy.HONEST,
            reason=None if s is Strategy.HONEST else "not_significant",
            improvement=0.05 + drift if s is Strategy.HONEST else -0.001,
            score=0.05 + drift if s is Strategy.HONEST else 0.0,
        )
        for i, s in enumerate(STRATEGIES)
    ]
    return CycleSummary(
        cycle=cycle,
        validator=validator,
        base_revision="a" * 40,
        global_losses={"code": 2.5},
        merged_groups=[0, 1],
        submissions=subs,
    )


def record(tmp_path: Path, *, drift: float = 0.0) -> RunRecord:
    layout = Layout(
        work_dir=tmp_path,
        settings_file=tmp_path / "settings.yaml",
        registry_file=tmp_path / "registry.yaml",
        first_cycle=1,
        init_seconds=42.0,
        loss_before_warmup={"code": 5.5},
        loss_after_warmup={"code": 2.8},
        nodes=nodes(),
    )
    cycles = [
        CycleRecord(
            cycle=c,
            evidence={"validator-0": summary(c, "v0", 0.0), "validator-1": summary(c, "v1", drift)},
            weights={0: {2: 0.5, 3: 0.5}, 1: {2: 0.5, 3: 0.5}},
            incentive={2: 0.5, 3: 0.5},
        )
        for c in (1, 2)
    ]
    held_out = [
        HeldOut(
            cycle=c, revision=f"{c:040d}", losses={"code": 2.8 - 0.1 * c, "math": 1.9 - 0.1 * c}
        )
        for c in (0, 1, 2)
    ]
    return RunRecord(
        config=LocalnetConfig(miners=3, cheaters=1, cheats=[Strategy.NOISE], cycles=2),
        layout=layout,
        cycles=cycles,
        held_out=held_out,
        setup_seconds=60.0,
        wall_seconds=300.0,
        load_average=[0.1, 1.0, 2.0],
    )


def test_report_files(tmp_path: Path) -> None:
    out = write_report(record(tmp_path))
    for name in ("loss.png", "weights.png"):
        assert (out / name).read_bytes().startswith(PNG)
    assert RunRecord.model_validate_json((out / "records.json").read_text()) == record(tmp_path)
    text = (out / "summary.md").read_text()
    assert "| 2 | 2.6000 | 1.7000 | 2.1500 |" in text
    assert "| 4 | miner-2 | noise | 0/2 | 0.0% | 0.000 | 0.000 |" in text
    assert "| 2 | miner-0 | honest | 2/2 | 50.0% | 0.500 | 0.500 |" in text


def test_outcome(tmp_path: Path) -> None:
    result = outcome(record(tmp_path))
    assert result.loss_fell
    assert (result.loss_start, result.loss_end) == pytest.approx((2.35, 2.15))
    assert result.honest_incentive == 1.0 and result.cheater_incentive == 0.0
    assert result.honest_without_weight == []
    assert result.validators_agree and result.max_score_difference == 0.0


def test_outcome_flags_disagreeing_validators(tmp_path: Path) -> None:
    result = outcome(record(tmp_path, drift=1e-3))
    assert result.verdicts_agree and not result.validators_agree
    assert abs(result.max_score_difference - 1e-3) < 1e-12
