"""Evaluation: metric definitions and baselines (pure), and Spark evaluators."""

from pipeline.evaluation._metrics import (
    TASK_METRICS,
    direction,
    is_better,
    majority_class_baseline,
    mean_and_std,
    primary_metric,
)
from pipeline.evaluation._spark import (
    baseline_metrics,
    classification_metrics,
    clustering_metrics,
    ranking_metrics,
    regression_metrics,
)

__all__ = [
    "TASK_METRICS",
    "baseline_metrics",
    "classification_metrics",
    "clustering_metrics",
    "direction",
    "is_better",
    "majority_class_baseline",
    "mean_and_std",
    "primary_metric",
    "ranking_metrics",
    "regression_metrics",
]
