"""Offline comparisons, paired on the same rows: McNemar on correctness, a paired bootstrap on the area under
the ROC curve, paired t-tests on regression errors and on per-user NDCG@k, a paired bootstrap on the
silhouette. The tests are statsmodels', scipy's and scikit-learn's, imported where they are used: importing
them costs every process that imports `pipeline` (a CLI call, each Tune trial's worker) 3-6 s on a slow
machine, and only a comparison needs them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from comparison._result import Comparison, decide

# Below this many discordant pairs McNemar's exact binomial test is used, above it the chi-square one.
EXACT_BELOW = 25


def _paired(a: ArrayLike, b: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    left, right = np.asarray(a), np.asarray(b)
    if left.shape != right.shape or left.ndim != 1 or len(left) < 2:
        raise ValueError(
            f"{name}: a and b must be paired 1-D arrays of at least 2 rows, got {left.shape} and {right.shape}"
        )
    return left, right


def paired_samples_needed(differences: np.ndarray, mde: float, alpha: float, power: float = 0.8) -> int | None:
    """Pairs by which a true mean difference of ``mde`` is found with probability ``power`` by a two-sided
    paired test at ``alpha``, given the spread of the per-row ``differences`` seen so far (statsmodels'
    power of the t-test on the differences); None when they do not vary yet."""
    from statsmodels.stats.power import TTestPower

    spread = float(np.std(differences, ddof=1)) if len(differences) > 1 else 0.0
    if spread == 0 or mde <= 0:
        return None
    needed = TTestPower().solve_power(effect_size=mde / spread, alpha=alpha, power=power, alternative="two-sided")
    return math.ceil(float(needed))


def _still_needed(found: Comparison, differences: np.ndarray, mde: float | None, alpha: float) -> Comparison:
    """``found`` with the samples still needed for ``mde``, while there is no difference yet."""
    if mde is None or found.verdict != "no difference yet":
        return found
    needed = paired_samples_needed(differences, mde, alpha)
    return found if needed is None else dataclasses.replace(found, samples_needed=max(needed - found.samples, 0))


def compare_correctness(
    correct_a: ArrayLike, correct_b: ArrayLike, alpha: float = 0.05, mde: float | None = None
) -> Comparison:
    """Accuracy of two classifiers on the same rows: McNemar's test on the rows where exactly one is
    right; the interval is the Wald interval of the paired difference in accuracy. With ``mde`` (in
    accuracy), ``no difference yet`` comes with the rows still needed to find that difference."""
    a, b = _paired(correct_a, correct_b, "accuracy")
    a, b = a.astype(bool), b.astype(bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    table = [[int(np.sum(a & b)), only_a], [only_b, int(np.sum(~a & ~b))]]
    exact = only_a + only_b < EXACT_BELOW
    from scipy import stats
    from statsmodels.stats.contingency_tables import mcnemar

    p_value = float(mcnemar(table, exact=exact, correction=True).pvalue)
    n = len(a)
    difference = (only_b - only_a) / n
    spread = np.sqrt(max(only_a + only_b - n * difference**2, 0.0)) / n
    half = float(stats.norm.ppf(1 - alpha / 2)) * spread
    test = "McNemar (exact binomial)" if exact else "McNemar (chi-square, continuity-corrected)"
    interval = (difference - half, difference + half)
    verdict = decide(difference, p_value < alpha, True)
    accuracy_a, accuracy_b = float(a.mean()), float(b.mean())
    found = Comparison(
        "accuracy", accuracy_a, accuracy_b, difference, interval, test, p_value, verdict, n, confidence=1 - alpha
    )
    return _still_needed(found, b.astype(float) - a.astype(float), mde, alpha)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U of the positives' scores over the negatives' (ties
    count half), as a probability."""
    positives = labels.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auc_roc needs both classes among the rows")
    from scipy import stats

    ranks = stats.rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def compare_auc(
    labels: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """AUC of two binary classifiers on the same rows: rows resampled together (scipy's paired bootstrap),
    a percentile interval of the difference, and the two-sided p-value of zero under the bootstrap
    distribution (BCa's jackknife would refit the AUC once per row: too slow on a test split)."""
    a, b = _paired(scores_a, scores_b, "auc_roc")
    y, _ = _paired(labels, a, "auc_roc")

    def difference(rows: np.ndarray) -> float:
        return auc(y[rows], b[rows]) - auc(y[rows], a[rows])

    rows = np.arange(len(y))
    observed = difference(rows)
    from scipy import stats

    result = stats.bootstrap(
        (rows,),
        difference,
        vectorized=False,
        n_resamples=resamples,
        confidence_level=1 - alpha,
        method="percentile",
        random_state=seed,
    )
    spread = result.bootstrap_distribution
    p_value = float(min(1.0, 2 * min(np.mean(spread <= 0), np.mean(spread >= 0))))
    interval = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    significant = interval[0] > 0 or interval[1] < 0
    return Comparison(
        "auc_roc",
        auc(y, a),
        auc(y, b),
        observed,
        interval,
        "paired bootstrap",
        p_value,
        decide(observed, significant, True),
        len(y),
        confidence=1 - alpha,
    )


def _paired_t(
    values_a: ArrayLike, values_b: ArrayLike, metric: str, alpha: float, higher_is_better: bool, mde: float | None
) -> Comparison:
    a, b = _paired(values_a, values_b, metric)
    from scipy import stats

    result = stats.ttest_rel(b, a)
    interval = result.confidence_interval(confidence_level=1 - alpha)
    difference = float(np.mean(b - a))
    p_value = float(result.pvalue) if np.isfinite(result.pvalue) else 1.0  # identical values: no difference
    low, high = (float(interval.low), float(interval.high)) if np.isfinite(interval.low) else (0.0, 0.0)
    found = Comparison(
        metric,
        float(np.mean(a)),
        float(np.mean(b)),
        difference,
        (low, high),
        "paired t-test",
        p_value,
        decide(difference, p_value < alpha, higher_is_better),
        len(a),
        higher_is_better=higher_is_better,
        confidence=1 - alpha,
    )
    return _still_needed(found, b.astype(float) - a.astype(float), mde, alpha)


def compare_errors(
    errors_a: ArrayLike, errors_b: ArrayLike, metric: str, alpha: float = 0.05, mde: float | None = None
) -> Comparison:
    """Per-row losses of two regressors on the same rows (absolute or squared errors; lower is better):
    the paired t-test and its interval of the mean difference (with ``mde``: the rows still needed)."""
    return _paired_t(errors_a, errors_b, metric, alpha, False, mde)


def ndcg_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """NDCG@k with binary relevance, as Spark's RankingMetrics defines it: the ideal ranking puts
    min(|relevant|, k) relevant items first; 0 for a user with no relevant item."""
    if not relevant:
        return 0.0
    gains = [1.0 / math.log2(rank + 2) for rank, item in enumerate(list(recommended)[:k]) if item in relevant]
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return sum(gains) / ideal


def compare_ndcg(ndcg_a: ArrayLike, ndcg_b: ArrayLike, k: int, alpha: float = 0.05) -> Comparison:
    """Two recommenders' NDCG@k of the same users (higher is better): the paired t-test over users."""
    return _paired_t(ndcg_a, ndcg_b, f"ndcg_at_{k}", alpha, True, None)


def compare_silhouette(
    features_a: ArrayLike,
    clusters_a: ArrayLike,
    features_b: ArrayLike,
    clusters_b: ArrayLike,
    alpha: float = 0.05,
    resamples: int = 200,
    seed: int = 0,
) -> Comparison:
    """Two clusterings of the same rows, each in its own model's feature space, by scikit-learn's
    silhouette: rows resampled together (a paired bootstrap), the percentile interval of the difference
    and the two-sided p-value of zero under it. Each resample costs O(rows^2): pass a sample of the rows."""
    from sklearn.metrics import silhouette_score

    x_a, x_b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    c_a, c_b = _paired(clusters_a, clusters_b, "silhouette")
    if len(x_a) != len(c_a) or len(x_b) != len(c_b):
        raise ValueError(f"silhouette: {len(x_a)} and {len(x_b)} feature rows for {len(c_a)} cluster labels")

    def score(x: np.ndarray, clusters: np.ndarray, rows: np.ndarray) -> float:
        if len(np.unique(clusters[rows])) < 2:
            return 0.0  # one cluster: undefined, and no better than chance (as the training metric)
        return float(silhouette_score(x[rows], clusters[rows]))

    everything = np.arange(len(c_a))
    a, b = score(x_a, c_a, everything), score(x_b, c_b, everything)
    rng = np.random.default_rng(seed)
    spread = np.empty(resamples)
    for index in range(resamples):
        rows = rng.integers(0, len(c_a), len(c_a))
        spread[index] = score(x_b, c_b, rows) - score(x_a, c_a, rows)
    low, high = (float(value) for value in np.percentile(spread, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    p_value = min(1.0, 2 * min(float(np.mean(spread <= 0)), float(np.mean(spread >= 0))))
    significant = low > 0 or high < 0
    return Comparison(
        "silhouette",
        a,
        b,
        b - a,
        (low, high),
        "paired bootstrap",
        p_value,
        decide(b - a, significant, True),
        len(c_a),
        confidence=1 - alpha,
    )
