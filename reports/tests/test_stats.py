"""The experiment statistics, checked against SciPy and statsmodels (test-only dependencies), edge cases
included: small, unequal and extreme arms, several variants, and a page read every day."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from reports import stats

ARMS = [(55, 100, 40, 100), (4, 12, 9, 15), (0, 1000, 200, 1000), (1, 30, 0, 60), (30, 30, 12, 40),
        (0, 5, 0, 7), (7000, 20000, 6500, 20000), (3, 60, 9, 58)]


@pytest.mark.parametrize(("s1", "n1", "s2", "n2"), ARMS)
def test_the_difference_interval_is_newcombes_as_statsmodels_computes_it(s1: int, n1: int, s2: int, n2: int) -> None:
    diff, lower, upper = stats.newcombe_interval(s1, n1, s2, n2)
    low, high = confint_proportions_2indep(s1, n1, s2, n2, method="newcomb", compare="diff")
    assert diff == pytest.approx(s1 / n1 - s2 / n2)
    assert (lower, upper) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert stats.wilson_interval(s1, n1) == pytest.approx(proportion_confint(s1, n1, method="wilson"), abs=1e-12)


def test_an_extreme_arm_is_compared_with_an_interval_excluding_zero() -> None:
    result = stats.compare(count=0, decisions=1000, control_count=200, control_decisions=1000)
    assert result.rate == 0.0 and result.lift == pytest.approx(-0.2)
    assert result.lower is not None and result.upper is not None
    assert -0.25 < result.lower < result.upper < 0  # excludes zero: the arm is shown, not hidden
    assert result.p_beat_control is not None and result.p_beat_control < 1e-12


def _reference_beat(s1: int, n1: int, s2: int, n2: int) -> float:
    """P(X1 > X2) = ∫ f1(x) F2(x) dx, by SciPy's adaptive quadrature around the mass."""
    x1, x2 = scipy_stats.beta(1 + s1, 1 + n1 - s1), scipy_stats.beta(1 + s2, 1 + n2 - s2)
    low = max(0.0, min(x1.ppf(1e-12), x2.ppf(1e-12)))
    high = min(1.0, max(x1.isf(1e-12), x2.isf(1e-12)))
    value, _ = integrate.quad(lambda x: x1.pdf(x) * x2.cdf(x), low, high, limit=500, epsabs=1e-13, epsrel=1e-11,
                              points=[x1.mean(), x2.mean()])
    return value


@pytest.mark.parametrize(("s1", "n1", "s2", "n2"), [*ARMS, (9, 20, 5, 20), (30, 60, 20, 60), (2, 3, 1, 4),
                                                    (25000, 50000, 24500, 50000), (3000, 9000, 2950, 9000)])
def test_the_probability_to_beat_control_is_exact_not_a_normal_approximation(s1: int, n1: int, s2: int,
                                                                             n2: int) -> None:
    assert stats.probability_to_beat(s1, n1, s2, n2) == pytest.approx(_reference_beat(s1, n1, s2, n2), abs=2e-6)


def test_the_probability_to_beat_is_a_coin_flip_for_equal_arms_and_symmetric() -> None:
    assert stats.probability_to_beat(12, 40, 12, 40) == pytest.approx(0.5, abs=1e-12)
    assert stats.probability_to_beat(9, 20, 5, 20) + stats.probability_to_beat(5, 20, 9, 20) == pytest.approx(1)


@pytest.mark.parametrize(("s1", "n1", "s2", "n2"), ARMS)
def test_p_values_are_the_pooled_z_test(s1: int, n1: int, s2: int, n2: int) -> None:
    if s1 + s2 in (0, n1 + n2):
        assert stats.two_proportion_p_value(s1, n1, s2, n2) == 1.0
        return
    _, expected = proportions_ztest([s1, s2], [n1, n2])
    assert stats.two_proportion_p_value(s1, n1, s2, n2) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_holm_adjusts_as_statsmodels_does() -> None:
    p_values = [0.01, 0.04, 0.03, 0.2, 0.0001]
    assert stats.holm(p_values) == pytest.approx(list(multipletests(p_values, method="holm")[1]))


@pytest.mark.parametrize(("observed", "weights"), [([480, 520], [1, 1]), ([1000, 1300], [1, 1]),
                                                   ([90, 460, 450], [10, 45, 45]), ([5, 0, 9], [1, 1, 2])])
def test_the_sample_ratio_check_is_the_chi_square_goodness_of_fit(observed: list[int], weights: list[int]) -> None:
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    assert stats.chi_square_p_value(observed, weights) == pytest.approx(
        scipy_stats.chisquare(observed, expected).pvalue, rel=1e-9, abs=1e-300)


def test_the_sample_size_is_fixed_in_advance_by_the_textbook_formula() -> None:
    z = scipy_stats.norm.ppf
    for points, comparisons in ((0.05, 1), (0.05, 2), (0.02, 3)):
        expected = 2 * 0.25 * (z(1 - 0.05 / comparisons / 2) + z(0.8)) ** 2 / points ** 2
        assert stats.sample_size_per_arm(points=points, comparisons=comparisons) == int(-(-expected // 1))


def test_several_identical_arms_read_every_day_rarely_call_a_winner() -> None:
    """Three identical arms, the page read every day for 30 days: the fixed-horizon rule (and Holm) keep
    the chance of any false winner near 5%, where daily unadjusted looks gave 45%."""
    from reports.experiments import Arm, _verdict

    draws = np.random.default_rng(7).binomial(120, 0.3, size=(300, 30, 3))
    needed = stats.sample_size_per_arm(points=0.05, comparisons=2)
    false_winners, runs = 0, 300
    for run in range(runs):
        arms = [Arm(variant_id=i, code=code, name=code, is_control=i == 0, weight=1, is_active=True)
                for i, code in enumerate(("control", "a", "b"))]
        called = False
        for day in range(30):
            for index, arm in enumerate(arms):
                arm.daily["saved"][day] = [int(draws[run, day, index]), 120]  # type: ignore[index]
            if _verdict(arms, arms[0], "saved", needed)["winner"] is not None:
                called = True
        false_winners += called
    assert false_winners / runs < 0.09
