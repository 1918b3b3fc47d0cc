"""Typed, validated configuration. Pure: imports no engine and nothing else of the pipeline."""

from pipeline.config._loader import ENV_PREFIX, ConfigError, config_from_dict, load_config
from pipeline.config._models import (
    DataConfig,
    GeneratedData,
    IngestConfig,
    ModelConfig,
    PipelineConfig,
    RayConfig,
    SparkConfig,
    SplitConfig,
    TableSource,
    TrackingConfig,
)

__all__ = [
    "ENV_PREFIX",
    "ConfigError",
    "DataConfig",
    "GeneratedData",
    "IngestConfig",
    "ModelConfig",
    "PipelineConfig",
    "RayConfig",
    "SparkConfig",
    "SplitConfig",
    "TableSource",
    "TrackingConfig",
    "config_from_dict",
    "load_config",
]
