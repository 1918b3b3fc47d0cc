"""Pure metric maths and baselines."""

from __future__ import annotations

import math

import pytest

from pipeline.evaluation import direction, is_better, majority_class_baseline, mean_and_std, primary_metric


def test_majority_baseline() -> None:
    baseline = majority_class_baseline({0.0: 90, 1.0: 10}, {0.0: 45, 1.0: 5})
    assert baseline["accuracy"] == pytest.approx(0.9)
    assert baseline["auc_roc"] == 0.5
    expected = -(45 * math.log(0.9) + 5 * math.log(0.1)) / 50
    assert baseline["log_loss"] == pytest.approx(expected)


def test_unseen_test_class_gets_a_finite_penalty() -> None:
    assert math.isfinite(majority_class_baseline({0.0: 10}, {0.0: 1, 1.0: 1})["log_loss"])


def test_directions() -> None:
    assert primary_metric("regression") == "rmse" and direction("rmse") == "min"
    assert primary_metric("classification") == "auc_roc" and direction("auc_roc") == "max"
    assert is_better("rmse", 1.0, 2.0) and is_better("silhouette", 0.5, 0.1) and not is_better("auc_roc", 0.4, 0.5)


def test_mean_and_std() -> None:
    assert mean_and_std([1.0, 3.0]) == (2.0, 1.0)
    with pytest.raises(ValueError):
        mean_and_std([])
