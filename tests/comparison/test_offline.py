"""Offline paired comparisons against reference computations on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from comparison import (
    auc,
    compare_auc,
    compare_correctness,
    compare_errors,
    compare_ndcg,
    compare_silhouette,
    ndcg_at_k,
    paired_samples_needed,
)


def _rows(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of models a and b per row, from the four cells of McNemar's table."""
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_reproduces_the_textbook_value() -> None:
    # Discordant pairs 121 (only a right) and 59 (only b right): chi2 = (|121 - 59| - 1)^2 / 180 = 20.67.
    result = compare_correctness(*_rows(101, 121, 59, 33))
    assert result.p_value == pytest.approx(stats.chi2.sf(61**2 / 180, df=1))
    assert result.test.startswith("McNemar (chi-square") and result.verdict == "a better"
    assert result.difference == pytest.approx((59 - 121) / 314) and result.interval[1] < 0
    few = compare_correctness(*_rows(50, 3, 9, 10))  # 12 discordant pairs: the exact binomial test
    assert few.p_value == pytest.approx(stats.binomtest(3, 12, 0.5).pvalue)
    assert few.verdict == "no difference yet" and few.interval[0] < 0 < few.interval[1]


def test_the_auc_is_sklearns_and_a_better_ranker_wins_the_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(600) < 0.4
    weak = labels * 0.5 + rng.normal(size=600)
    strong = labels * 1.5 + rng.normal(size=600)
    assert auc(labels, weak) == pytest.approx(roc_auc_score(labels, weak))
    result = compare_auc(labels, weak, strong, resamples=500)
    assert result.verdict == "b better" and result.interval[0] > 0 and result.p_value < 0.05
    assert result.b == pytest.approx(roc_auc_score(labels, strong))
    same = compare_auc(labels, weak, weak + rng.normal(scale=1e-3, size=600), resamples=500)
    assert same.verdict == "no difference yet"


def test_regression_errors_use_the_paired_t_test() -> None:
    rng = np.random.default_rng(1)
    errors_a = np.abs(rng.normal(size=400))
    errors_b = errors_a * 0.8 + np.abs(rng.normal(scale=0.05, size=400))
    result = compare_errors(errors_a, errors_b, "mae")
    reference = stats.ttest_rel(errors_b, errors_a)
    assert result.p_value == pytest.approx(reference.pvalue) and result.verdict == "b better"  # lower is better
    assert result.difference < 0 and not result.higher_is_better
    assert compare_errors(errors_a, errors_a, "mae").verdict == "no difference yet"


def test_unpaired_inputs_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"accuracy: a and b must be paired"):
        compare_correctness([True, False], [True])


def test_ndcg_is_sparks_definition_and_per_user_values_are_paired() -> None:
    assert ndcg_at_k([1, 2, 3], {1, 2, 3}, k=3) == 1.0
    assert ndcg_at_k([9, 1], {1}, k=2) == pytest.approx((1 / math.log2(3)) / 1.0)
    assert ndcg_at_k([9, 8, 1], {1, 2, 3, 4}, k=2) == 0.0  # the relevant item is past k
    assert ndcg_at_k([1], set(), k=5) == 0.0
    rng = np.random.default_rng(5)
    a = rng.random(200) * 0.5
    b = a + 0.05 + rng.normal(0, 0.02, 200)
    found = compare_ndcg(a, b, k=10)
    reference = stats.ttest_rel(b, a)
    assert found.metric == "ndcg_at_10" and found.verdict == "b better" and found.p_value == reference.pvalue


def test_the_silhouette_bootstrap_prefers_the_clustering_that_matches_the_blobs() -> None:
    from sklearn.datasets import make_blobs
    from sklearn.metrics import silhouette_score

    points, truth = make_blobs(n_samples=300, centers=3, cluster_std=0.6, random_state=1)
    scrambled = np.random.default_rng(2).integers(0, 3, len(truth))
    found = compare_silhouette(points, scrambled, points, truth, resamples=100)
    assert found.b == pytest.approx(silhouette_score(points, truth)) and found.verdict == "b better"
    assert found.interval[0] > 0 and found.samples == 300 and found.test == "paired bootstrap"
    same = compare_silhouette(points, truth, points, truth, resamples=50)
    assert same.verdict == "no difference yet" and same.difference == 0.0


def test_no_difference_yet_says_how_many_more_pairs_would_find_the_mde() -> None:
    from statsmodels.stats.power import TTestPower

    a, b = _rows(both=80, only_a=6, only_b=9, neither=5)  # 100 rows, a difference of 0.03: not significant
    found = compare_correctness(a, b, mde=0.05)
    differences = b.astype(float) - a.astype(float)
    total = TTestPower().solve_power(effect_size=0.05 / differences.std(ddof=1), alpha=0.05, power=0.8)
    assert found.verdict == "no difference yet" and found.samples_needed == math.ceil(total) - 100
    assert compare_correctness(a, b).samples_needed is None  # no mde asked: no estimate
    assert paired_samples_needed(np.zeros(10), 0.05, 0.05) is None  # no spread yet: no estimate
    errors = compare_errors([1.0, 2.0, 3.0, 4.0], [1.1, 1.9, 3.2, 3.9], "mae", mde=0.01)
    assert (
        errors.verdict == "no difference yet" and errors.samples_needed is not None and errors.samples_needed > 0
    )
