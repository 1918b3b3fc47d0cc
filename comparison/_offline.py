"""Offline comparisons, paired on the same labelled rows: McNemar on correctness, a paired bootstrap on the
area under the ROC curve, a paired t-test on regression errors. The tests are statsmodels' and scipy's."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from comparison._result import Comparison, decide

# Below this many discordant pairs McNemar's exact binomial test is used, above it the chi-square one.
EXACT_BELOW = 25


def _paired(a: ArrayLike, b: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    left, right = np.asarray(a), np.asarray(b)
    if left.shape != right.shape or left.ndim != 1 or len(left) < 2:
        raise ValueError(f"{name}: a and b must be paired 1-D arrays of at least 2 rows, got {left.shape} and "
                         f"{right.shape}")  # fmt: skip
    return left, right


def compare_correctness(correct_a: ArrayLike, correct_b: ArrayLike, alpha: float = 0.05) -> Comparison:
    """Accuracy of two classifiers on the same rows: McNemar's test on the rows where exactly one is
    right; the interval is the Wald interval of the paired difference in accuracy."""
    a, b = _paired(correct_a, correct_b, "accuracy")
    a, b = a.astype(bool), b.astype(bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    table = [[int(np.sum(a & b)), only_a], [only_b, int(np.sum(~a & ~b))]]
    exact = only_a + only_b < EXACT_BELOW
    p_value = float(mcnemar(table, exact=exact, correction=True).pvalue)
    n = len(a)
    difference = (only_b - only_a) / n
    spread = np.sqrt(max(only_a + only_b - n * difference**2, 0.0)) / n
    half = float(stats.norm.ppf(1 - alpha / 2)) * spread
    test = "McNemar (exact binomial)" if exact else "McNemar (chi-square, continuity-corrected)"
    interval = (difference - half, difference + half)
    verdict = decide(difference, p_value < alpha, True)
    accuracy_a, accuracy_b = float(a.mean()), float(b.mean())
    return Comparison("accuracy", accuracy_a, accuracy_b, difference, interval, test, p_value, verdict, n,
                      confidence=1 - alpha)  # fmt: skip


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U of the positives' scores over the negatives' (ties
    count half), as a probability."""
    positives = labels.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auc_roc needs both classes among the rows")
    ranks = stats.rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def compare_auc(
    labels: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, alpha: float = 0.05,
    resamples: int = 2000, seed: int = 0,
) -> Comparison:  # fmt: skip
    """AUC of two binary classifiers on the same rows: rows resampled together (scipy's paired bootstrap),
    a percentile interval of the difference, and the two-sided p-value of zero under the bootstrap
    distribution (BCa's jackknife would refit the AUC once per row: too slow on a test split)."""
    a, b = _paired(scores_a, scores_b, "auc_roc")
    y, _ = _paired(labels, a, "auc_roc")

    def difference(rows: np.ndarray) -> float:
        return auc(y[rows], b[rows]) - auc(y[rows], a[rows])

    rows = np.arange(len(y))
    observed = difference(rows)
    result = stats.bootstrap((rows,), difference, vectorized=False, n_resamples=resamples,
                             confidence_level=1 - alpha, method="percentile", random_state=seed)  # fmt: skip
    spread = result.bootstrap_distribution
    p_value = float(min(1.0, 2 * min(np.mean(spread <= 0), np.mean(spread >= 0))))
    interval = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    significant = interval[0] > 0 or interval[1] < 0
    return Comparison("auc_roc", auc(y, a), auc(y, b), observed, interval, "paired bootstrap", p_value,
                      decide(observed, significant, True), len(y), confidence=1 - alpha)  # fmt: skip


def compare_errors(errors_a: ArrayLike, errors_b: ArrayLike, metric: str, alpha: float = 0.05) -> Comparison:
    """Per-row losses of two regressors on the same rows (absolute or squared errors; lower is better):
    the paired t-test and its interval of the mean difference."""
    a, b = _paired(errors_a, errors_b, metric)
    result = stats.ttest_rel(b, a)
    interval = result.confidence_interval(confidence_level=1 - alpha)
    difference = float(np.mean(b - a))
    p_value = float(result.pvalue) if np.isfinite(result.pvalue) else 1.0  # identical errors: no difference
    return Comparison(metric, float(np.mean(a)), float(np.mean(b)), difference,
                      (float(interval.low), float(interval.high)), "paired t-test", p_value,
                      decide(difference, p_value < alpha, False), len(a), higher_is_better=False,
                      confidence=1 - alpha)  # fmt: skip
