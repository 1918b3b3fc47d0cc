"""MLflow tracking and registry: runs, registered versions, aliases and data lineage."""

from pipeline.tracking._mlflow import (
    CHALLENGER,
    CHAMPION,
    LINEAGE_TAGS,
    Registration,
    RegistryError,
    VersionSummary,
    config_hash,
    connect,
    list_versions,
    load_spark_model,
    log_training,
    promote,
    version_lineage,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "LINEAGE_TAGS",
    "Registration",
    "RegistryError",
    "VersionSummary",
    "config_hash",
    "connect",
    "list_versions",
    "load_spark_model",
    "log_training",
    "promote",
    "version_lineage",
]
