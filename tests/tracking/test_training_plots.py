"""A training run's figures from a sample of test predictions (no engine): which, and what they show."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from pipeline.evaluation import PredictionSample
from pipeline.tracking import training_figures

RNG = np.random.default_rng(3)


def _binary_sample(rows: int = 400) -> PredictionSample:
    label = RNG.integers(0, 2, rows).astype(float)
    positive = np.clip(0.5 * label + RNG.uniform(0, 0.5, rows), 0, 1)
    probability = np.column_stack([1 - positive, positive])
    return PredictionSample(rows, 10 * rows, (positive > 0.5).astype(float), label, probability)


def test_binary_classification_gets_roc_pr_and_confusion_matrix_and_the_weights() -> None:
    sample = _binary_sample()
    figures = training_figures("classification", sample, [("amount", 0.6), ("age", -0.2)], "coefficient")
    assert set(figures) == {"roc_curve.png", "pr_curve.png", "confusion_matrix.png", "coefficients.png"}
    roc = figures["roc_curve.png"].axes[0]
    assert "400 of 4,000 test rows" in roc.get_title()
    expected_auc = roc_auc_score(sample.label, sample.probability[:, 1])
    assert f"AUC = {expected_auc:.2f}" in roc.get_legend().get_texts()[0].get_text()  # type: ignore[union-attr]
    cells = [int(text.get_text()) for text in figures["confusion_matrix.png"].axes[0].texts]
    assert sum(cells) == 400 and len(cells) == 4
    bars = figures["coefficients.png"].axes[0].patches
    assert [round(bar.get_width(), 3) for bar in bars] == [0.6, -0.2]  # type: ignore[attr-defined]


def test_multiclass_and_probability_free_classifiers_get_the_confusion_matrix_only() -> None:
    label = RNG.integers(0, 3, 90).astype(float)
    figures = training_figures("classification", PredictionSample(90, 90, label.copy(), label))
    assert set(figures) == {"confusion_matrix.png"}
    cells = [int(text.get_text()) for text in figures["confusion_matrix.png"].axes[0].texts]
    assert len(cells) == 9 and sum(cells) == 90 and sorted(cells)[:6] == [0] * 6  # all on the diagonal
    no_probability = _binary_sample()
    no_probability = PredictionSample(400, 400, no_probability.prediction, no_probability.label)
    assert set(training_figures("classification", no_probability)) == {"confusion_matrix.png"}


def test_regression_gets_predicted_vs_actual_and_residuals() -> None:
    actual = RNG.normal(100, 10, 300)
    predicted = actual + RNG.normal(0, 2, 300)
    figures = training_figures(
        "regression", PredictionSample(300, 300, predicted, actual), [("sqft", 0.7)], "importance"
    )
    assert set(figures) == {"predicted_vs_actual.png", "residuals.png", "feature_importances.png"}
    residual_axes = figures["residuals.png"].axes[0]
    (points,) = residual_axes.collections[:1]
    offsets = np.asarray(points.get_offsets())
    assert len(offsets) == 300  # every sampled row, none subsampled away
    np.testing.assert_allclose(sorted(offsets[:, 1]), sorted(actual - predicted))


def test_clustering_gets_cluster_sizes_and_an_empty_sample_gets_nothing() -> None:
    clusters = np.array([0.0] * 5 + [1.0] * 3 + [2.0] * 2)
    figures = training_figures("clustering", PredictionSample(10, 10, clusters))
    assert set(figures) == {"cluster_sizes.png"}
    assert [bar.get_height() for bar in figures["cluster_sizes.png"].axes[0].patches] == [5, 3, 2]  # type: ignore[attr-defined]
    assert training_figures("classification", PredictionSample(0, 0, np.empty(0), np.empty(0))) == {}
    assert training_figures("recommendation", None) == {}
