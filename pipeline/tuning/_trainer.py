"""The sweep's one Spark session, in one long-lived Ray actor that serves fits to concurrent trials.

RayDP allows one Spark application per Ray namespace and one ``init_spark`` per process, so trials
never start Spark: they call :meth:`SparkTrainer.fit`. The actor reads, checks and caches the training
split once, fits the feature stages once per fold (and per feature variant: the first algorithm's in a
thread started at start-up, while Tune starts its trial workers; others when a trial first needs them),
caches the transformed frames, and runs each fit as its own Spark job in a FAIR scheduler pool named
after the trial.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pipeline._console import Console
from pipeline.algorithms import get_algorithm
from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.evaluation import mean_and_std
from pipeline.runtime import find_java, prepare_process_environment, start_spark, stop_spark
from pipeline.training import (
    assign_folds,
    evaluate,
    feature_stages,
    kfold_splits,
    make_estimator,
    prepare,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipeline.data import DeltaWrite
    from pipeline.jobs import TrainResult

TRAINER_NAME = "pipeline-spark-trainer"
_FAIR = {"spark.scheduler.mode": "FAIR"}


@dataclass(frozen=True)
class TrainerDescription:
    """What the Spark actor says of itself once it has read the data: its Spark app, and what the trials
    will train on."""

    app: str  # Spark's application id: every trial reports it (they share one app)
    ui: str | None  # the Spark UI's address
    lineage: dict[str, str]  # the data read (path, format, Delta version, rows)
    features: int  # input columns
    label_classes: int | None  # a classification label's classes: decides the sweep's metric
    ingested: DeltaWrite | None  # the table the actor wrote first, when it was missing
    cores: int  # the executors' cores Spark has: trials at a time by default
    startup_seconds: float  # Spark, reading, checks, profile, caching the split


@dataclass(frozen=True)
class TrainerTimings:
    """When the actor started fitting the first feature stages (wall clock) and how long that took."""

    features_started_at: float
    features_seconds: float


class SparkTrainer:
    """Owns Spark for a sweep. Created as a Ray actor (``num_cpus=0``, ``max_concurrency`` >= trials)."""

    def __init__(self, config_json: str, ingest_missing: bool = False) -> None:
        self.started = time.monotonic()
        self.startup_seconds = self.features_seconds = self.features_started_at = 0.0
        self.config = PipelineConfig.model_validate_json(config_json)
        prepare_process_environment(find_java())
        self.spark = start_spark(self.config.spark, local=self.config.ray.address is None, extra=_FAIR)
        self._folds: dict[tuple[bool, bool], list[tuple[DataFrame, DataFrame]]] = {}
        self._fold_failures: dict[tuple[bool, bool], Exception] = {}
        self._lock = threading.Lock()
        self._first_features: threading.Thread | None = None
        self._failure: PipelineError | None = None
        self.ingested: DeltaWrite | None = None
        try:
            if ingest_missing:  # in this Spark: a second Spark app for the ingest would cost its start-up
                from pipeline.jobs import ingest_if_missing

                self.ingested = ingest_if_missing(self.spark, self.config, Console(quiet=True))
            prepared = prepare(self.spark, self.config)
            # Cached once: every fold, the refit and its row count read it instead of the Delta table.
            self.prepared = replace(prepared, train=prepared.train.cache())
            self.prepared.train.count()
            self.cores = self._executor_cores()  # once, after prepare's jobs: the executors are up by then
            self.startup_seconds = time.monotonic() - self.started
        except PipelineError as error:  # bad data: reported by describe(), so the driver can say it plainly
            self._failure = error
            return
        # Tune takes ~10 s to start its trial workers: the first features are fitted meanwhile, and the
        # first trials wait for them (on the folds' lock) instead of Tune waiting for them.
        self._first_features = threading.Thread(target=self._fit_first_features, daemon=True)
        self._first_features.start()

    def describe(self) -> TrainerDescription:
        """What the trials will train on (for the driver's progress line and the parent run)."""
        if self._failure is not None:
            raise self._failure
        return TrainerDescription(
            app=self.spark.sparkContext.applicationId,
            ui=self.spark.sparkContext.uiWebUrl,
            lineage=self.prepared.snapshot.lineage(),
            features=len(self.prepared.input_columns),
            label_classes=self.prepared.label_classes,
            ingested=self.ingested,
            cores=self.cores,
            startup_seconds=self.startup_seconds,
        )

    def timings(self) -> TrainerTimings:
        """When the first feature stages started (wall clock) and how long fitting and caching them took."""
        if self._first_features is not None:
            self._first_features.join()
        return TrainerTimings(features_started_at=self.features_started_at, features_seconds=self.features_seconds)

    def fit(
        self, algorithm: str, hyperparameters: dict[str, Any], pool: str, fraction: float = 1.0
    ) -> dict[str, float]:
        """Fit ``algorithm`` on the cached training folds (on a ``fraction`` sample of each: an ASHA rung),
        return mean validation metrics (and their std) on the whole validation folds."""
        self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", pool)
        try:
            spec = get_algorithm(algorithm)
            params = spec.merged(hyperparameters)
            folds = self._cached_folds(spec.needs_non_negative_features(params), spec.centered_features)
            started = time.monotonic()
            per_fold: dict[str, list[float]] = {}
            for fit_frame, validation in folds:
                if fraction < 1.0:  # nested samples (one seed); MLlib's iterative fits persist their input
                    fit_frame = fit_frame.sample(fraction=fraction, seed=self.config.data.split.seed)
                model = make_estimator(self.prepared, self.config, spec, params).fit(fit_frame)
                for name, value in evaluate(self.prepared, model, validation, self.config).items():
                    per_fold.setdefault(name, []).append(value)
            metrics: dict[str, float] = {"fit_seconds": time.monotonic() - started}
            for name, values in per_fold.items():
                metrics[name], std = mean_and_std(values)
                if len(values) > 1:
                    metrics[f"{name}_std"] = std
            return metrics
        finally:
            self.spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]

    def refit_and_register(
        self,
        algorithm: str,
        hyperparameters: dict[str, Any],
        parent_run_id: str,
        cv: dict[str, tuple[float, float]] | None = None,
    ) -> TrainResult:
        """Refit the winner on the whole training split, test it, log it under the sweep and register it.

        The data is not read, checked or profiled again (the trials' split is reused); ``cv`` is the
        winner's CV from its trial (the same folds), so the refit does not fit them again.
        """
        from pipeline.jobs import TrainResult, train_and_register

        source = self.config.data.source.model_copy(update={"version": self.prepared.snapshot.version})
        config = self.config.model_copy(
            update={
                "model": self.config.model.model_copy(
                    update={"algorithm": algorithm, "hyperparameters": hyperparameters}
                ),
                "data": self.config.data.model_copy(update={"source": source}),
            }
        )
        spec = get_algorithm(algorithm)
        prepared = replace(self.prepared, algorithm=spec, hyperparameters=spec.merged(hyperparameters))
        run = train_and_register(
            self.spark, config, Console(quiet=True), parent_run_id=parent_run_id, prepared=prepared, cv=cv
        )
        return TrainResult.of(run)

    def stop(self) -> None:
        stop_spark()

    def _executor_cores(self) -> int:
        """The cores of the executors that did start (RayDP may start fewer than asked on a busy cluster)."""
        context = self.spark.sparkContext
        executors = context._jsc.sc().statusTracker().getExecutorInfos()
        per_executor = int(context.getConf().get("spark.executor.cores", "1") or 1)
        started = len(executors) - 1  # the driver is listed too
        return started * per_executor if started > 0 else context.defaultParallelism

    def _fit_first_features(self) -> None:
        self.features_started_at = time.time()  # wall clock: the driver compares it with its own
        begun = time.monotonic()
        spec = get_algorithm(self.config.model.algorithm)
        with contextlib.suppress(Exception):  # kept by _cached_folds: each trial reports it as its error
            self._cached_folds(spec.needs_non_negative_features(spec.merged({})), spec.centered_features)
        self.features_seconds = time.monotonic() - begun

    def _cached_folds(self, non_negative: bool, center: bool) -> list[tuple[DataFrame, DataFrame]]:
        """(fit, validation) frames with features computed, built once per feature variant; a variant
        that failed fails every later call at once with the same error (not a rebuild per trial)."""
        variant = (non_negative, center)
        with self._lock:
            if variant in self._fold_failures:
                raise self._fold_failures[variant]
            if variant not in self._folds:
                try:
                    self._folds[variant] = self._build_folds(non_negative, center)
                except Exception as error:
                    self._fold_failures[variant] = error
                    raise
            return self._folds[variant]

    def _build_folds(self, non_negative: bool, center: bool) -> list[tuple[DataFrame, DataFrame]]:
        from pyspark.ml import Pipeline

        train = self.prepared.train
        seed = self.config.data.split.seed
        folds = self.config.evaluation.cv_folds
        if folds:
            splits = kfold_splits(assign_folds(train, folds, seed), folds)
        else:
            fraction = self.config.tuning.validation_fraction if self.config.tuning else 0.2
            fit_part, validation = train.randomSplit([1 - fraction, fraction], seed=seed)
            splits = [(fit_part, validation)]
        stages = feature_stages(self.prepared, self.config, non_negative, center).stages
        cached = []
        for fit_part, validation in splits:
            if stages:
                features = Pipeline(stages=stages).fit(fit_part)
                fit_part, validation = features.transform(fit_part), features.transform(validation)
            fit_part, validation = fit_part.cache(), validation.cache()
            fit_part.count()
            validation.count()
            cached.append((fit_part, validation))
        return cached
