"""Known answers for the experiment statistics."""

from __future__ import annotations

import random

import pytest

from reports import stats


def test_the_difference_interval_matches_the_textbook_wald_interval() -> None:
    # 60/100 against 50/100: diff 0.10, SE sqrt(0.6·0.4/100 + 0.5·0.5/100) = sqrt(0.0049) = 0.07,
    # so the 95% interval is 0.10 ± 1.96·0.07 = (-0.0372, 0.2372).
    diff, lower, upper = stats.difference_interval(60, 100, 50, 100)
    assert diff == pytest.approx(0.10)
    assert lower == pytest.approx(-0.037198, abs=1e-6)
    assert upper == pytest.approx(0.237198, abs=1e-6)


def test_the_normal_cdf_matches_the_table() -> None:
    assert stats.normal_cdf(0) == 0.5
    assert stats.normal_cdf(1.959964) == pytest.approx(0.975, abs=1e-6)
    assert stats.normal_cdf(-1.644854) == pytest.approx(0.05, abs=1e-6)


def test_probability_to_beat_matches_sampling_from_the_beta_posteriors() -> None:
    # By hand: Beta(61, 41) has mean 0.598039 and variance 0.0023339; Beta(51, 51) 0.5 and 0.0024272,
    # so P = Φ(0.098039 / 0.069001) = Φ(1.42084) = 0.92232.
    assert stats.probability_to_beat(60, 100, 50, 100) == pytest.approx(0.92232, abs=1e-4)
    # The exact probability under the same Betas, by simulation (seeded): the approximation is close.
    draw = random.Random(8)
    wins = sum(draw.betavariate(61, 41) > draw.betavariate(51, 51) for _ in range(100_000))
    assert stats.probability_to_beat(60, 100, 50, 100) == pytest.approx(wins / 100_000, abs=0.01)


def test_equal_rates_are_a_coin_flip() -> None:
    assert stats.probability_to_beat(40, 100, 40, 100) == pytest.approx(0.5)


def test_a_comparison_reports_lift_interval_relative_lift_and_probability() -> None:
    result = stats.compare(saved=60, decided=100, control_saved=50, control_decided=100)
    assert result.enough and not result.significant  # the interval crosses zero
    assert (result.lift, result.relative) == (pytest.approx(0.10), pytest.approx(0.20))
    clear = stats.compare(saved=300, decided=1000, control_saved=200, control_decided=1000)
    # diff 0.10, SE sqrt(0.3·0.7/1000 + 0.2·0.8/1000) = 0.019235: (0.0623, 0.1377).
    assert clear.significant
    assert (clear.lower, clear.upper) == (pytest.approx(0.062300, abs=1e-5), pytest.approx(0.137700, abs=1e-5))
    assert clear.probability > 0.999


@pytest.mark.parametrize(("saved", "decided", "control_saved", "control_decided"), [
    (10, 29, 10, 100),   # under 30 decisions
    (3, 100, 50, 100),   # under 5 saves
    (98, 100, 50, 100),  # under 5 cancels
    (50, 100, 0, 0),     # a control nobody reached
])
def test_small_samples_are_not_enough_data(saved: int, decided: int, control_saved: int,
                                           control_decided: int) -> None:
    result = stats.compare(saved=saved, decided=decided, control_saved=control_saved,
                           control_decided=control_decided)
    assert not result.enough and result.lift is None and result.probability is None
