"""The statistics behind the experiment report, in one small module checked against SciPy and statsmodels
in its tests (reports/tests/test_stats.py). The unit is the customer (an account, by its last outcome).

- A rate is successes / decisions, a proportion.
- Lift over control: p_variant - p_control (a fraction: 0.05 is 5 points), with Newcombe's hybrid score
  interval (Wilson intervals of each arm combined; Newcombe 1998, method 10), which stays inside
  [-1, 1] and keeps its coverage for small, unequal and extreme arms, where the Wald interval does not:
  0/1000 against 200/1000 is shown with an interval excluding zero.
- Probability to beat control: P(p_variant > p_control) under Beta(1 + successes, 1 + failures)
  posteriors (uniform priors), exactly: a finite sum (Miller's closed form) while the smallest
  parameter is at most EXACT_TERMS, else by numeric integration of one density against the other's
  distribution function on a fine grid; never a normal approximation.
- Several variants: two-sided p-values of the pooled two-proportion z-test, adjusted by Holm's step-down
  method, so the chance of any false "winner" stays at ALPHA whatever the number of variants.
- Reading the page every day: the sample size per arm is fixed in advance (sample_size_per_arm: a
  DETECT_POINTS difference at POWER, two-sided ALPHA split over the comparisons, at the worst-case
  variance p = 0.5, so it does not move with the data) and no winner is called before every arm has it.
- The realized split against the weights: a chi-square goodness-of-fit test; p < SRM_ALPHA is a
  sample-ratio mismatch (the assignment, or what is counted, is broken).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.8
SRM_ALPHA = 0.001
EXACT_TERMS = 2000
GRID = 4001  # points of the integration grid (odd, for Simpson's rule)
_NORMAL = NormalDist()


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def z_for(alpha: float) -> float:
    """The two-sided critical value: 1.96 for alpha 0.05."""
    return _NORMAL.inv_cdf(1 - alpha / 2)


# --- intervals ----------------------------------------------------------------------------------

def wilson_interval(successes: int, trials: int, *, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson's score interval for one proportion."""
    if trials == 0:
        return 0.0, 1.0
    z = z_for(alpha)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(s1: int, n1: int, s2: int, n2: int, *, alpha: float = ALPHA) -> tuple[float, float, float]:
    """p1 - p2 and Newcombe's hybrid score interval (lower, upper)."""
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson_interval(s1, n1, alpha=alpha)
    l2, u2 = wilson_interval(s2, n2, alpha=alpha)
    diff = p1 - p2
    lower = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return diff, lower, upper


# --- tests --------------------------------------------------------------------------------------

def two_proportion_p_value(s1: int, n1: int, s2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z-test of p1 = p2 (1.0 when every outcome is the same)."""
    pooled = (s1 + s2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (s1 / n1 - s2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))  # both tails, without cancellation for tiny p-values


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _upper_gamma_regularized(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a): a series below a + 1, a continued fraction above (Lentz)."""
    if x <= 0:
        return 1.0
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a)))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_p_value(observed: Sequence[int], expected_shares: Sequence[float]) -> float | None:
    """Goodness of fit of counts to shares (None with fewer than two arms or no counts)."""
    total = sum(observed)
    shares = [share / sum(expected_shares) for share in expected_shares] if sum(expected_shares) else []
    if len(observed) < 2 or not total or not shares or any(share <= 0 for share in shares):
        return None
    statistic = sum((o - total * s) ** 2 / (total * s) for o, s in zip(observed, shares, strict=True))
    return _upper_gamma_regularized((len(observed) - 1) / 2, statistic / 2)


# --- the probability to beat control --------------------------------------------------------------

def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _miller(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X2 > X1) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), integer parameters: a sum of a2 terms."""
    base = _lbeta(a1, b1)
    return sum(math.exp(_lbeta(a1 + i, b1 + b2) - math.log(b2 + i) - _lbeta(1 + i, b2) - base) for i in range(a2))


def _beta_log_density(x: float, a: float, b: float, lnorm: float) -> float:
    if x <= 0.0:
        return 0.0 if a == 1 else -math.inf
    if x >= 1.0:
        return 0.0 if b == 1 else -math.inf
    return (a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - lnorm


def _integrated(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X2 > X1) = ∫ f2(x) F1(x) dx on a grid spanning both densities' mass (±14 standard deviations):
    F1 by cumulative trapezoid steps of f1 on the same grid, then Simpson's rule."""
    def spread(a: int, b: int) -> tuple[float, float]:
        mean = a / (a + b)
        return mean, math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))

    (m1, s1), (m2, s2) = spread(a1, b1), spread(a2, b2)
    low = max(0.0, min(m1 - 14 * s1, m2 - 14 * s2))
    high = min(1.0, max(m1 + 14 * s1, m2 + 14 * s2))
    h = (high - low) / (GRID - 1)
    xs = [low + i * h for i in range(GRID)]
    n1, n2 = _lbeta(a1, b1), _lbeta(a2, b2)
    f1 = [math.exp(_beta_log_density(x, a1, b1, n1)) for x in xs]
    f2 = [math.exp(_beta_log_density(x, a2, b2, n2)) for x in xs]
    cumulative, running = [0.0], 0.0
    for i in range(1, GRID):
        running += h * (f1[i - 1] + f1[i]) / 2
        cumulative.append(running)
    total = cumulative[-1] or 1.0
    weights = [1 if i in (0, GRID - 1) else (4 if i % 2 else 2) for i in range(GRID)]
    integral = h / 3 * sum(w * f * (c / total) for w, f, c in zip(weights, f2, cumulative, strict=True))
    return min(1.0, max(0.0, integral))


def probability_to_beat(s1: int, n1: int, s2: int, n2: int) -> float:
    """P(rate 1 > rate 2) under Beta(1 + s, 1 + n - s) posteriors: exact for small arms, else by numeric
    integration."""
    a1, b1, a2, b2 = 1 + s1, 1 + n1 - s1, 1 + s2, 1 + n2 - s2
    # P(X1 > X2) by Miller's sum over whichever parameter is smallest, through the symmetries
    # P(X1 > X2) = 1 - P(X2 > X1) and P(X1 > X2) = P(1 - X2 > 1 - X1).
    smallest = min(a1, b1, a2, b2)
    if smallest <= EXACT_TERMS:
        if smallest == a1:
            result = _miller(a2, b2, a1, b1)
        elif smallest == b2:
            result = _miller(b1, a1, b2, a2)
        elif smallest == a2:
            result = 1 - _miller(a1, b1, a2, b2)
        else:
            result = 1 - _miller(b2, a2, b1, a1)
    else:
        result = _integrated(a2, b2, a1, b1)
    return min(1.0, max(0.0, result))


# --- sample size and the comparison ---------------------------------------------------------------

def sample_size_per_arm(*, points: float, comparisons: int = 1, alpha: float = ALPHA, power: float = POWER) -> int:
    """Decisions each arm needs to detect a difference of `points` (a fraction: 0.05 is 5 points) with
    `power`, two-sided alpha split over the comparisons, at the worst-case variance (rates of 50%): fixed
    in advance, so looking every day does not change it."""
    z_alpha = z_for(alpha / max(comparisons, 1))
    z_power = _NORMAL.inv_cdf(power)
    return math.ceil(2 * 0.25 * (z_alpha + z_power) ** 2 / points ** 2)


@dataclass(frozen=True)
class Comparison:
    """One variant's rate against the control's."""

    count: int
    decisions: int
    rate: float | None
    lift: float | None = None            # p_variant - p_control, a fraction: 0.05 is 5 points
    lower: float | None = None
    upper: float | None = None
    relative: float | None = None        # lift / control rate
    p_beat_control: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None      # Holm, over the flow's variants

    @property
    def significant(self) -> bool:
        return self.p_adjusted is not None and self.p_adjusted < ALPHA

    @property
    def interval(self) -> list[float] | None:
        return None if self.lower is None or self.upper is None else [self.lower, self.upper]


def compare(*, count: int, decisions: int, control_count: int, control_decisions: int,
            beat: bool = True) -> Comparison:
    """A variant against the control: every arm with decisions is compared, however extreme. `beat`
    False leaves out the probability to beat control (a verdict needs only the test)."""
    if not decisions or not control_decisions:
        return Comparison(count=count, decisions=decisions, rate=rate(count, decisions))
    lift, lower, upper = newcombe_interval(count, decisions, control_count, control_decisions)
    control_rate = control_count / control_decisions
    return Comparison(count=count, decisions=decisions, rate=count / decisions, lift=lift, lower=lower, upper=upper,
                      relative=lift / control_rate if control_rate else None,
                      p_beat_control=probability_to_beat(count, decisions, control_count, control_decisions)
                      if beat else None,
                      p_value=two_proportion_p_value(count, decisions, control_count, control_decisions))


def with_holm(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons with their Holm-adjusted p-values (those without a p-value stay as they are)."""
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    adjusted = holm([comparisons[i].p_value for i in tested])  # type: ignore[misc]
    result = list(comparisons)
    for i, p in zip(tested, adjusted, strict=True):
        c = comparisons[i]
        result[i] = Comparison(count=c.count, decisions=c.decisions, rate=c.rate, lift=c.lift, lower=c.lower,
                               upper=c.upper, relative=c.relative, p_beat_control=c.p_beat_control,
                               p_value=c.p_value, p_adjusted=p)
    return result
