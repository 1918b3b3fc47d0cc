"""Ray Tune sweeps over MLlib estimators: light trials calling the one Spark-owning actor."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pipeline._console import Console
from pipeline.config import EarlyStopping, PipelineConfig, TuningConfig
from pipeline.errors import PipelineError
from pipeline.runtime import HEAD_NODE_RESOURCE
from pipeline.tracking import TrialRecord, config_hash, finish_sweep_run, log_trial_runs, start_sweep_run
from pipeline.tuning._failures import TRIAL_ERROR, is_system_failure, root_cause
from pipeline.tuning._result import SweepResult, trial_cv
from pipeline.tuning._space import SearchSpace, parse_space, trial_rungs, trials_at_a_time, tuning_objective
from pipeline.tuning._storage import SweepStorage
from pipeline.tuning._trainer import TRAINER_NAME, SparkTrainer, TrainerDescription, TrainerTimings

# Tune's settings for one fit (read when it starts), unless the user has set their own:
_TUNE_SETTINGS = {
    # Tune saves its experiment state (what --resume keeps as finished) every 10 s or more by default: a
    # driver killed within that window loses trials that had finished (seen in CI). A few KB per save.
    "TUNE_GLOBAL_CHECKPOINT_S": "2",
    # Tune logs each failed trial with Ray's traceback: the user gets one line per failure instead (its
    # progress report, the leaderboard, the trial's MLflow run, and the sweep's last line if none succeeded).
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
    # A trial that MLlib refused reports its error, not the metric (see _failures.py): not a misspelt metric.
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
}


class SweepError(PipelineError):
    """A sweep that cannot run or produced no successful trial."""


def _single_node() -> bool:
    """Whether the Ray cluster this process is connected to has one live node."""
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive")) <= 1


def sweep_name(config: PipelineConfig, resume: bool = False) -> str:
    """``tuning.name``, or a new ``<experiment>-sweep-<UTC time>`` (the newest such one to resume)."""
    tuning = config.tuning or TuningConfig()
    if tuning.name:
        return tuning.name
    prefix = f"{config.tracking.experiment}-sweep-"
    if resume:
        earlier = SweepStorage.of(tuning.storage).names(prefix)
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
    """A Tune trial: ask the Spark actor to fit; with early stopping, once per rung (a growing fraction
    of the training frame, or growing trees / iterations), reporting after each. MLlib's refusal ends the
    trial with the error as its result (not retried); a lost worker, node or actor raises (Tune retries)."""
    import ray
    from ray import tune

    algorithm, hyperparameters = _point(params)
    trainer: Any = ray.get_actor(TRAINER_NAME)
    pool = tune.get_context().get_trial_id() or "trial"
    app = ray.get(trainer.describe.remote()).app  # recorded per trial: every trial shares one Spark app
    rungs: list[tuple[dict[str, Any], float, float | None]] = [(hyperparameters, 1.0, None)]  # one fit
    if "_early_stopping" in params:
        early_stopping = EarlyStopping.model_validate(params["_early_stopping"])
        rungs = [
            (rung.hyperparameters, rung.fraction, rung.budget)
            for rung in trial_rungs(early_stopping, algorithm, hyperparameters)
        ]
    for rung_hyperparameters, fraction, budget in rungs:
        try:
            metrics = ray.get(trainer.fit.remote(algorithm, rung_hyperparameters, pool, fraction))
        except Exception as error:
            if is_system_failure(error):
                raise
            tune.report({TRIAL_ERROR: root_cause(error), "spark_app": app})
            return
        tune.report({**metrics, "spark_app": app, **({"budget": budget} if budget is not None else {})})


def _outcome(trials: list[TrialRecord], refit: Any, seconds: dict[str, float]) -> dict[str, Any]:
    """The parent run's summary: trials run and failed, where the time went (the actor's start-up, its first
    features while Tune started its workers, Tune's trials, the two together, the refit with its logging),
    and the refit's test metrics and registered version."""
    outcome: dict[str, Any] = {
        "trials": len(trials),
        "failed_trials": sum(1 for t in trials if t.error),
        **seconds,
    }
    if refit:
        outcome.update({f"test_{k}": v for k, v in refit.metrics.items()}, registered_version=refit.version)
    return outcome


def run_sweep(
    config: PipelineConfig, console: Console, resume: bool = False, ingest_missing: bool = False
) -> SweepResult:
    """Run (or resume) the configured sweep, log it to MLflow, then refit, test and register the best.
    With ``ingest_missing``, a missing Delta table is first written from ``data.ingest`` (by the actor).

    Ray must be running; this process must not own a Spark session (the actor does).
    """
    import ray

    tuning = config.tuning
    if tuning is None:
        raise SweepError("the config has no `tuning:` section")
    space = parse_space(config)
    tuning_objective(config)  # a metric of another task: refused before Spark starts
    storage = SweepStorage.of(tuning.storage)  # a bucket that does not answer: one line, before Spark starts
    name = sweep_name(config, resume)
    started = time.monotonic()
    _check_new_or_resumable(name, storage, resume)
    planned_cores = config.spark.num_executors * config.spark.executor_cores
    trainer, described = _start_trainer(
        config, next(iter(space.algorithms)), planned_cores, ingest_missing, console
    )
    ingested = described.ingested
    if ingested is not None:
        console.step(
            f"No table at {ingested.path} yet: ingested {ingested.rows} rows (Delta version {ingested.version})"
        )
    console.step(f"Spark app {described.app} (UI {described.ui}) serves every trial")
    concurrency = trials_at_a_time(tuning.max_concurrent_trials, planned_cores, described.cores)
    console.step(concurrency.note)
    try:
        # The label's classes are known now: a multiclass label is judged by F1, and cannot be by AUC.
        metric, mode = tuning_objective(config, described.label_classes)
        parent_run_id = _parent_run(config, name, metric, described, storage, resume, concurrency.trials)
        if resume:
            console.step(f"Resuming {name} from {storage.describe(name)}: finished trials are kept")
        tuner = _tuner(config, space, name, metric, mode, concurrency.trials, resume, storage)
        grid, trials_seconds, search_seconds, timings = _fit(tuner, name, trainer)
        trials = _leaderboard(grid, metric, mode)
        log_trial_runs(config.tracking, parent_run_id, trials)
        best = next((t for t in trials if not t.error and metric in t.metrics), None)
        refit_started = time.monotonic()
        refit = None if best is None else _refit_best(trainer, config, name, best, parent_run_id, console)
        refit_seconds = time.monotonic() - refit_started
        seconds = {
            "sweep_seconds": time.monotonic() - started,
            "startup_seconds": described.startup_seconds,
            "features_seconds": timings.features_seconds,
            "trials_seconds": trials_seconds,
            "search_seconds": search_seconds,
            "refit_seconds": refit_seconds,
        }
        finish_sweep_run(config.tracking, parent_run_id, trials, metric, best, _outcome(trials, refit, seconds))
        if best is None:
            raise SweepError(no_success_message(name, trials, parent_run_id))
        return SweepResult(
            name=name,
            path=storage.describe(name),
            metric=metric,
            mode=mode,
            trials=trials,
            parent_run_id=parent_run_id,
            refit=refit,
            seconds=time.monotonic() - started,
            trials_seconds=trials_seconds,
            refit_seconds=refit_seconds,
            startup_seconds=described.startup_seconds,
            features_seconds=timings.features_seconds,
            search_seconds=search_seconds,
            ingested=ingested,
        )
    finally:
        try:
            ray.get(trainer.stop.remote(), timeout=60)
        finally:
            ray.kill(trainer)


def _fit(tuner: Any, name: str, trainer: Any) -> tuple[Any, float, float, TrainerTimings]:
    """Tune's trials run: their results, how long they took, how long the search took with the actor's first
    features (fitted while Tune started its workers: the two overlap), and the actor's timings."""
    import ray

    trials_started = time.monotonic()
    try:
        with _tune_settings():
            grid = tuner.fit()
    except Exception as error:  # Tune's own failure (not a trial's): one line, not its traceback
        raise SweepError(f"the sweep {name!r} stopped: {root_cause(error)}") from error
    trials_seconds = time.monotonic() - trials_started
    trials_ended_at = time.time()
    timings: TrainerTimings = ray.get(trainer.timings.remote())
    search_seconds = max(trials_seconds, trials_ended_at - timings.features_started_at)
    return grid, trials_seconds, search_seconds, timings


def _check_new_or_resumable(name: str, storage: SweepStorage, resume: bool) -> None:
    from ray import tune

    if resume and not tune.Tuner.can_restore(storage.sweep_path(name), storage_filesystem=storage.tune_filesystem):
        raise SweepError(f"--resume: no sweep to resume at {storage.describe(name)}")
    if not resume and storage.exists(name):
        raise SweepError(
            f"a sweep named {name!r} already exists at {storage.describe(name)}: pass --resume to finish it, "
            "or set tuning.name to start another"
        )


def _start_trainer(
    config: PipelineConfig, first: str, planned_cores: int, ingest_missing: bool, console: Console
) -> tuple[Any, TrainerDescription]:
    """The Spark-owning actor every trial calls, started, and what it says of itself; bad data is one line."""
    import ray

    assert config.tuning is not None
    # The first algorithm decides the task's label checks; all share one task (checked at load).
    # (without the configured model's hyperparameters: they belong to `model.algorithm`, which may be another)
    model = config.model.model_copy(update={"algorithm": first, "hyperparameters": {}})
    trainer_config = config.model_copy(update={"model": model})
    remote: Any = ray.remote
    most = config.tuning.max_concurrent_trials or planned_cores
    actor_class = remote(num_cpus=0, max_concurrency=most + 4)(SparkTrainer)
    with console.timed("Starting the Spark-owning actor (reads and caches the data once)"):
        # On the head node, with RayDP's masters: losing a worker node must not take the Spark driver.
        placed = actor_class.options(name=TRAINER_NAME, resources={HEAD_NODE_RESOURCE: 0.001})
        trainer = placed.remote(trainer_config.model_dump_json(), ingest_missing)
        try:
            described: TrainerDescription = ray.get(trainer.describe.remote())
        except Exception as error:
            ray.kill(trainer)
            cause = getattr(error, "cause", None)
            if isinstance(cause, PipelineError):
                raise cause from None  # bad data: one clear line, not Ray's traceback
            raise
    return trainer, described


def _tuner(
    config: PipelineConfig,
    space: Any,
    name: str,
    metric: str,
    mode: str,
    trials_at_once: int,
    resume: bool,
    storage: SweepStorage,
) -> Any:
    """Tune's Tuner for the sweep (restored from its saved state for a resume)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    tuning = config.tuning
    assert tuning is not None
    trainable = tune.with_resources(run_trial, {"cpu": tuning.trial_cpus})
    if resume:
        return tune.Tuner.restore(
            storage.sweep_path(name),
            trainable=trainable,
            resume_errored=False,
            storage_filesystem=storage.tune_filesystem,
        )
    space_params = param_space(config, space)
    scheduler = None
    if tuning.early_stopping is not None:
        early_stopping = tuning.early_stopping
        space_params["_early_stopping"] = early_stopping.model_dump()  # kept by Tune for a resume
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=early_stopping.rungs,
            grace_period=1,
            reduction_factor=early_stopping.reduction_factor,
        )
    return tune.Tuner(
        trainable,
        param_space=space_params,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            num_samples=tuning.num_samples,
            max_concurrent_trials=trials_at_once,
            time_budget_s=tuning.time_budget_s,
            scheduler=scheduler,
            search_alg=_searcher(tuning, metric, mode, config.data.split.seed),
            # A trial is a thin caller of the Spark actor: on one machine, one worker process runs
            # trial after trial instead of a new process (~1-2 s of start-up) per trial. On a
            # cluster each trial gets a new one, placed afresh: reused ones stayed on the nodes
            # they first landed on (seen: all six trials of a 3-node sweep on the head).
            reuse_actors=_single_node(),
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage.tune_path,
            storage_filesystem=storage.tune_filesystem,
            failure_config=tune.FailureConfig(max_failures=tuning.max_failures),
            verbose=1,
        ),
    )


def _refit_best(
    trainer: Any, config: PipelineConfig, name: str, best: TrialRecord, parent_run_id: str, console: Console
) -> Any:
    """The best trial's point refit on the whole training split, tested and registered by the actor."""
    import ray

    assert config.tuning is not None
    with console.timed(f"Refitting the best ({best.algorithm}) on the whole training split"):
        cv = trial_cv(best) if config.evaluation.cv_folds and config.tuning.early_stopping is None else None
        try:
            return ray.get(
                trainer.refit_and_register.remote(best.algorithm, best.hyperparameters, parent_run_id, cv)
            )
        except Exception as error:  # one line naming what was refit, not Ray's wrapper
            chosen = f"{best.algorithm}, {json.dumps(best.hyperparameters, sort_keys=True)}"
            raise SweepError(f"refitting the best of {name!r} ({chosen}) failed: {root_cause(error)}") from error


@contextlib.contextmanager
def _tune_settings() -> Iterator[None]:
    """``_TUNE_SETTINGS`` in the environment for one fit, except those the user has set."""
    added = {name: value for name, value in _TUNE_SETTINGS.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def no_success_message(name: str, trials: list[TrialRecord], parent_run_id: str) -> str:
    """One line for a sweep without a successful trial: the first failure (trial, algorithm,
    hyperparameters, MLlib's own error) and where the others are."""
    failed = [trial for trial in trials if trial.error]
    if not failed:
        return f"no trial of {name!r} reported the metric; see the MLflow run {parent_run_id}"
    first = failed[0]
    others = f"; {len(failed) - 1} more failed" if len(failed) > 1 else ""
    return (
        f"no trial of {name!r} succeeded: trial {first.trial_id} ({first.algorithm}, "
        f"{json.dumps(first.hyperparameters, sort_keys=True)}) failed: {first.error}{others} "
        f"(every error is in the MLflow run {parent_run_id})"
    )


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
    config: PipelineConfig,
    name: str,
    metric: str,
    described: TrainerDescription,
    storage: SweepStorage,
    resume: bool,
    concurrent_trials: int,
) -> str:
    recorded = storage.parent_run(name) if resume else None
    if recorded is not None:
        return recorded
    tags = {**described.lineage, "config_hash": config_hash(config), "kind": "sweep"}
    tuning = config.tuning or TuningConfig()
    params = {
        "search": tuning.search,
        "metric": metric,
        "num_samples": tuning.num_samples,
        "max_concurrent_trials": concurrent_trials,
        "space": json.dumps(tuning.algorithms or {config.model.algorithm: tuning.space}),
    }
    run_id = start_sweep_run(config.tracking, name, tags, params)
    storage.record_parent_run(name, run_id)
    return run_id


def _leaderboard(grid: Any, metric: str, mode: str) -> list[TrialRecord]:
    records = []
    for result in grid:
        metrics = dict(result.metrics or {})
        params = result.config or {}
        algorithm, hyperparameters = _point(params) if params else ("?", {})
        values = {k: float(v) for k, v in metrics.items() if _is_model_metric(k, v)}
        error = root_cause(result.error) if result.error is not None else metrics.get(TRIAL_ERROR)
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
    internal = {
        "time_this_iter_s",
        "time_total_s",
        "timestamp",
        "training_iteration",
        "time_since_restore",
        "iterations_since_restore",
        "pid",
        "done",
    }
    return isinstance(value, int | float) and not isinstance(value, bool) and name not in internal
