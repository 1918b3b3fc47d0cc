"""Online comparison of two variants' outcomes on routed traffic, valid whenever it is read: the mixture
sequential probability ratio test (mSPRT, a normal mixture over the difference of means, as in Johari,
Pekelis and Walsh, "Always valid inference", 2017) and its confidence sequence.

Why by hand (a closed form of a few lines, checked by simulation in the tests): `savvi` needs cvxpy, and
`spotify-confidence`'s sequential test is group-sequential (a planned maximum sample size), with chartify,
bokeh and ipywidgets as dependencies; neither belongs in a serving replica.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from comparison._result import Comparison, decide

MIN_SAMPLES = 30  # per variant, before the variance estimates are trusted


@dataclass(frozen=True)
class Arm:
    """One variant's outcomes, summarised: count, mean and (sample) variance."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: ArrayLike) -> Arm:
        array = np.asarray(values, dtype=np.float64)
        variance = float(array.var(ddof=1)) if len(array) > 1 else 0.0
        return cls(len(array), float(array.mean()) if len(array) else 0.0, variance)


def log_likelihood_ratio(difference: ArrayLike, variance: ArrayLike, tau2: float) -> np.ndarray:
    """The log of the mSPRT statistic for an observed difference of means whose variance is ``variance``,
    under a normal mixture of scale ``tau2`` over the true difference (works on arrays)."""
    d, v = np.asarray(difference, dtype=np.float64), np.asarray(variance, dtype=np.float64)
    return 0.5 * np.log(v / (v + tau2)) + d**2 * tau2 / (2 * v * (v + tau2))


def half_width(variance: ArrayLike, tau2: float, alpha: float) -> np.ndarray:
    """The half-width of the confidence sequence: the differences the test does not reject (arrays too)."""
    v = np.asarray(variance, dtype=np.float64)
    return np.sqrt(2 * v * (v + tau2) / tau2 * (math.log(1 / alpha) + 0.5 * np.log((v + tau2) / v)))


def samples_for_power(
    variance_a: float, variance_b: float, share_b: float, mde: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Total samples (both variants, ``share_b`` of them to b) by which a true difference of ``mde`` is
    detected with probability ``power``: the observed difference then clears the confidence sequence
    with that probability at that look alone (earlier looks only add to it)."""
    if not 0 < share_b < 1 or mde <= 0:
        raise ValueError(f"share_b = {share_b}, mde = {mde}: need 0 < share_b < 1 and mde > 0")
    tau2 = mde**2
    from scipy import stats

    z = float(stats.norm.ppf(power))
    per_sample = variance_a / (1 - share_b) + variance_b / share_b  # the variance of the difference is this / n

    def detected(n: int) -> bool:
        v = per_sample / n
        return mde - z * math.sqrt(v) >= float(half_width(v, tau2, alpha))

    high = 2
    while not detected(high):
        high *= 2
    low = high // 2
    while high - low > 1:  # the smallest n that suffices
        middle = (low + high) // 2
        low, high = (low, middle) if detected(middle) else (middle, high)
    return high


def compare_sequential(
    metric: str,
    a: Arm,
    b: Arm,
    mde: float,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    min_samples: int = MIN_SAMPLES,
) -> Comparison:
    """Variant b against a on routed traffic (independent samples), readable at any time: ``b better`` or
    ``a better`` once the mSPRT rejects equality at level ``alpha``, else ``no difference yet`` with the
    samples still needed to detect ``mde`` (the minimum detectable effect, in the metric's units). No
    verdict before each variant has ``min_samples`` (at least MIN_SAMPLES)."""
    min_samples = max(min_samples, MIN_SAMPLES)
    tau2 = mde**2
    difference = b.mean - a.mean
    samples = a.n + b.n
    share_b = b.n / samples if samples else 0.5
    needed = None
    if a.n < min_samples or b.n < min_samples:
        interval = (-math.inf, math.inf)
        p_value = 1.0
        significant = False
    else:
        variance = max(a.variance / a.n + b.variance / b.n, 1e-12)
        statistic = float(log_likelihood_ratio(difference, variance, tau2))
        p_value = min(1.0, math.exp(-statistic))  # the always-valid p-value at this look
        width = float(half_width(variance, tau2, alpha))
        interval = (difference - width, difference + width)
        significant = statistic >= math.log(1 / alpha)
    if not significant:
        share = min(max(share_b, 0.01), 0.99)
        spread = max(a.variance, b.variance, 1e-12)
        total = samples_for_power(a.variance or spread, b.variance or spread, share, mde, alpha)
        needed = max(total - samples, max(min_samples - a.n, 0) + max(min_samples - b.n, 0))
    return Comparison(
        metric,
        a.mean,
        b.mean,
        difference,
        interval,
        "mSPRT (normal mixture), always valid",
        p_value,
        decide(difference, significant, higher_is_better),
        samples,
        higher_is_better,
        1 - alpha,
        needed,
    )
