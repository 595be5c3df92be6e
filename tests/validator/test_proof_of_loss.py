"""Proof-of-Loss verdicts as a table, the finite-divisor rule, the gain rules (floor and
peers), and evaluation sampling."""

import math

import pytest
import torch

from blockzero.protocol.expert_groups import ExpertGroup
from blockzero.validator.evidence import Judgement, Reason, SubmissionRecord
from blockzero.validator.proof_of_loss import below_peers, build_eval_set, finite_mean, judge

BASE = [3.0, 3.2, 2.8, 3.1, 2.9, 3.0, 3.3, 2.7]
GENERAL = [3.0] * 8
BETTER = [
    b - d for b, d in zip(BASE, [0.10, 0.12, 0.09, 0.11, 0.10, 0.08, 0.12, 0.10], strict=True)
]


def _judge(after, general_after=GENERAL, min_gain=0.0):
    return judge(
        BASE,
        after,
        GENERAL,
        general_after,
        significance=0.01,
        general_tolerance=0.02,
        min_gain=min_gain,
    )


def test_significant_gain_passes_with_its_mean_as_score():
    j = _judge(BETTER)
    assert j.passed and j.reason is None
    assert j.score == pytest.approx(0.1025)
    assert j.t > j.t_critical


@pytest.mark.parametrize(
    ("after", "general", "reason"),
    [
        (BASE, GENERAL, Reason.NOT_SIGNIFICANT),  # zero delta: t = 0
        ([b + 0.1 for b in BASE], GENERAL, Reason.NOT_SIGNIFICANT),  # worse: t = -inf
        (
            [b + (0.3 if i % 2 else -0.3) for i, b in enumerate(BASE)],
            GENERAL,
            Reason.NOT_SIGNIFICANT,
        ),
        (BETTER, [3.05] * 8, Reason.FORGETTING),
        ([*BETTER[:-1], math.nan], GENERAL, Reason.NON_FINITE_LOSS),
        (BETTER, [*GENERAL[:-1], math.inf], Reason.NON_FINITE_LOSS),
    ],
)
def test_failures(after, general, reason):
    j = _judge(after, general)
    assert not j.passed and j.score == 0.0 and j.reason is reason


def test_a_significant_gain_below_the_floor_fails():
    """Noise-like: the same tiny gain on every sequence is highly significant, and worthless."""
    tiny = [b - 0.0005 - 0.0001 * (i % 3) for i, b in enumerate(BASE)]
    j = _judge(tiny, min_gain=0.001)
    assert j.t > j.t_critical
    assert not j.passed and j.score == 0.0 and j.reason is Reason.BELOW_MIN_GAIN
    assert _judge(tiny, min_gain=0.0).passed
    assert _judge(BETTER, min_gain=0.001).passed


def _record(hotkey: str, gain: float, *, group: int = 0, passed: bool = True, reason=None):
    j = Judgement(
        domain_losses=[],
        general_losses=[],
        domain_gain=gain,
        passed=passed,
        score=max(gain, 0.0) if passed else 0.0,
        reason=None if passed else Reason.NOT_SIGNIFICANT,
    )
    score = j.score if reason is None else 0.0
    return SubmissionRecord(
        hotkey=hotkey, uid=0, group=group, judgement=j, reason=reason or j.reason, score=score
    )


def _peers(records, ratio=0.25):
    out, medians = below_peers(records, min_relative_gain=ratio)
    return {r.hotkey: (r.reason, r.score) for r in out}, medians


def test_below_peers_refuses_noise_among_honest_peers_and_keeps_them():
    # The localnet's cycle-5 noise gain (0.0041) next to honest gains of the same run.
    got, medians = _peers([_record("h1", 0.0320), _record("h2", 0.0638), _record("noise", 0.0041)])
    assert medians == {0: 0.0320}
    assert got["noise"] == (Reason.BELOW_PEERS, 0.0)
    assert got["h1"] == (None, 0.0320) and got["h2"] == (None, 0.0638)


@pytest.mark.parametrize(
    ("gains", "refused"),
    [
        ([0.0041], set()),  # a lone passing submission is its own median: the floor rules it
        ([0.02, 0.02, 0.02], set()),  # ties
        # Two passing: the weaker goes only below r / (2 - r) = 1/7 of the other.
        ([0.007, 0.05], {"s0"}),  # 0.007 < 0.25 x 0.0285
        ([0.0072, 0.05], set()),  # 0.0072 >= 0.25 x 0.0286
        ([0.004, 0.004, 0.05], set()),  # cheaters who are the majority set the median
        ([0.003, 0.05, 0.06, 0.07], {"s0"}),
    ],
)
def test_below_peers_edge_cases(gains, refused):
    got, _ = _peers([_record(f"s{i}", g) for i, g in enumerate(gains)])
    assert {h for h, (reason, _) in got.items() if reason is Reason.BELOW_PEERS} == refused


def test_below_peers_bar_is_strict_so_a_tie_at_the_bar_passes():
    got, medians = _peers([_record("a", 0.25), _record("b", 1.0), _record("c", 1.0)])
    assert medians == {0: 1.0} and got["a"] == (None, 0.25)
    got, _ = _peers([_record("a", 0.2499), _record("b", 1.0), _record("c", 1.0)])
    assert got["a"][0] is Reason.BELOW_PEERS


def test_only_passing_originals_set_the_median():
    """Copies of a strong delta (already refused as duplicates) and failed submissions do not
    count: otherwise a miner could copy its own delta under other hotkeys to lift the bar."""
    records = [
        _record("strong", 0.10),
        _record("weak", 0.02),
        *[_record(f"copy{i}", 0.10, reason=Reason.DUPLICATE) for i in range(5)],
        _record("failed", -0.5, passed=False),
    ]
    got, medians = _peers(records)
    assert medians == {0: pytest.approx(0.06)}
    assert got["weak"] == (None, 0.02)
    assert got["copy0"] == (Reason.DUPLICATE, 0.0) and got["failed"][0] is Reason.NOT_SIGNIFICANT


def test_groups_are_judged_apart_and_order_does_not_matter():
    records = [
        _record("a0", 0.10, group=0),
        _record("b0", 0.01, group=0),
        _record("a1", 0.01, group=1),
        _record("b1", 0.012, group=1),
    ]
    got, medians = _peers(records)
    assert medians == {0: pytest.approx(0.055), 1: pytest.approx(0.011)}
    assert got["b0"][0] is Reason.BELOW_PEERS
    assert got["a1"] == (None, 0.01) and got["b1"] == (None, 0.012)
    assert _peers(records[::-1]) == (got, medians)


def test_no_passing_submission_means_no_median():
    got, medians = _peers([_record("x", -0.1, passed=False)])
    assert medians == {} and got["x"][0] is Reason.NOT_SIGNIFICANT


def test_nan_divisor_exploit_is_closed():
    """Dropping NaN sequences but dividing by all of them would shrink the loss by the NaN
    fraction; the mean divides by the finite count, and any NaN fails the submission."""
    assert finite_mean([2.0, math.nan, 4.0, math.nan]) == 3.0
    assert finite_mean([math.nan]) == math.inf
    half_nan = [math.nan if i % 2 else b - 1.0 for i, b in enumerate(BASE)]
    assert _judge(half_nan).reason is Reason.NON_FINITE_LOSS


def test_eval_sets_are_seeded_held_out_rows_from_own_and_other_domains():
    held = {d: torch.arange(40 * 4).view(40, 4) + 1000 * i for i, d in enumerate(["a", "b", "c"])}
    group = ExpertGroup(id=0, name="a", domain="a", experts={0: (0, 1)})
    one = build_eval_set(group, held, seed=5, num_sequences=8)
    again = build_eval_set(group, held, seed=5, num_sequences=8)
    other = build_eval_set(group, held, seed=6, num_sequences=8)
    assert one.domain_ids == again.domain_ids and one.general_ids == again.general_ids
    assert one.domain_ids != other.domain_ids
    assert torch.equal(one.domain_seqs, held["a"][one.domain_ids])
    assert all(i.split(":")[0] in ("b", "c") for i in one.general_ids)
    for row, name in zip(one.general_seqs, one.general_ids, strict=True):
        d, i = name.split(":")
        assert torch.equal(row, held[d][int(i)])
    missing = ExpertGroup(id=1, name="z", domain="z", experts={0: (2, 3)})
    assert build_eval_set(missing, held, seed=5, num_sequences=8) is None
