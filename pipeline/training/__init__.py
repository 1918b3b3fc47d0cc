"""Training: data checks, feature resolution, the Spark ML pipeline, evaluation against baselines."""

from pipeline.training._report import render_report
from pipeline.training._train import (
    PreparedData,
    TrainedModel,
    assign_folds,
    build_pipeline,
    evaluate,
    feature_stages,
    kfold_splits,
    make_estimator,
    prepare,
    train,
)

__all__ = [
    "PreparedData",
    "TrainedModel",
    "assign_folds",
    "build_pipeline",
    "evaluate",
    "feature_stages",
    "kfold_splits",
    "make_estimator",
    "prepare",
    "render_report",
    "train",
]
