"""Metric definitions and trivial baselines: pure maths, no engine."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

Direction = Literal["max", "min"]

# Metric names per task, in the order they are reported; the first is the one a model is judged by.
TASK_METRICS: Mapping[str, tuple[str, ...]] = {
    "classification": ("auc_roc", "auc_pr", "accuracy", "f1", "weighted_precision", "weighted_recall", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
    "clustering": ("silhouette",),
    "recommendation": ("rmse", "precision_at_k", "ndcg_at_k"),
}
_LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}
# Areas under the ROC and PR curves rank two classes; a label of three or more is judged by weighted F1
# (MLlib's MulticlassClassificationEvaluator default), and its other metrics are those it computes.
BINARY_ONLY = ("auc_roc", "auc_pr")
MULTICLASS_METRICS = ("f1", "accuracy", "weighted_precision", "weighted_recall", "log_loss")


def task_metrics(task: str, label_classes: int | None = None) -> tuple[str, ...]:
    """The metrics reported for a task, the first the one a model is judged by; ``label_classes`` (known
    once the data is read) narrows classification to what a multiclass label can be scored on."""
    if task == "classification" and label_classes is not None and label_classes > 2:
        return MULTICLASS_METRICS
    return TASK_METRICS[task]


def primary_metric(task: str, label_classes: int | None = None) -> str:
    return task_metrics(task, label_classes)[0]


def direction(metric: str) -> Direction:
    return "min" if metric in _LOWER_IS_BETTER else "max"


def is_better(metric: str, candidate: float, reference: float) -> bool:
    return candidate < reference if direction(metric) == "min" else candidate > reference


def majority_class_baseline(
    train_counts: Mapping[float, int], test_counts: Mapping[float, int]
) -> dict[str, float]:
    """Metrics of always predicting the training majority class with the training class shares."""
    train_total = sum(train_counts.values())
    test_total = sum(test_counts.values())
    if train_total == 0 or test_total == 0:
        raise ValueError("baseline needs non-empty train and test label counts")
    majority = max(train_counts, key=lambda label: train_counts[label])
    prior = {label: count / train_total for label, count in train_counts.items()}
    eps = 1e-15
    log_loss = -sum(count * math.log(max(prior.get(label, 0.0), eps)) for label, count in test_counts.items())
    accuracy = test_counts.get(majority, 0) / test_total
    return {"auc_roc": 0.5, "accuracy": accuracy, "log_loss": log_loss / test_total}


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Sample mean and (population) standard deviation, as reported for k-fold CV."""
    if not values:
        raise ValueError("no values")
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
