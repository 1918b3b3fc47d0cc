"""Metrics from one aggregate equal scikit-learn's on the rows themselves (the definitions MLlib uses)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from pipeline.evaluation._summaries import classification_summary, regression_summary

RNG = np.random.default_rng(11)


def _grouped(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The rows counted per distinct combination, as Spark's groupBy returns them."""
    keys, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [keys[:, i] for i in range(keys.shape[1])], counts


def _pr_area_as_mllib(label: np.ndarray, score: np.ndarray) -> float:
    """MLlib's areaUnderPR: trapezoids through the PR points, starting at (0, first precision)."""
    precision, recall, _ = sk.precision_recall_curve(label, score)
    precision, recall = precision[:-1][::-1], recall[:-1][::-1]  # thresholds high to low, no (recall 0) end
    recall, precision = np.concatenate([[0.0], recall]), np.concatenate([[precision[0]], precision])
    return float(np.trapezoid(precision, recall))


def test_binary_metrics_equal_scikit_learn_on_the_rows() -> None:
    rows = 5000
    label = RNG.integers(0, 2, rows)
    score = np.round(np.clip(0.3 * label + RNG.uniform(0, 0.7, rows), 0, 1), 4)
    prediction = (score > 0.5).astype(int)
    probability_of_label = np.where(label == 1, score, 1 - score)
    (g_label, g_prediction, g_score), counts = _grouped(label, prediction, score)
    loss = float(-np.log(np.maximum(probability_of_label, 1e-15)).sum())
    found = classification_summary(g_label, g_prediction, counts, score=g_score, loss_sum=loss)
    assert found["auc_roc"] == pytest.approx(sk.roc_auc_score(label, score), abs=1e-12)
    assert found["auc_pr"] == pytest.approx(_pr_area_as_mllib(label, score), abs=1e-12)
    assert found["accuracy"] == pytest.approx(sk.accuracy_score(label, prediction))
    assert found["f1"] == pytest.approx(sk.f1_score(label, prediction, average="weighted"))
    assert found["weighted_precision"] == pytest.approx(sk.precision_score(label, prediction, average="weighted"))
    assert found["weighted_recall"] == pytest.approx(sk.recall_score(label, prediction, average="weighted"))
    assert found["log_loss"] == pytest.approx(sk.log_loss(label, np.column_stack([1 - score, score])))


def test_multiclass_metrics_equal_scikit_learn_and_a_class_never_predicted_counts_as_zero() -> None:
    label = RNG.integers(0, 3, 900)
    prediction = np.where(RNG.uniform(size=900) < 0.7, label, RNG.integers(0, 2, 900))  # class 2: rarely
    prediction[prediction == 2] = 0  # ...and here never predicted
    (g_label, g_prediction), counts = _grouped(label, prediction)
    found = classification_summary(g_label, g_prediction, counts)
    assert set(found) == {"accuracy", "f1", "weighted_precision", "weighted_recall"}
    for name, expected in {
        "accuracy": sk.accuracy_score(label, prediction),
        "f1": sk.f1_score(label, prediction, average="weighted", zero_division=0),
        "weighted_precision": sk.precision_score(label, prediction, average="weighted", zero_division=0),
        "weighted_recall": sk.recall_score(label, prediction, average="weighted", zero_division=0),
    }.items():
        assert found[name] == pytest.approx(expected), name


def test_regression_metrics_from_sums_equal_scikit_learn() -> None:
    actual = RNG.normal(50, 8, 700)
    predicted = actual + RNG.normal(1, 3, 700)
    error = actual - predicted
    found = regression_summary(
        700, float((error**2).sum()), float(np.abs(error).sum()), float(actual.sum()), float((actual**2).sum())
    )
    assert found["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(actual, predicted)))
    assert found["mae"] == pytest.approx(sk.mean_absolute_error(actual, predicted))
    assert found["r2"] == pytest.approx(sk.r2_score(actual, predicted))


def test_no_rows_is_an_error_and_a_single_class_has_no_curve_areas() -> None:
    with pytest.raises(ValueError, match="no rows"):
        classification_summary(np.array([]), np.array([]), np.array([]))
    one_class = classification_summary(
        np.array([1, 1]), np.array([1, 0]), np.array([3, 1]), score=np.array([0.9, 0.2])
    )
    assert "auc_roc" not in one_class and one_class["accuracy"] == 0.75
