"""The t-test against hand-computed and textbook values."""

import math

import pytest

from blockzero.validator.stats import paired_t_test, regularized_beta, student_t_cdf, t_critical


@pytest.mark.parametrize(
    ("t", "df", "expected"),
    [
        (0.0, 5, 0.5),
        (1.0, 1, 0.75),  # Cauchy: 1/2 + atan(1)/pi
        (-1.0, 1, 0.25),
        (2.0, 2, 0.5 + 2 / (2 * math.sqrt(6))),  # df=2: 1/2 + t / (2 sqrt(2 + t^2))
        (1.812461, 10, 0.95),  # textbook table
        (2.387008, 63, 0.99),
        (math.inf, 3, 1.0),
    ],
)
def test_student_t_cdf(t, df, expected):
    assert student_t_cdf(t, df) == pytest.approx(expected, abs=2e-5)


@pytest.mark.parametrize(
    ("alpha", "df", "expected"),
    [(0.05, 10, 1.812461), (0.025, 1, 12.706205), (0.01, 63, 2.387008), (0.01, 15, 2.602480)],
)
def test_one_sided_critical_values(alpha, df, expected):
    assert t_critical(alpha, df) == pytest.approx(expected, abs=1e-3)


def test_regularized_beta_symmetric_and_bounds():
    assert regularized_beta(2.0, 2.0, 0.5) == pytest.approx(0.5)
    assert regularized_beta(1.0, 1.0, 0.3) == pytest.approx(0.3)  # uniform
    assert regularized_beta(2.0, 3.0, 0.0) == 0.0
    assert regularized_beta(2.0, 3.0, 1.0) == 1.0


def test_paired_t_by_hand():
    # differences 0.1, 0.2, 0.1, 0.4: mean 0.2, sd sqrt(0.06/3), t = 0.2 / (sd / 2) = 2.8284
    test = paired_t_test([1.0, 2.0, 3.0, 4.0], [0.9, 1.8, 2.9, 3.6])
    assert test.mean == pytest.approx(0.2)
    assert test.std == pytest.approx(math.sqrt(0.02))
    assert test.t == pytest.approx(2 * math.sqrt(2))
    assert test.df == 3
    assert test.p_value == pytest.approx(0.03314, abs=1e-4)


def test_zero_and_constant_differences():
    assert paired_t_test([1.0, 2.0], [1.0, 2.0]).t == 0.0
    assert paired_t_test([1.0, 2.0], [0.5, 1.5]).t == math.inf
    assert paired_t_test([1.0, 2.0], [1.5, 2.5]).t == -math.inf


def test_needs_pairs():
    with pytest.raises(ValueError):
        paired_t_test([1.0], [1.0])
    with pytest.raises(ValueError):
        paired_t_test([1.0, 2.0], [1.0])
