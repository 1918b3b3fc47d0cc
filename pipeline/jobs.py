"""The jobs the CLI runs, as functions of a started runtime and a config (the CLI only parses and prints)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comparison import Comparison, compare_ndcg, compare_silhouette
from pipeline._console import Console
from pipeline.algorithms import get_algorithm
from pipeline.config import PipelineConfig, TableSource
from pipeline.data import DeltaWrite, ingest, open_delta, read_table, write_delta
from pipeline.errors import PipelineError
from pipeline.evaluation import offline_comparisons, paired_clusters, paired_ndcg, paired_outcomes
from pipeline.export import export_scorer
from pipeline.tracking import (
    Registration,
    VersionSummary,
    load_spark_model,
    log_comparison,
    log_training,
    model_inputs,
)
from pipeline.training import PreparedData, TrainedModel, prepare, render_report, train

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
    fit_seconds: float = 0.0  # fitting the feature stages and the estimator on the training split
    ingested: DeltaWrite | None = None  # the table written first, when it was missing (`run`)

    @classmethod
    def of(cls, run: TrainingRun, ingested: DeltaWrite | None = None) -> TrainResult:
        trained, registration = run.trained, run.registration
        prepared = trained.prepared
        return cls(
            model_name=registration.model_name,
            version=int(registration.version),
            alias=registration.alias,
            run_id=registration.run_id,
            algorithm=prepared.algorithm.name,
            hyperparameters=dict(prepared.hyperparameters),
            metrics=dict(trained.metrics),
            baseline=dict(trained.baseline),
            train_rows=trained.train_rows,
            test_rows=trained.test_rows,
            data_path=prepared.snapshot.path,
            data_version=prepared.snapshot.version,
            scorer=registration.scorer,
            scorer_reason=registration.scorer_reason,
            report=render_report(trained),
            fit_seconds=trained.fit_seconds,
            ingested=ingested,
        )


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
    spark: SparkSession,
    config: PipelineConfig,
    console: Console,
    parent_run_id: str | None = None,
    prepared: PreparedData | None = None,
    cv: dict[str, tuple[float, float]] | None = None,
) -> TrainingRun:
    """Train and evaluate, export the scorer through the parity gate; only then open an MLflow run and
    register (bad data never reaches MLflow). A sweep's refit passes its ``prepared`` data and ``cv``."""
    trained = train(spark, config, console, prepared=prepared, cv=cv)
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
    spark: SparkSession,
    config: PipelineConfig,
    versions: Sequence[tuple[str, VersionSummary]],
    console: Console,
    alpha: float = 0.05,
) -> ComparisonRun:
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
    with console.timed(f"Scoring it with versions {a.version} and {b.version}"):
        model_a, model_b = (
            load_spark_model(config.tracking, a.version),
            load_spark_model(config.tracking, b.version),
        )
        try:
            comparisons, rows = _paired_comparisons(task_b, prepared, model_a, model_b, config, alpha)
        except ValueError as error:  # too few rows or users to compare on
            raise PipelineError(f"compare: {error}") from None
    where = f"{source.path} (Delta version {prepared.snapshot.version})"
    params = {
        "a_version": a.version,
        "b_version": b.version,
        "a_reference": a_reference,
        "b_reference": b_reference,
        "data": where,
        "rows": rows,
        "alpha": alpha,
    }
    figures = {}
    for found in comparisons:
        name = found.metric
        figures.update(
            {
                f"{name}_a": found.a,
                f"{name}_b": found.b,
                f"{name}_difference": found.difference,
                f"{name}_p_value": found.p_value,
            }
        )
    run_id = log_comparison(config.tracking, params, [found.as_row() for found in comparisons], figures)
    return ComparisonRun(a, b, where, rows, comparisons, run_id)


# Rows whose silhouette the bootstrap recomputes: each resample costs O(rows^2).
CLUSTER_ROWS = 1000


def _paired_comparisons(
    task: str, prepared: PreparedData, model_a: Any, model_b: Any, config: PipelineConfig, alpha: float
) -> tuple[list[Comparison], int]:
    """The task's paired tests of the two fitted pipelines on the test split, and the rows (or users) used."""
    if task == "clustering":
        sample = paired_clusters(model_a, model_b, prepared.test, CLUSTER_ROWS)
        return [compare_silhouette(*sample, alpha=alpha)], len(sample[1])
    assert prepared.label is not None  # every other task has one
    if task == "recommendation":
        evaluation, columns = config.evaluation, config.model
        als_a, als_b = (getattr(model, "stages", [model])[-1] for model in (model_a, model_b))
        ndcg_a, ndcg_b = paired_ndcg(
            als_a,
            als_b,
            prepared.test,
            columns.user_column,
            columns.item_column,
            prepared.label,
            evaluation.ranking_k,
            evaluation.relevant_rating,
        )
        return [compare_ndcg(ndcg_a, ndcg_b, evaluation.ranking_k, alpha)], len(ndcg_a)
    outcomes = paired_outcomes(model_a, model_b, prepared.test, prepared.label)
    experiment = (config.experiment.metric, config.experiment.mde)
    return offline_comparisons(task, outcomes, alpha, experiment), len(outcomes.label)


@dataclass(frozen=True)
class ScoreRun:
    """A source scored by a registered version into a Delta table."""

    version: VersionSummary
    source: str  # the path, and the Delta version read
    written: DeltaWrite


# Spark's simple type names that hold what each MLflow signature type asks for.
_NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}
_ACCEPTS = {
    "double": _NUMERIC,
    "float": _NUMERIC,
    "long": _NUMERIC,
    "integer": _NUMERIC,
    "string": {"string"},
    "boolean": {"boolean"},
    "datetime": {"timestamp", "date"},
    "binary": {"binary"},
}
SCORE_COLUMNS = ("prediction", "probability")
LINEAGE_COLUMNS = ("model", "model_version", "scorer", "source_path", "source_delta_version")


def input_problems(expected: Sequence[tuple[str, str]], found: dict[str, str]) -> list[str]:
    """What keeps a source with columns ``found`` (name -> Spark simple type) from being scored by a model
    taking ``expected`` (name, MLflow type): one line per missing column or wrong type."""
    problems = []
    for name, kind in expected:
        if name not in found:
            problems.append(f"column {name!r} is missing ({kind} expected)")
        elif found[name] not in _ACCEPTS.get(kind, {found[name]}):
            problems.append(f"column {name!r} is {found[name]}; the model takes {kind}")
    return problems


def score_source(
    spark: SparkSession,
    config: PipelineConfig,
    version: VersionSummary,
    source: TableSource,
    output: Path | str,
    console: Console,
    mode: str = "append",
) -> ScoreRun:
    """Score every row of ``source`` with a registered version, in Spark, and commit the input columns, the
    prediction columns and the lineage columns to the Delta table at ``output`` as one new version. The
    source's columns are checked against the version's signature before anything is read or written."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    snapshot = read_table(spark, source)
    expected = model_inputs(config.tracking, version.version)
    if not expected:
        raise PipelineError(f"version {version.version} was logged without a signature: its inputs are unknown")
    problems = input_problems(
        expected, {field.name: field.dataType.simpleString() for field in snapshot.df.schema}
    )
    if problems:
        raise PipelineError(f"score --input {source.path}: " + "; ".join(problems))
    clashes = [name for name in (*SCORE_COLUMNS, *LINEAGE_COLUMNS) if name in snapshot.df.columns]
    if clashes:
        raise PipelineError(
            f"score --input {source.path}: column {clashes[0]!r} would be overwritten by the output"
        )
    model = load_spark_model(config.tracking, version.version)
    scored = model.transform(snapshot.df)
    columns = [F.col(name) for name in snapshot.df.columns]
    columns.append(F.col("prediction").cast("double").alias("prediction"))
    if "probability" in scored.columns:
        columns.append(vector_to_array(F.col("probability")).alias("probability"))
    columns += [
        F.lit(config.tracking.registered_model).alias("model"),
        F.lit(version.version).alias("model_version"),
        F.lit("spark").alias("scorer"),
        F.lit(snapshot.path).alias("source_path"),
        F.lit(snapshot.version).cast("long").alias("source_delta_version"),
    ]
    with console.timed(f"Scoring {snapshot.path} with version {version.version} into {output}"):
        written = write_delta(
            scored.select(*columns), output, mode="overwrite" if mode == "overwrite" else "append"
        )
    at = f" (Delta version {snapshot.version})" if snapshot.version is not None else ""
    return ScoreRun(version, f"{snapshot.path}{at}", written)
