"""Every metric of a task from one small aggregate of the predictions: pure maths, no engine.

Spark computes the aggregate in one job (counts per label, prediction and score; sums of errors), and
these functions turn it into the metrics MLlib's evaluators would report, by the same definitions:
weighted precision, recall and F1 weigh each class by its share of the labels; the areas under the ROC
and precision-recall curves are trapezoids through one point per distinct score, the PR curve starting
at (0, the first point's precision), as MLlib's ``BinaryClassificationMetrics`` draws them.
"""

from __future__ import annotations

import math

import numpy as np

# Scores are grouped to this precision (a few thousand groups at any data size); rows whose scores round
# together count as ties. MLlib's evaluator groups into 1,000 bins; on benchmarks/training.py's 200,000
# test rows both gave the same AUCs to 4 decimals.
SCORE_DECIMALS = 4
LOG_LOSS_EPSILON = 1e-15  # as MLlib clips a probability before its logarithm


def classification_summary(
    label: np.ndarray,
    prediction: np.ndarray,
    count: np.ndarray,
    score: np.ndarray | None = None,
    loss_sum: float | None = None,
) -> dict[str, float]:
    """Metrics from groups of rows: each group's label, predicted class, positive-class score (for two
    classes) and row count; ``loss_sum`` is the summed log loss of every row when probabilities exist."""
    label, prediction, count = np.asarray(label), np.asarray(prediction), np.asarray(count, dtype=np.float64)
    total = count.sum()
    if total <= 0:
        raise ValueError("no rows to evaluate")
    classes = np.union1d(label, prediction)
    metrics: dict[str, float] = {}
    if score is not None:
        metrics.update(_areas(label, np.asarray(score, dtype=np.float64), count))
    correct = count[label == prediction].sum()
    precision_sum = recall_sum = f1_sum = 0.0
    for cls in classes:
        actual = count[label == cls].sum()
        predicted = count[prediction == cls].sum()
        hits = count[(label == cls) & (prediction == cls)].sum()
        precision = hits / predicted if predicted else 0.0
        recall = hits / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        share = actual / total
        precision_sum += share * precision
        recall_sum += share * recall
        f1_sum += share * f1
    metrics.update(
        {
            "accuracy": correct / total,
            "f1": f1_sum,
            "weighted_precision": precision_sum,
            "weighted_recall": recall_sum,
        }
    )
    if loss_sum is not None:
        metrics["log_loss"] = loss_sum / total
    return {name: float(value) for name, value in metrics.items()}


def _areas(label: np.ndarray, score: np.ndarray, count: np.ndarray) -> dict[str, float]:
    """Areas under the ROC and PR curves, thresholding at each distinct score from the highest down."""
    scores, group = np.unique(score, return_inverse=True)
    positives = np.bincount(group, weights=count * (label == 1), minlength=len(scores))[::-1]
    negatives = np.bincount(group, weights=count * (label != 1), minlength=len(scores))[::-1]
    true_positive, false_positive = np.cumsum(positives), np.cumsum(negatives)
    all_positive, all_negative = true_positive[-1], false_positive[-1]
    if all_positive == 0 or all_negative == 0:
        return {}  # one class only: neither curve is defined
    tpr = np.concatenate([[0.0], true_positive / all_positive, [1.0]])
    fpr = np.concatenate([[0.0], false_positive / all_negative, [1.0]])
    recall = true_positive / all_positive
    precision = true_positive / (true_positive + false_positive)
    recall = np.concatenate([[0.0], recall])
    precision = np.concatenate([[precision[0]], precision])
    return {"auc_roc": _trapezoid(fpr, tpr), "auc_pr": _trapezoid(recall, precision)}


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def regression_summary(
    rows: float, squared_error: float, absolute_error: float, label_sum: float, label_square_sum: float
) -> dict[str, float]:
    """RMSE, MAE and R² from sums over the rows (R² as MLlib: 1 - SSE / total sum of squares)."""
    if rows <= 0:
        raise ValueError("no rows to evaluate")
    total_squares = label_square_sum - label_sum * label_sum / rows
    r2 = 1.0 - squared_error / total_squares if total_squares > 0 else (1.0 if squared_error == 0 else -math.inf)
    return {"rmse": math.sqrt(squared_error / rows), "mae": absolute_error / rows, "r2": r2}
