"""MLflow records of a sweep: a parent run with the leaderboard and best config, a child run per trial."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipeline.config import TrackingConfig
from pipeline.tracking._versions import connect


@dataclass(frozen=True)
class TrialRecord:
    """One finished (or failed) trial as the sweep saw it."""

    trial_id: str
    algorithm: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, float]
    seconds: float
    error: str | None = None
    iterations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def leaderboard_rows(trials: Sequence[TrialRecord], metric: str) -> list[dict[str, Any]]:
    """One row per trial in the given (leaderboard) order: rank, trial, algorithm, the metric, seconds,
    status, error and a column per hyperparameter (``hp.<name>``; empty where a trial has no such one).
    What ``leaderboard.csv`` holds and ``SweepResult.leaderboard`` shows."""
    names = sorted({name for trial in trials for name in trial.hyperparameters})
    rows = []
    for rank, trial in enumerate(trials, start=1):
        row: dict[str, Any] = {
            "rank": rank,
            "trial_id": trial.trial_id,
            "algorithm": trial.algorithm,
            metric: trial.metrics.get(metric),
            "seconds": round(trial.seconds, 1),
            "status": "failed" if trial.error else "ok",
            "error": trial.error,
        }
        row.update({f"hp.{name}": trial.hyperparameters.get(name) for name in names})
        rows.append(row)
    return rows


def best_config(best: TrialRecord | None) -> dict[str, Any]:
    """The winner as a ``model:`` section (what ``best_config.yaml`` holds); empty without a winner."""
    return {} if best is None else {"algorithm": best.algorithm, "hyperparameters": dict(best.hyperparameters)}


def start_sweep_run(
    tracking: TrackingConfig, name: str, tags: Mapping[str, str], params: Mapping[str, Any]
) -> str:
    """Create the sweep's parent run (left RUNNING until :func:`finish_sweep_run`); returns its id."""
    client = connect(tracking)
    experiment = client.get_experiment_by_name(tracking.experiment)
    assert experiment is not None  # connect() creates it
    run = client.create_run(experiment.experiment_id, run_name=name, tags={**tags, "sweep": name})
    for key, value in params.items():
        client.log_param(run.info.run_id, key, str(value)[:6000])
    return str(run.info.run_id)


def log_trial_runs(tracking: TrackingConfig, parent_run_id: str, trials: Sequence[TrialRecord]) -> None:
    """A child run per trial with its params, metrics, duration and, if it failed, its error."""
    client = connect(tracking)
    parent = client.get_run(parent_run_id)
    logged = {
        run.data.tags.get("trial_id")
        for run in client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
        )
    }
    for trial in trials:
        if trial.trial_id in logged:
            continue  # a resumed sweep logs only what it has not logged before
        tags = {"mlflow.parentRunId": parent_run_id, "trial_id": trial.trial_id, "algorithm": trial.algorithm}
        tags.update({key: str(value) for key, value in trial.extra.items()})
        if trial.error:
            tags["error"] = trial.error[:4000]
        run = client.create_run(parent.info.experiment_id, run_name=f"trial-{trial.trial_id}", tags=tags)
        run_id = run.info.run_id
        client.log_param(run_id, "algorithm", trial.algorithm)
        for key, value in trial.hyperparameters.items():
            client.log_param(run_id, f"hp.{key}", value)
        for key, value in trial.metrics.items():
            client.log_metric(run_id, key, float(value))
        client.log_metric(run_id, "trial_seconds", trial.seconds)
        client.set_terminated(run_id, status="FAILED" if trial.error else "FINISHED")


def finish_sweep_run(
    tracking: TrackingConfig,
    parent_run_id: str,
    leaderboard: Sequence[TrialRecord],
    metric: str,
    best: TrialRecord | None,
    outcome: Mapping[str, Any],
) -> None:
    """Attach the leaderboard (CSV), its plots (``plots/trials.png``, ``plots/hyperparameters.png``) and the
    best config (YAML) to the parent run and close it."""
    client = connect(tracking)
    rows = leaderboard_rows(leaderboard, metric)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["rank"])
    writer.writeheader()
    writer.writerows(rows)
    client.log_text(parent_run_id, buffer.getvalue(), "leaderboard.csv")
    from pipeline.tracking._sweep_plots import hyperparameters_figure, trials_figure

    client.log_figure(parent_run_id, trials_figure(leaderboard, metric), "plots/trials.png")
    client.log_figure(parent_run_id, hyperparameters_figure(leaderboard, metric), "plots/hyperparameters.png")
    if best is not None:
        section = {"model": best_config(best)}
        client.log_text(parent_run_id, yaml.safe_dump(section, sort_keys=False), "best_config.yaml")
        client.log_param(parent_run_id, "best.algorithm", best.algorithm)
        client.log_metric(parent_run_id, f"best_validation_{metric}", float(best.metrics[metric]))
    for key, value in outcome.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            client.log_metric(parent_run_id, key, float(value))
        else:
            client.set_tag(parent_run_id, key, str(value))
    client.set_terminated(parent_run_id, status="FINISHED")
