"""MLflow tracking and registry: runs, registered versions, aliases and data lineage.

``facts`` holds what both sides of the registry must agree on (alias and tag names, ``models:/`` URIs, the
``/train`` outcome record), pure; ``registry`` is the Spark-free surface the serving app uses (connect,
promote, roll back, set an alias, log a comparison). The private modules: ``_mlflow`` (a training's run and
registration), ``_versions`` (listing and finding versions), ``_aliases`` (promote, rollback),
``_comparisons``, ``_sweeps`` (a sweep's parent and trial runs) and the plots (``_training_plots``,
``_sweep_plots``).
"""

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
