"""The Python API: what the CLI does, as functions returning typed results (the CLI only prints them).

Each call starts what it needs and stops it again (Ray, and Spark where the job runs it in this process),
so calls can follow each other in a script or a notebook. A process already connected to Ray (a notebook
that called ``ray.init``, a Ray Job's driver) keeps its connection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline import config as _config
from pipeline._console import Console
from pipeline.algorithms import check_model
from pipeline.config import PipelineConfig
from pipeline.jobs import TrainResult
from pipeline.runtime import Runtime
from pipeline.tuning import SweepResult, check_tuning

if TYPE_CHECKING:
    from pipeline.data import DeltaWrite


def load_config(
    path: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> PipelineConfig:
    """Read and validate a YAML config, as the CLI does (``PIPELINE__...`` variables apply).

    ``overrides`` apply last: ``{"spark": {"num_executors": 2}}`` merges into a section, a dotted key
    (``{"tuning.algorithms": {...}}``) replaces what it names. A bad value raises
    :class:`pipeline.config.ConfigError`, one line per problem naming the field, the value and the rule.
    """
    return _config.load_config(path, environ=environ, checks=[check_model, check_tuning], overrides=overrides)


def ingest(config: PipelineConfig, console: Console | None = None) -> DeltaWrite:
    """Generate or load ``data.ingest`` and write it to the configured Delta table."""
    from pipeline.data import ingest as write_table

    plan = config.data.ingest
    if plan.generate is not None:
        origin = f"{plan.generate.generator} rows (generated, seed {plan.generate.seed})"
    else:
        origin = f"rows of {plan.input.path if plan.input else '?'}"
    console = console or Console()
    with (
        Runtime(config, console=console) as runtime,
        console.timed(f"Ingesting {origin} into {config.data.source.path}"),
    ):
        return write_table(runtime.spark, config.data)


def train(config: PipelineConfig, console: Console | None = None, ingest_missing: bool = False) -> TrainResult:
    """Train ``model`` on ``data.source``, test it, export it through the parity gate, log it to MLflow
    and register it (nothing reaches MLflow if any step before fails). With ``ingest_missing``, a missing
    Delta table is first written from ``data.ingest`` (``result.ingested`` says what was written)."""
    from pipeline.jobs import ingest_if_missing, train_and_register

    with Runtime(config, console=console) as runtime:
        ingested = ingest_if_missing(runtime.spark, config, runtime.console) if ingest_missing else None
        return TrainResult.of(train_and_register(runtime.spark, config, runtime.console), ingested)


def run_sweep(
    config: PipelineConfig, resume: bool = False, console: Console | None = None, ingest_missing: bool = False
) -> SweepResult:
    """Run (or, with ``resume``, finish) the ``tuning:`` sweep, then refit, test and register the best.
    With ``ingest_missing``, a missing Delta table is first written from ``data.ingest`` (in the sweep's
    own Spark: ``result.ingested`` says what was written).

    Raises :class:`pipeline.tuning.SweepError` (one line: the trial, algorithm, hyperparameters and the
    underlying error) when no trial succeeds.
    """
    from pipeline.tuning import run_sweep as sweep

    # Ray only: the sweep's Spark lives in one actor (one RayDP app per cluster, one init_spark per process).
    with Runtime(config, start_spark=False, console=console) as runtime:
        return sweep(config, runtime.console, resume=resume, ingest_missing=ingest_missing)
