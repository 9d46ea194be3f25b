"""The statistics behind the experiment report, in one small module with known answers in its tests.

- Save rate: saved / decided, a proportion.
- Lift over control: the difference of two proportions, p_variant - p_control (percentage points), with
  a 95% Wald interval: diff ± 1.96 · sqrt(p1(1-p1)/n1 + p2(1-p2)/n2). Also shown relative to the
  control's rate.
- Probability to beat control: each rate's posterior is Beta(1 + saved, 1 + not saved) (a uniform
  prior); P(variant > control) uses the normal approximation of those two Betas,
  Φ((m_v - m_c) / sqrt(s_v² + s_c²)), close to the exact value once each arm has the samples the
  "enough data" rule below asks for.
- Not enough data yet: both arms need at least MIN_DECIDED decisions and at least MIN_OUTCOMES saves
  and MIN_OUTCOMES non-saves (the usual condition for the normal approximation); below that the report
  says so instead of printing a misleading percentage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal
MIN_DECIDED = 30
MIN_OUTCOMES = 5


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def enough_data(successes: int, trials: int) -> bool:
    return trials >= MIN_DECIDED and successes >= MIN_OUTCOMES and trials - successes >= MIN_OUTCOMES


def difference_interval(s1: int, n1: int, s2: int, n2: int, *, z: float = Z_95) -> tuple[float, float, float]:
    """p1 - p2 and its Wald interval (lower, upper)."""
    p1, p2 = s1 / n1, s2 / n2
    diff = p1 - p2
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return diff, diff - half, diff + half


def probability_to_beat(s1: int, n1: int, s2: int, n2: int) -> float:
    """P(rate 1 > rate 2) under Beta(1+s, 1+n-s) posteriors, by their normal approximation."""
    def moments(s: int, n: int) -> tuple[float, float]:
        a, b = 1 + s, 1 + n - s
        mean = a / (a + b)
        return mean, a * b / ((a + b) ** 2 * (a + b + 1))

    m1, v1 = moments(s1, n1)
    m2, v2 = moments(s2, n2)
    return normal_cdf((m1 - m2) / math.sqrt(v1 + v2))


@dataclass(frozen=True)
class Comparison:
    """One variant against the control; `enough` False means show "not enough data yet" instead."""

    enough: bool
    lift: float | None = None            # percentage points as a fraction: 0.05 is +5 points
    lower: float | None = None
    upper: float | None = None
    relative: float | None = None        # lift / control rate: 0.25 is 25% better
    probability: float | None = None     # that the variant beats the control

    @property
    def significant(self) -> bool:
        return self.enough and self.lower is not None and self.upper is not None and (self.lower > 0 or self.upper < 0)


def compare(*, saved: int, decided: int, control_saved: int, control_decided: int) -> Comparison:
    if not (enough_data(saved, decided) and enough_data(control_saved, control_decided)):
        return Comparison(enough=False)
    lift, lower, upper = difference_interval(saved, decided, control_saved, control_decided)
    control_rate = control_saved / control_decided
    return Comparison(enough=True, lift=lift, lower=lower, upper=upper,
                      relative=lift / control_rate if control_rate else None,
                      probability=probability_to_beat(saved, decided, control_saved, control_decided))
