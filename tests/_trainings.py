"""Each distinct training once per test session: trained and exported the first time a test asks for it,
then logged and registered again (a few seconds of MLflow) in whatever store the next test configures.

A training is the same when everything that decides it is: the data (table and the Delta version it reads,
resolved: "latest" becomes the version that is latest now), features, model and evaluation. The tracking,
serving and experiment sections only say where the result goes, so they are not part of the key. What a
test asserts about a training (metrics, lineage, plots, the registered version and its tags) is the same
either way; the training itself is still done, once, by the first test that needs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipeline._console import Console
from pipeline.config import PipelineConfig
from pipeline.data import open_delta
from pipeline.export import ExportResult, export_scorer
from pipeline.jobs import TrainingRun
from pipeline.tracking import log_training
from pipeline.training import TrainedModel, train

# What decides a training; the other sections say where it is logged, served and watched.
DECIDING = ("data", "features", "model", "evaluation")


@dataclass
class Trainings:
    spark: Any
    trained: dict[str, tuple[TrainedModel, ExportResult]] = field(default_factory=dict)

    def train(self, config: PipelineConfig) -> TrainedModel:
        """``pipeline.training.train``, run once per distinct training."""
        return self._trained(config)[0]

    def train_and_register(self, config: PipelineConfig) -> TrainingRun:
        """``pipeline.jobs.train_and_register`` into ``config.tracking``, the training run once."""
        trained, exported = self._trained(config)
        return TrainingRun(trained=trained, registration=log_training(config, trained, exported))

    def _trained(self, config: PipelineConfig) -> tuple[TrainedModel, ExportResult]:
        key = _key(config)
        if key not in self.trained:
            trained = train(self.spark, config, Console(quiet=True))
            self.trained[key] = (trained, export_scorer(trained))
        return self.trained[key]


def _key(config: PipelineConfig) -> str:
    raw = config.model_dump(mode="json", include=set(DECIDING))
    source = config.data.source
    if source.format == "delta" and source.version is None:
        table = open_delta(source.path)
        raw["data"]["source"]["version"] = None if table is None else table.version()
    return json.dumps(raw, sort_keys=True)
