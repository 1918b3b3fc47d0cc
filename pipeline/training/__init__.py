"""Training: data checks, feature resolution, the Spark ML pipeline, evaluation against baselines."""

from pipeline.training._report import render_report
from pipeline.training._train import (
    PreparedData,
    TrainedModel,
    build_pipeline,
    evaluate,
    feature_stages,
    make_estimator,
    prepare,
    train,
)

__all__ = [
    "PreparedData",
    "TrainedModel",
    "build_pipeline",
    "evaluate",
    "feature_stages",
    "make_estimator",
    "prepare",
    "render_report",
    "train",
]
