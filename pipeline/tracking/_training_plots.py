"""Pictures of one training run, from a sample of its test predictions and its top weights.

The curves and matrices come from scikit-learn's displays (its metrics, drawn on axes we own); the
figures use matplotlib's object API, no pyplot figure state, so they can be made in any process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.evaluation import PredictionSample

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def training_figures(
    task: str,
    sample: PredictionSample | None,
    weights: Sequence[tuple[str, float]] = (),
    weights_kind: str | None = None,
) -> dict[str, Figure]:
    """Figures by file name: ROC and PR curves (two classes) and the confusion matrix for classification,
    predicted-vs-actual and residuals for regression, cluster sizes for clustering, and the top feature
    importances or coefficients when the model has them."""
    figures: dict[str, Figure] = {}
    if sample is not None and sample.rows:
        where = f"{sample.rows:,} of {sample.of:,} test rows"
        if task == "classification" and sample.label is not None:
            figures.update(_classification(sample, where))
        elif task == "regression" and sample.label is not None:
            figures.update(_regression(sample, where))
        elif task == "clustering":
            figures["cluster_sizes.png"] = _cluster_sizes(sample, where)
    if weights:
        name = "feature_importances.png" if weights_kind == "importance" else "coefficients.png"
        figures[name] = _weights(weights, weights_kind or "weight")
    return figures


def _axes(title: str, size: tuple[float, float] = (5.5, 4.5)) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=10)
    return figure, axes


def _classification(sample: PredictionSample, where: str) -> dict[str, Figure]:
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    assert sample.label is not None
    figures = {}
    classes = np.unique(np.concatenate([sample.label, sample.prediction])).astype(int)
    figure, axes = _axes(f"Confusion matrix ({where})")
    ConfusionMatrixDisplay.from_predictions(
        sample.label.astype(int), sample.prediction.astype(int), labels=classes, ax=axes, colorbar=False
    )
    figures["confusion_matrix.png"] = figure
    binary = set(np.unique(sample.label).tolist()) <= {0.0, 1.0}
    if binary and sample.probability is not None and sample.probability.shape[1] == 2:
        score = sample.probability[:, 1]
        figure, axes = _axes(f"ROC curve ({where})")
        RocCurveDisplay.from_predictions(sample.label, score, ax=axes, name="model", plot_chance_level=True)
        figures["roc_curve.png"] = figure
        figure, axes = _axes(f"Precision-recall curve ({where})")
        PrecisionRecallDisplay.from_predictions(sample.label, score, ax=axes, name="model", plot_chance_level=True)
        figures["pr_curve.png"] = figure
    return figures


def _regression(sample: PredictionSample, where: str) -> dict[str, Figure]:
    from sklearn.metrics import PredictionErrorDisplay

    assert sample.label is not None
    figures = {}
    for kind, name, title in (
        ("actual_vs_predicted", "predicted_vs_actual.png", "Actual against predicted"),
        ("residual_vs_predicted", "residuals.png", "Residuals against predicted"),
    ):
        figure, axes = _axes(f"{title} ({where})")
        PredictionErrorDisplay.from_predictions(
            sample.label,
            sample.prediction,
            kind=kind,
            ax=axes,
            subsample=None,
            scatter_kwargs={"s": 4, "alpha": 0.4},
        )
        figures[name] = figure
    return figures


def _cluster_sizes(sample: PredictionSample, where: str) -> Figure:
    import numpy as np

    clusters, counts = np.unique(sample.prediction.astype(int), return_counts=True)
    figure, axes = _axes(f"Cluster sizes ({where})")
    axes.bar([str(cluster) for cluster in clusters], counts)
    axes.set_xlabel("cluster")
    axes.set_ylabel("rows")
    return figure


def _weights(weights: Sequence[tuple[str, float]], kind: str) -> Figure:
    figure, axes = _axes(f"Top feature {kind}s", size=(7, 0.8 + 0.28 * len(weights)))
    names = [name for name, _ in weights]
    values = [value for _, value in weights]
    axes.barh(range(len(weights)), values, color=["#1f77b4" if value >= 0 else "#d62728" for value in values])
    axes.set_yticks(range(len(weights)), names, fontsize=8)
    axes.invert_yaxis()  # the largest on top
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_xlabel(kind)
    return figure
