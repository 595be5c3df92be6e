"""The paired one-sided t-test Proof-of-Loss uses, with no dependency beyond the standard library.

Why a paired test: every submission is scored on the same held-out sequences as the base model,
so per-sequence differences remove the (large) variation between sequences and leave the effect
of the delta. Why one-sided: a submission is useful only if it lowers the loss. The Student-t
distribution function comes from the regularized incomplete beta function (continued fraction,
modified Lentz), accurate to ~1e-12, which is far below anything a score depends on.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 500


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_critical(alpha: float, df: float) -> float:
    """The one-sided critical value: P(T > t) = alpha, by bisection on the CDF."""
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    lo, hi = 0.0, 1.0
    while 1.0 - student_t_cdf(hi, df) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if 1.0 - student_t_cdf(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass(frozen=True)
class PairedTest:
    """Paired t-test of `before - after` (positive: the loss fell)."""

    n: int
    mean: float
    std: float
    t: float
    p_value: float

    @property
    def df(self) -> int:
        return self.n - 1


def paired_t_test(before: Sequence[float], after: Sequence[float]) -> PairedTest:
    """One-sided test of H1: mean(before - after) > 0. `p_value` = P(T >= t) under H0.

    All differences equal: t is +inf (mean > 0), 0 (mean == 0) or -inf, which is the limit of
    the statistic and what a zero delta (all differences 0) must get: no evidence of a gain.
    """
    if len(before) != len(after) or len(before) < 2:
        raise ValueError(
            f"need two paired samples of equal length >= 2, got {len(before)}, {len(after)}"
        )
    diffs = [b - a for b, a in zip(before, after, strict=True)]
    n = len(diffs)
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    std = math.sqrt(var)
    if std == 0.0:
        t = math.copysign(math.inf, mean) if mean != 0.0 else 0.0
    else:
        t = mean / (std / math.sqrt(n))
    return PairedTest(n=n, mean=mean, std=std, t=t, p_value=1.0 - student_t_cdf(t, n - 1))
