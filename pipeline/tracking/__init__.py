"""MLflow tracking and registry: runs, registered versions, aliases and data lineage."""

from pipeline.tracking._aliases import PREVIOUS, AliasMove, promote, rollback
from pipeline.tracking._comparisons import find_version, log_comparison
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
    version_lineage,
)
from pipeline.tracking._sweep_plots import hyperparameters_figure, trials_figure
from pipeline.tracking._sweeps import TrialRecord, finish_sweep_run, log_trial_runs, start_sweep_run
from pipeline.tracking._training_plots import training_figures

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "LINEAGE_TAGS",
    "PREVIOUS",
    "AliasMove",
    "Registration",
    "RegistryError",
    "TrialRecord",
    "VersionSummary",
    "config_hash",
    "connect",
    "find_version",
    "finish_sweep_run",
    "hyperparameters_figure",
    "list_versions",
    "load_spark_model",
    "log_comparison",
    "log_training",
    "log_trial_runs",
    "promote",
    "rollback",
    "start_sweep_run",
    "training_figures",
    "trials_figure",
    "version_lineage",
]
