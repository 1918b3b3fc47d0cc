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


def ingest_if_missing(spark: SparkSession, config: PipelineConfig, console: Console) -> DeltaWrite | None:
    """Create the configured Delta table from ``data.ingest`` when it does not exist yet."""
    source = config.data.source
    if source.format != "delta" or open_delta(source.path) is not None:
        return None
    with console.timed(f"No table at {source.path} yet: ingesting"):
        return ingest(spark, config.data)


def train_and_register(spark: SparkSession, config: PipelineConfig, console: Console) -> TrainingRun:
    """Train and evaluate; only then open an MLflow run and register (bad data never reaches MLflow)."""
    trained = train(spark, config, console)
    with console.timed(f"Logging the run and registering {config.tracking.registered_model!r} in MLflow"):
        registration = log_training(config, trained)
    return TrainingRun(trained=trained, registration=registration)
