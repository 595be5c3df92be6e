"""Proof-of-Loss verdicts as a table, the finite-divisor rule, and evaluation sampling."""

import math

import pytest
import torch

from blockzero.protocol.expert_groups import ExpertGroup
from blockzero.validator.evidence import Reason
from blockzero.validator.proof_of_loss import build_eval_set, finite_mean, judge

BASE = [3.0, 3.2, 2.8, 3.1, 2.9, 3.0, 3.3, 2.7]
GENERAL = [3.0] * 8
BETTER = [
    b - d for b, d in zip(BASE, [0.10, 0.12, 0.09, 0.11, 0.10, 0.08, 0.12, 0.10], strict=True)
]


def _judge(after, general_after=GENERAL):
    return judge(BASE, after, GENERAL, general_after, significance=0.01, general_tolerance=0.02)


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
