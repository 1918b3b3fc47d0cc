"""Offline paired comparisons against reference computations on fixed data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from comparison import auc, compare_auc, compare_correctness, compare_errors


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
