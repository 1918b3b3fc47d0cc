"""What a sweep returns: its trials best first, the refit best, and views of them (a DataFrame, plots)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.tracking import TrialRecord, best_config, hyperparameters_figure, leaderboard_rows, trials_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from pipeline.data import DeltaWrite
    from pipeline.jobs import TrainResult


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: every trial, the best, and the refit model registered from it."""

    name: str
    path: str  # Ray Tune's experiment folder (what ``resume`` restores)
    metric: str
    mode: str  # "max" or "min"
    trials: list[TrialRecord]  # leaderboard order: best first, failed trials last
    parent_run_id: str  # the sweep's MLflow run; the trials are its child runs
    refit: TrainResult | None  # the best refit on the whole training split, tested and registered
    seconds: float  # everything, from starting the Spark actor to closing the MLflow run
    trials_seconds: float = 0.0  # Tune running the trials
    refit_seconds: float = 0.0  # refitting, testing, logging and registering the best
    startup_seconds: float = 0.0  # the actor starting Spark, reading, checking, profiling, caching the split
    features_seconds: float = 0.0  # the actor fitting and caching the first feature stages on the folds
    # From the first feature stages' start to the last trial's end: the actor fits those features while
    # Tune starts its trial workers, so this is less than features_seconds + trials_seconds.
    search_seconds: float = 0.0
    ingested: DeltaWrite | None = None  # the table written first (``ingest_missing`` and no table yet)

    @property
    def best(self) -> TrialRecord | None:
        ok = [trial for trial in self.trials if not trial.error and self.metric in trial.metrics]
        return ok[0] if ok else None

    @property
    def best_config(self) -> dict[str, Any]:
        """The winner as a ``model:`` section (what ``best_config.yaml`` in the parent run holds)."""
        return best_config(self.best)

    @property
    def version(self) -> int | None:
        """The registered version of the refit best, if any."""
        return None if self.refit is None else self.refit.version

    @property
    def leaderboard(self) -> pd.DataFrame:
        """One row per trial, best first (index: rank): trial, algorithm, the metric, seconds, status,
        error, and a column per hyperparameter (``hp.<name>``)."""
        import pandas as pd

        return pd.DataFrame(leaderboard_rows(self.trials, self.metric)).set_index("rank")

    def plot_trials(self) -> Figure:
        """The validation metric per trial (the figure logged to the parent run as ``plots/trials.png``)."""
        return trials_figure(self.trials, self.metric)

    def plot_hyperparameters(self) -> Figure:
        """The metric per varied hyperparameter (logged to the parent run as ``plots/hyperparameters.png``)."""
        return hyperparameters_figure(self.trials, self.metric)


def trial_cv(trial: TrialRecord) -> dict[str, tuple[float, float]]:
    """A CV trial's metrics as ``train``'s ``cv``: each metric's mean over the folds and its std."""
    return {
        name: (value, trial.metrics.get(f"{name}_std", 0.0))
        for name, value in trial.metrics.items()
        if not name.endswith("_std") and name not in ("fit_seconds", "budget")
    }
