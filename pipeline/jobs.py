"""The jobs the CLI runs, as functions of a started runtime and a config (the CLI only parses and prints)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from comparison import Comparison
from pipeline._console import Console
from pipeline.algorithms import get_algorithm
from pipeline.config import PipelineConfig
from pipeline.data import DeltaWrite, ingest, open_delta
from pipeline.errors import PipelineError
from pipeline.evaluation import offline_comparisons, paired_outcomes
from pipeline.export import export_scorer
from pipeline.tracking import (
    Registration,
    VersionSummary,
    load_spark_model,
    log_comparison,
    log_training,
)
from pipeline.training import TrainedModel, prepare, render_report, train

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class TrainingRun:
    trained: TrainedModel
    registration: Registration


@dataclass(frozen=True)
class TrainResult:
    """A trained, tested and registered model, as plain data (it outlives the Spark session)."""

    model_name: str
    version: int
    alias: str | None
    run_id: str  # the MLflow run holding the model, its metrics and plots
    algorithm: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, float]  # on the test split
    baseline: dict[str, float]  # a trivial model's, on the same rows
    train_rows: int
    test_rows: int
    data_path: str
    data_version: int | None  # the Delta version trained on (None for Parquet or CSV)
    scorer: str  # what serving scores it with: "onnx", or "spark" when the parity gate said no
    scorer_reason: str
    report: str  # the text report the CLI prints (metrics beside the baseline, weights, feature spec)

    @classmethod
    def of(cls, run: TrainingRun) -> TrainResult:
        trained, registration = run.trained, run.registration
        prepared = trained.prepared
        return cls(
            model_name=registration.model_name, version=int(registration.version), alias=registration.alias,
            run_id=registration.run_id, algorithm=prepared.algorithm.name,
            hyperparameters=dict(prepared.hyperparameters), metrics=dict(trained.metrics),
            baseline=dict(trained.baseline), train_rows=trained.train_rows, test_rows=trained.test_rows,
            data_path=prepared.snapshot.path, data_version=prepared.snapshot.version,
            scorer=registration.scorer, scorer_reason=registration.scorer_reason, report=render_report(trained),
        )  # fmt: skip


def table_missing(config: PipelineConfig) -> bool:
    """True when ``data.source`` is a Delta table that does not exist yet (checked without Spark)."""
    source = config.data.source
    return source.format == "delta" and open_delta(source.path) is None


def ingest_if_missing(spark: SparkSession, config: PipelineConfig, console: Console) -> DeltaWrite | None:
    """Create the configured Delta table from ``data.ingest`` when it does not exist yet."""
    source = config.data.source
    if not table_missing(config):
        return None
    with console.timed(f"No table at {source.path} yet: ingesting"):
        return ingest(spark, config.data)


def train_and_register(
    spark: SparkSession, config: PipelineConfig, console: Console, parent_run_id: str | None = None
) -> TrainingRun:
    """Train and evaluate, export the scorer through the parity gate; only then open an MLflow run and
    register (bad data never reaches MLflow)."""
    trained = train(spark, config, console)
    with console.timed("Exporting to ONNX and comparing it with Spark on held-out rows"):
        exported = export_scorer(trained)
    with console.timed(f"Logging the run and registering {config.tracking.registered_model!r} in MLflow"):
        registration = log_training(config, trained, exported, parent_run_id=parent_run_id)
    return TrainingRun(trained=trained, registration=registration)


@dataclass(frozen=True)
class ComparisonRun:
    """Two registered versions compared offline on the same rows, and the MLflow run that records it."""

    a: VersionSummary
    b: VersionSummary
    data: str  # the table and Delta version the rows come from
    rows: int
    comparisons: list[Comparison]
    run_id: str


def compare_versions(
    spark: SparkSession, config: PipelineConfig, versions: Sequence[tuple[str, VersionSummary]], console: Console,
    alpha: float = 0.05,
) -> ComparisonRun:  # fmt: skip
    """Score the test split of the Delta version b was trained on with both versions, paired row by row,
    run the task's tests and log the table to MLflow. ``versions``: a's then b's, each under the name it
    was asked by (``find_version``)."""
    (a_reference, a), (b_reference, b) = versions
    if a.version == b.version:
        raise PipelineError(
            f"--a {a_reference} and --b {b_reference} are both version {a.version}: nothing to compare"
        )
    task_a, task_b = get_algorithm(a.algorithm).task, get_algorithm(b.algorithm).task
    if task_a != task_b:
        raise PipelineError(f"version {a.version} is {task_a}, version {b.version} is {task_b}: not comparable")
    source = config.data.source
    trained_on = b.tags.get("data.delta_version", "")
    if source.format == "delta" and trained_on.isdigit():
        source = source.model_copy(update={"version": int(trained_on)})
    model = config.model.model_copy(update={"algorithm": b.algorithm, "hyperparameters": {}})
    data = config.data.model_copy(update={"source": source})
    with console.timed(f"Reading the test split of {source.path} (Delta version {source.version})"):
        prepared = prepare(spark, config.model_copy(update={"model": model, "data": data}))
    if prepared.label is None:
        raise PipelineError(f"compare: {task_b} models have no label to compare against")
    with console.timed(f"Scoring it with versions {a.version} and {b.version}"):
        model_a, model_b = (
            load_spark_model(config.tracking, a.version),
            load_spark_model(config.tracking, b.version),
        )
        outcomes = paired_outcomes(model_a, model_b, prepared.test, prepared.label)
    comparisons = offline_comparisons(task_b, outcomes, alpha)
    where = f"{source.path} (Delta version {prepared.snapshot.version})"
    params = {"a_version": a.version, "b_version": b.version, "a_reference": a_reference,
              "b_reference": b_reference, "data": where, "rows": len(outcomes.label), "alpha": alpha}  # fmt: skip
    figures = {}
    for found in comparisons:
        name = found.metric
        figures.update({f"{name}_a": found.a, f"{name}_b": found.b, f"{name}_difference": found.difference,
                        f"{name}_p_value": found.p_value})  # fmt: skip
    run_id = log_comparison(config.tracking, params, [found.as_row() for found in comparisons], figures)
    return ComparisonRun(a, b, where, len(outcomes.label), comparisons, run_id)
