"""Features: roles declared or inferred per column (pure), and the Spark ML stages that build them."""

from pipeline.features._inference import ColumnProfile, FeatureSpec, ValueKind, infer_feature_spec
from pipeline.features._spark import (
    FEATURES_COL,
    FeatureStages,
    build_feature_stages,
    profile_columns,
    slot_names,
    value_kind,
)

__all__ = [
    "FEATURES_COL",
    "ColumnProfile",
    "FeatureSpec",
    "FeatureStages",
    "ValueKind",
    "build_feature_stages",
    "infer_feature_spec",
    "profile_columns",
    "slot_names",
    "value_kind",
]
