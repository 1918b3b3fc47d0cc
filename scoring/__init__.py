"""The JVM-free scorer that passed the parity gate, and the ALS top-k recommender. numpy and onnxruntime only:
importing it loads neither Ray Serve, FastAPI, MLflow nor Spark."""

from scoring._recommender import Recommender
from scoring._scorer import (
    NULL_STRING,
    PREDICTION,
    PROBABILITY,
    SCORER_ARTIFACT,
    SCORER_FACTORS,
    SCORER_ONNX,
    SCORER_SPEC,
    FieldKind,
    InputField,
    OnnxScorer,
    RecordError,
    ScorerSpec,
    as_integer,
    format_outputs,
    positional_record,
    records_to_feeds,
)

__all__ = [
    "NULL_STRING",
    "PREDICTION",
    "PROBABILITY",
    "SCORER_ARTIFACT",
    "SCORER_FACTORS",
    "SCORER_ONNX",
    "SCORER_SPEC",
    "FieldKind",
    "InputField",
    "OnnxScorer",
    "Recommender",
    "RecordError",
    "ScorerSpec",
    "as_integer",
    "format_outputs",
    "positional_record",
    "records_to_feeds",
]
