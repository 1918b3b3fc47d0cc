"""MLflow tracking and registry: runs, registered versions, aliases and data lineage."""

from pipeline.tracking._aliases import AliasMove, promote, rollback
from pipeline.tracking._comparisons import find_version, log_comparison
from pipeline.tracking._mlflow import (
    Registration,
    config_hash,
    load_spark_model,
    log_training,
    model_inputs,
    version_lineage,
)
from pipeline.tracking._sweep_plots import hyperparameters_figure, trials_figure
from pipeline.tracking._sweeps import (
    TrialRecord,
    best_config,
    finish_sweep_run,
    leaderboard_rows,
    log_trial_runs,
    start_sweep_run,
)
from pipeline.tracking._training_plots import training_figures
from pipeline.tracking._versions import (
    RegistryError,
    VersionSummary,
    connect,
    list_versions,
)
from pipeline.tracking.facts import CHALLENGER, CHAMPION, LINEAGE_TAGS, PREVIOUS, model_uri

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
    "best_config",
    "config_hash",
    "connect",
    "find_version",
    "finish_sweep_run",
    "hyperparameters_figure",
    "leaderboard_rows",
    "list_versions",
    "load_spark_model",
    "log_comparison",
    "log_training",
    "log_trial_runs",
    "model_inputs",
    "model_uri",
    "promote",
    "rollback",
    "start_sweep_run",
    "training_figures",
    "trials_figure",
    "version_lineage",
]
