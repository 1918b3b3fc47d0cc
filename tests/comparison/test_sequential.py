"""The online test by simulation, no engine: read every 100 samples, it stays below its false-positive
rate under A/A, and detects a true lift of the minimum detectable effect with the power it promises by
the sample size it predicts."""

from __future__ import annotations

import math

import numpy as np

from comparison import (
    MIN_SAMPLES,
    Arm,
    compare_sequential,
    half_width,
    log_likelihood_ratio,
    samples_for_power,
)

ALPHA, EXPERIMENTS, EVERY = 0.05, 1000, 100


def _rejected_by(rate_a: float, rate_b: float, per_arm: int, seed: int) -> np.ndarray:
    """For each simulated experiment (Bernoulli outcomes, equal traffic), whether the test rejected
    equality at any of the looks taken every EVERY samples per variant."""
    rng = np.random.default_rng(seed)
    looks = np.arange(EVERY, per_arm + 1, EVERY)
    hits_a = np.cumsum(rng.random((EXPERIMENTS, per_arm)) < rate_a, axis=1)[:, looks - 1]
    hits_b = np.cumsum(rng.random((EXPERIMENTS, per_arm)) < rate_b, axis=1)[:, looks - 1]
    mean_a, mean_b = hits_a / looks, hits_b / looks
    variance = (mean_a * (1 - mean_a) + mean_b * (1 - mean_b)) / (looks - 1)  # sample variances / n
    statistic = log_likelihood_ratio(mean_b - mean_a, np.maximum(variance, 1e-12), tau2=MDE**2)
    return np.asarray((statistic >= math.log(1 / ALPHA)).any(axis=1))


MDE = 0.03  # absolute lift in a 30% success rate


def test_under_a_a_the_false_positive_rate_stays_below_alpha_when_read_every_100_samples() -> None:
    false_positives = _rejected_by(0.30, 0.30, per_arm=5000, seed=1).mean()
    assert false_positives <= ALPHA + 0.01, false_positives


def test_a_lift_of_the_mde_is_detected_with_power_080_by_the_predicted_sample_size() -> None:
    total = samples_for_power(0.30 * 0.70, 0.33 * 0.67, share_b=0.5, mde=MDE, alpha=ALPHA, power=0.8)
    per_arm = int(math.ceil(total / 2 / EVERY) * EVERY)  # the look at or just after the predicted size
    power = _rejected_by(0.30, 0.33, per_arm=per_arm, seed=2).mean()
    assert power >= 0.8, (power, total)
    assert _rejected_by(0.30, 0.33, per_arm=per_arm // 4 // EVERY * EVERY, seed=3).mean() < 0.8  # not loose


def test_the_verdict_and_interval_of_one_reading() -> None:
    rng = np.random.default_rng(4)
    a, b = Arm.of(rng.random(20_000) < 0.30), Arm.of(rng.random(20_000) < 0.36)
    better = compare_sequential("conversion", a, b, mde=MDE, alpha=ALPHA)
    assert better.verdict == "b better" and better.interval[0] > 0 and better.p_value < ALPHA
    worse = compare_sequential("error_rate", a, b, mde=MDE, alpha=ALPHA, higher_is_better=False)
    assert worse.verdict == "a better"  # b has more errors
    width = float(half_width(a.variance / a.n + b.variance / b.n, MDE**2, ALPHA))
    assert better.interval == (better.difference - width, better.difference + width)


def test_too_few_samples_is_no_difference_yet_with_the_samples_still_needed() -> None:
    few = compare_sequential("conversion", Arm.of([1, 0] * 10), Arm.of([1, 1] * 10), mde=MDE)
    assert few.verdict == "no difference yet" and few.samples_needed is not None and few.samples_needed > 0
    assert few.samples == 40 and few.interval == (-math.inf, math.inf) and MIN_SAMPLES > 20
    rng = np.random.default_rng(5)
    same = compare_sequential("conversion", Arm.of(rng.random(500) < 0.3), Arm.of(rng.random(500) < 0.3), mde=MDE)
    assert same.verdict == "no difference yet" and same.samples_needed is not None
    assert same.samples + same.samples_needed >= samples_for_power(0.2, 0.2, 0.5, MDE) * 0.5
