"""Ray Tune sweeps over MLlib estimators: light trials calling the one Spark-owning actor."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline._console import Console
from pipeline.algorithms import get_algorithm
from pipeline.config import PipelineConfig, TuningConfig
from pipeline.errors import PipelineError
from pipeline.runtime import HEAD_NODE_RESOURCE
from pipeline.tracking import (
    TrialRecord,
    config_hash,
    finish_sweep_run,
    hyperparameters_figure,
    log_trial_runs,
    start_sweep_run,
    trials_figure,
)
from pipeline.tuning._space import SearchSpace, budget_levels, parse_space, tuning_objective
from pipeline.tuning._trainer import TRAINER_NAME, SparkTrainer

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from pipeline.jobs import TrainResult

_STATE_FILE = "pipeline_sweep.json"  # beside Tune's own experiment state: the MLflow parent run id


class SweepError(PipelineError):
    """A sweep that cannot run or produced no successful trial."""


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

    @property
    def best(self) -> TrialRecord | None:
        ok = [trial for trial in self.trials if not trial.error and self.metric in trial.metrics]
        return ok[0] if ok else None

    @property
    def best_config(self) -> dict[str, Any]:
        """The winner as a ``model:`` section (what ``best_config.yaml`` in the parent run holds)."""
        best = self.best
        return {} if best is None else {"algorithm": best.algorithm, "hyperparameters": dict(best.hyperparameters)}

    @property
    def version(self) -> int | None:
        """The registered version of the refit best, if any."""
        return None if self.refit is None else self.refit.version

    @property
    def leaderboard(self) -> pd.DataFrame:
        """One row per trial, best first (index: rank): trial, algorithm, the metric, seconds, status,
        error, and a column per hyperparameter (``hp.<name>``)."""
        import pandas as pd

        rows = []
        for rank, trial in enumerate(self.trials, start=1):
            row: dict[str, Any] = {
                "rank": rank,
                "trial_id": trial.trial_id,
                "algorithm": trial.algorithm,
                self.metric: trial.metrics.get(self.metric),
                "seconds": round(trial.seconds, 1),
                "status": "failed" if trial.error else "ok",
                "error": trial.error,
            }
            row.update({f"hp.{key}": value for key, value in sorted(trial.hyperparameters.items())})
            rows.append(row)
        return pd.DataFrame(rows).set_index("rank")

    def plot_trials(self) -> Figure:
        """The validation metric per trial (the figure logged to the parent run as ``plots/trials.png``)."""
        return trials_figure(self.trials, self.metric)

    def plot_hyperparameters(self) -> Figure:
        """The metric per varied hyperparameter (logged to the parent run as ``plots/hyperparameters.png``)."""
        return hyperparameters_figure(self.trials, self.metric)


def sweep_name(config: PipelineConfig, resume: bool = False) -> str:
    """``tuning.name``, or a new ``<experiment>-sweep-<UTC time>`` (the newest such one to resume)."""
    tuning = config.tuning or TuningConfig()
    if tuning.name:
        return tuning.name
    prefix = f"{config.tracking.experiment}-sweep-"
    if resume:
        earlier = sorted(p.name for p in Path(tuning.storage).glob(f"{prefix}*") if p.is_dir())
        if not earlier:
            raise SweepError(f"--resume: no sweep named {prefix}* under {tuning.storage}")
        return earlier[-1]
    return f"{prefix}{datetime.now(UTC):%Y%m%d-%H%M%S}"


def param_space(config: PipelineConfig, space: SearchSpace) -> dict[str, Any]:
    """Ray Tune's ``param_space``: explicit grid points, or distributions (per algorithm) for sampling."""
    from ray import tune

    tuning = config.tuning or TuningConfig()
    if tuning.search == "grid":
        return {"point": tune.grid_search(space.grid_points())}
    per_algorithm: dict[str, dict[str, Any]] = {}
    for algorithm, dimensions in space.algorithms.items():
        sampled: dict[str, Any] = {}
        for dimension in dimensions:
            low, high = (*dimension.values, None, None)[:2]
            if dimension.kind in ("grid", "choice"):
                sampled[dimension.name] = tune.choice(list(dimension.values))
            elif dimension.kind == "uniform":
                sampled[dimension.name] = tune.uniform(low, high)
            elif dimension.kind == "loguniform":
                sampled[dimension.name] = tune.loguniform(low, high)
            else:
                sampled[dimension.name] = tune.randint(low, high)
        per_algorithm[algorithm] = sampled
    algorithms = list(space.algorithms)
    return {
        "algorithm": tune.choice(algorithms) if len(algorithms) > 1 else algorithms[0],
        "hp": per_algorithm,
    }


def _point(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if "point" in params:
        return params["point"]["algorithm"], dict(params["point"]["hyperparameters"])
    algorithm = params["algorithm"]
    return algorithm, dict(params["hp"][algorithm])


def run_trial(params: dict[str, Any]) -> None:
    """A Tune trial: ask the Spark actor to fit; with early stopping, once per budget level (a rung)."""
    import ray
    from ray import tune

    algorithm, hyperparameters = _point(params)
    trainer: Any = ray.get_actor(TRAINER_NAME)
    pool = tune.get_context().get_trial_id() or "trial"
    app = ray.get(trainer.describe.remote())["app"]  # recorded per trial: every trial shares one Spark app
    rungs = params.get("_rungs")
    spec = get_algorithm(algorithm)
    if rungs and spec.budget_param:
        maximum = int(spec.merged(hyperparameters)[spec.budget_param])
        for budget in budget_levels(maximum, rungs["rungs"], rungs["factor"]):
            budgeted = {**hyperparameters, spec.budget_param: budget}
            metrics: dict[str, float] = dict(ray.get(trainer.fit.remote(algorithm, budgeted, pool)))
            tune.report({**metrics, "budget": budget, "spark_app": app})
        return
    tune.report({**ray.get(trainer.fit.remote(algorithm, hyperparameters, pool)), "spark_app": app})


def run_sweep(config: PipelineConfig, console: Console, resume: bool = False) -> SweepResult:
    """Run (or resume) the configured sweep, log it to MLflow, then refit, test and register the best.

    Ray must be running; this process must not own a Spark session (the actor does).
    """
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    tuning = config.tuning
    if tuning is None:
        raise SweepError("the config has no `tuning:` section")
    space = parse_space(config)
    tuning_objective(config)  # a metric of another task: refused before Spark starts
    name = sweep_name(config, resume)
    storage = Path(tuning.storage)
    experiment_dir = storage / name
    state_file = experiment_dir / _STATE_FILE
    started = time.monotonic()
    if resume and not tune.Tuner.can_restore(str(experiment_dir)):
        raise SweepError(f"--resume: no sweep to resume at {experiment_dir}")
    if not resume and experiment_dir.exists():
        raise SweepError(
            f"a sweep named {name!r} already exists at {experiment_dir}: pass --resume to finish it, "
            "or set tuning.name to start another"
        )
    # The first algorithm decides the task's label checks; all share one task (checked at load).
    first = next(iter(space.algorithms))
    # (without the configured model's hyperparameters: they belong to `model.algorithm`, which may be another)
    model = config.model.model_copy(update={"algorithm": first, "hyperparameters": {}})
    trainer_config = config.model_copy(update={"model": model})
    remote: Any = ray.remote
    actor_class = remote(num_cpus=0, max_concurrency=tuning.max_concurrent_trials + 4)(SparkTrainer)
    with console.timed("Starting the Spark-owning actor (reads the data once, caches the features)"):
        # On the head node, with RayDP's masters: losing a worker node must not take the Spark driver.
        placed = actor_class.options(name=TRAINER_NAME, resources={HEAD_NODE_RESOURCE: 0.001})
        trainer = placed.remote(trainer_config.model_dump_json())
        try:
            described = ray.get(trainer.describe.remote())
        except Exception as error:
            ray.kill(trainer)
            cause = getattr(error, "cause", None)
            if isinstance(cause, PipelineError):
                raise cause from None  # bad data: one clear line, not Ray's traceback
            raise
    console.step(f"Spark app {described['app']} (UI {described['ui']}) serves every trial")
    try:
        # The label's classes are known now: a multiclass label is judged by F1, and cannot be by AUC.
        metric, mode = tuning_objective(config, described["label_classes"])
        parent_run_id = _parent_run(config, name, metric, described, state_file, resume)
        trainable = tune.with_resources(run_trial, {"cpu": tuning.trial_cpus})
        space_params = param_space(config, space)
        scheduler = None
        if tuning.early_stopping is not None:
            rungs = tuning.early_stopping
            space_params["_rungs"] = {"rungs": rungs.rungs, "factor": rungs.reduction_factor}
            scheduler = ASHAScheduler(
                time_attr="training_iteration",
                max_t=rungs.rungs,
                grace_period=1,
                reduction_factor=rungs.reduction_factor,
            )
        if resume:
            console.step(f"Resuming {name} from {experiment_dir}: finished trials are kept")
            tuner = tune.Tuner.restore(str(experiment_dir), trainable=trainable, resume_errored=False)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=space_params,
                tune_config=tune.TuneConfig(
                    metric=metric,
                    mode=mode,
                    num_samples=tuning.num_samples,
                    max_concurrent_trials=tuning.max_concurrent_trials,
                    time_budget_s=tuning.time_budget_s,
                    scheduler=scheduler,
                    search_alg=_searcher(tuning, metric, mode, config.data.split.seed),
                ),
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=str(storage),
                    failure_config=tune.FailureConfig(max_failures=tuning.max_failures),
                    verbose=1,
                ),
            )
        trials_started = time.monotonic()
        try:
            grid = tuner.fit()
        except Exception as error:  # Tune's own failure (not a trial's): one line, not its traceback
            raise SweepError(f"the sweep {name!r} stopped: {_root_cause(error)}") from error
        trials_seconds = time.monotonic() - trials_started
        trials = _leaderboard(grid, metric, mode)
        log_trial_runs(config.tracking, parent_run_id, trials)
        best = next((t for t in trials if not t.error and metric in t.metrics), None)
        refit = None
        refit_started = time.monotonic()
        if best is not None:
            with console.timed(f"Refitting the best ({best.algorithm}) on the whole training split"):
                try:
                    refit = ray.get(
                        trainer.refit_and_register.remote(best.algorithm, best.hyperparameters, parent_run_id)
                    )
                except Exception as error:  # one line naming what was refit, not Ray's wrapper
                    chosen = f"{best.algorithm}, {json.dumps(best.hyperparameters, sort_keys=True)}"
                    raise SweepError(
                        f"refitting the best of {name!r} ({chosen}) failed: {_root_cause(error)}"
                    ) from error
        refit_seconds = time.monotonic() - refit_started
        outcome = {
            "trials": len(trials),
            "failed_trials": sum(1 for t in trials if t.error),
            "sweep_seconds": time.monotonic() - started,
        }
        if refit:
            outcome.update({f"test_{k}": v for k, v in refit.metrics.items()})
            outcome["registered_version"] = refit.version
        finish_sweep_run(config.tracking, parent_run_id, trials, metric, best, outcome)
        if best is None:
            raise SweepError(no_success_message(name, trials, parent_run_id))
        return SweepResult(name, str(experiment_dir), metric, mode, trials, parent_run_id, refit,
                           time.monotonic() - started, trials_seconds, refit_seconds)  # fmt: skip
    finally:
        try:
            ray.get(trainer.stop.remote(), timeout=60)
        finally:
            ray.kill(trainer)


def no_success_message(name: str, trials: list[TrialRecord], parent_run_id: str) -> str:
    """One line for a sweep without a successful trial: the first failure (trial, algorithm,
    hyperparameters, MLlib's own error) and where the others are."""
    failed = [trial for trial in trials if trial.error]
    if not failed:
        return f"no trial of {name!r} reported the metric; see the MLflow run {parent_run_id}"
    first = failed[0]
    others = f"; {len(failed) - 1} more failed" if len(failed) > 1 else ""
    return (f"no trial of {name!r} succeeded: trial {first.trial_id} ({first.algorithm}, "
            f"{json.dumps(first.hyperparameters, sort_keys=True)}) failed: {first.error}{others} "
            f"(every error is in the MLflow run {parent_run_id})")  # fmt: skip


def _searcher(tuning: TuningConfig, metric: str, mode: str, seed: int) -> Any:
    if tuning.search == "random":
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(random_state=seed)  # the same config samples the same trials
    if tuning.search != "optuna":
        return None
    try:
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as error:  # pragma: no cover - depends on the optional package
        raise SweepError("search: optuna needs the optuna package (`pip install optuna`)") from error
    return OptunaSearch(metric=metric, mode=mode)


def _parent_run(
    config: PipelineConfig, name: str, metric: str, described: dict[str, Any], state_file: Path, resume: bool
) -> str:
    if resume and state_file.exists():
        return str(json.loads(state_file.read_text())["parent_run_id"])
    tags = {**described["lineage"], "config_hash": config_hash(config), "kind": "sweep"}
    tuning = config.tuning or TuningConfig()
    params = {
        "search": tuning.search,
        "metric": metric,
        "num_samples": tuning.num_samples,
        "max_concurrent_trials": tuning.max_concurrent_trials,
        "space": json.dumps(tuning.algorithms or {config.model.algorithm: tuning.space}),
    }
    run_id = start_sweep_run(config.tracking, name, tags, params)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"parent_run_id": run_id}))
    return run_id


def _leaderboard(grid: Any, metric: str, mode: str) -> list[TrialRecord]:
    records = []
    for result in grid:
        metrics = dict(result.metrics or {})
        params = result.config or {}
        algorithm, hyperparameters = _point(params) if params else ("?", {})
        values = {k: float(v) for k, v in metrics.items() if _is_model_metric(k, v)}
        error = None if result.error is None else _root_cause(result.error)
        records.append(
            TrialRecord(
                trial_id=str(metrics.get("trial_id") or result.path.rsplit("/", 1)[-1]),
                algorithm=algorithm,
                hyperparameters=hyperparameters,
                metrics=values,
                seconds=float(metrics.get("time_total_s") or 0.0),
                error=error,
                iterations=int(metrics.get("training_iteration") or 0),
                extra={"spark_app": str(metrics.get("spark_app", ""))},
            )
        )
    sign = -1.0 if mode == "max" else 1.0

    def rank(trial: TrialRecord) -> tuple[int, float]:
        if trial.error or metric not in trial.metrics:
            return (1, 0.0)
        return (0, sign * trial.metrics[metric])

    return sorted(records, key=rank)


def _is_model_metric(name: str, value: Any) -> bool:
    internal = {"time_this_iter_s", "time_total_s", "timestamp", "training_iteration", "time_since_restore",
                "iterations_since_restore", "pid", "done"}  # fmt: skip
    return isinstance(value, int | float) and not isinstance(value, bool) and name not in internal


_EXCEPTION_LINE = re.compile(r"([\w.$]+(?:Exception|Error)): (.*\S)")


def _root_cause(error: BaseException) -> str:
    """The underlying exception's line (MLlib's own message), not Ray's or Tune's wrappers."""
    candidates = [
        f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"
        for match in map(_EXCEPTION_LINE.search, str(error).splitlines())
        if match
        and not any(wrapper in match.group(1) for wrapper in ("RayTaskError", "TuneError", "RayActorError"))
    ]
    if candidates:
        return candidates[-1][:500]
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:500]}"
