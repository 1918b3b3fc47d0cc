"""The jobs the CLI runs, as functions of a started runtime and a config (the CLI only parses and prints)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline._console import Console
from pipeline.config import PipelineConfig
from pipeline.data import DeltaWrite, ingest, open_delta
from pipeline.tracking import Registration, log_training
from pipeline.training import TrainedModel, train

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class TrainingRun:
    trained: TrainedModel
    registration: Registration


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
    """Train and evaluate; only then open an MLflow run and register (bad data never reaches MLflow)."""
    trained = train(spark, config, console)
    with console.timed(f"Logging the run and registering {config.tracking.registered_model!r} in MLflow"):
        registration = log_training(config, trained, parent_run_id=parent_run_id)
    return TrainingRun(trained=trained, registration=registration)
