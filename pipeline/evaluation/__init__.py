"""Evaluation: metric definitions, baselines and model comparisons (pure), and Spark evaluators."""

from pipeline.evaluation._compare import PairedOutcomes, PredictionSample, offline_comparisons
from pipeline.evaluation._metrics import (
    BINARY_ONLY,
    TASK_METRICS,
    direction,
    is_better,
    majority_class_baseline,
    mean_and_std,
    primary_metric,
    task_metrics,
)
from pipeline.evaluation._spark import (
    baseline_metrics,
    classification_metrics,
    clustering_metrics,
    paired_clusters,
    paired_ndcg,
    paired_outcomes,
    prediction_sample,
    ranking_metrics,
    regression_metrics,
)

__all__ = [
    "BINARY_ONLY",
    "TASK_METRICS",
    "PairedOutcomes",
    "PredictionSample",
    "baseline_metrics",
    "classification_metrics",
    "clustering_metrics",
    "direction",
    "is_better",
    "majority_class_baseline",
    "mean_and_std",
    "offline_comparisons",
    "paired_clusters",
    "paired_ndcg",
    "paired_outcomes",
    "prediction_sample",
    "primary_metric",
    "ranking_metrics",
    "regression_metrics",
    "task_metrics",
]
