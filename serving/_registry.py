"""A small MLflow registry client for the Serve replicas: resolve an alias, load the version's scorer."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.tracking.facts import (
    ALGORITHM_TAG,
    LINEAGE_TAGS,
    ONNX_SCORER,
    SCORER_REASON_TAG,
    SCORER_TAG,
    alias_uri,
    version_uri,
)
from scoring import (
    PREDICTION,
    SCORER_ARTIFACT,
    SCORER_FACTORS,
    SCORER_ONNX,
    SCORER_SPEC,
    OnnxScorer,
    Recommender,
    RecordError,
    ScorerSpec,
    as_integer,
    format_outputs,
    records_to_feeds,
)

# What /models shows of a version: its lineage and its algorithm.
DESCRIBED_TAGS = (*LINEAGE_TAGS, ALGORITHM_TAG)


class ModelNotFound(LookupError):
    """The alias or version is not in the registry (yet)."""


class NeedsSpark(RuntimeError):
    """The version has no ONNX scorer, and this process may not start a JVM to score it."""


def scored_by_spark(tags: Mapping[str, str]) -> bool:
    """Whether a version's registry tags say it is scored by Spark (its ONNX graph did not pass the gate)."""
    return tags.get(SCORER_TAG) != ONNX_SCORER


@dataclass(frozen=True)
class ModelSource:
    """Where a variant's model comes from: a registered model and an alias or a pinned version."""

    tracking_uri: str
    model_name: str
    alias: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.version:
            return version_uri(self.model_name, self.version)
        return alias_uri(self.model_name, str(self.alias))


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
    # The JSON Schema of each input, in the spec's order: what ``score`` accepts, as /openapi.json says it.
    field_schemas: tuple[dict[str, Any], ...]
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


def needs_spark(source: ModelSource) -> bool:
    """Whether the version the source points at now is scored by Spark (False when it does not exist yet)."""
    try:
        return scored_by_spark(dict(resolve_version(source).tags))
    except ModelNotFound:
        return False


def load_model(source: ModelSource, threads: int = 1, allow_spark: bool = True) -> LoadedModel:
    """Resolve the source and load the version's scorer (downloads the ONNX graph from the run).
    Without ``allow_spark`` a Spark-scored version raises NeedsSpark instead of starting a JVM."""
    import mlflow

    entity = resolve_version(source)
    tags = dict(entity.tags)
    if scored_by_spark(tags) and not allow_spark:
        reason = tags.get(SCORER_REASON_TAG, "no ONNX scorer was logged")
        raise NeedsSpark(
            f"version {entity.version} is scored by Spark ({reason}); this variant was deployed as an "
            "in-process ONNX variant: redeploy (serve) to serve it through a Spark-fallback deployment"
        )
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
    lineage = {key: tags[key] for key in DESCRIBED_TAGS if key in tags}
    version = str(entity.version)
    if not scored_by_spark(tags) and onnx_bytes is not None:
        scorer = OnnxScorer(onnx_bytes, spec, threads=threads)
        recommender = Recommender(factors) if factors is not None else None
        schemas = tuple(item.json_schema() for item in spec.inputs)
        return LoadedModel(version, entity.run_id, "onnx", "", spec, lineage, scorer.score, schemas, recommender)
    reason = tags.get(SCORER_REASON_TAG, "no ONNX scorer was logged with this version")
    fallback = SparkFallback(version_uri(source.model_name, version), spec, source.tracking_uri)
    schemas = tuple(item.json_schema(fallback.integer_ranges.get(item.name)) for item in spec.inputs)
    return LoadedModel(version, entity.run_id, "spark", reason, spec, lineage, fallback.score, schemas)


_PANDAS_TYPES = {"integer": "int32", "long": "int64", "double": "float64", "float": "float32"}
_INTEGER_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class SparkFallback:
    """Scores with the logged Spark PipelineModel through MLflow's pyfunc: slow (a local JVM) but exact."""

    def __init__(self, model_uri: str, spec: ScorerSpec, tracking_uri: str) -> None:
        import mlflow

        from pipeline.runtime.java import activate_java, find_java

        activate_java(find_java())  # Java 17, as for the jobs' JVMs (a JAVA_HOME of another Java is passed over)
        # MLflow builds the Spark frame from pandas by inferring each column's type from its values: without
        # Arrow a column of nulls (one record with "device": null) has no type and the frame cannot be
        # built; with Arrow the column keeps the type pandas gives it (string, below).
        submit = os.environ.get("PYSPARK_SUBMIT_ARGS", "pyspark-shell")
        if "arrow.pyspark.enabled" not in submit:
            os.environ["PYSPARK_SUBMIT_ARGS"] = f"--conf spark.sql.execution.arrow.pyspark.enabled=true {submit}"
        mlflow.set_tracking_uri(tracking_uri)
        self.spec = spec
        self._model = mlflow.pyfunc.load_model(model_uri)
        schema = self._model.metadata.get_input_schema()
        # MLflow enforces the logged signature exactly: JSON's integers must become int32 where it says
        # "integer", and doubles where it says "double" (it refuses int64 -> int32 and int -> double).
        self._dtypes = {
            col.name: _PANDAS_TYPES[col.type.name]
            for col in (schema.inputs if schema else [])
            if getattr(col.type, "name", None) in _PANDAS_TYPES
        }
        # The inputs the signature types as integers: only whole numbers in range, and no null, are scored.
        self.integer_ranges = {
            name: _INTEGER_RANGES[dtype] for name, dtype in self._dtypes.items() if dtype in _INTEGER_RANGES
        }

    def score(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        import pandas as pd

        records_to_feeds(self.spec.inputs, records, self.spec.ignored)  # the ONNX path's checks and messages
        columns = [item.name for item in self.spec.inputs]
        frame = pd.DataFrame([{name: record[name] for name in columns} for record in records], columns=columns)
        for name, (low, high) in self.integer_ranges.items():
            whole = [as_integer(record[name]) for record in records]  # 3.0 is the integer 3 in JSON
            for index, value in enumerate(whole):
                if value is None or not low <= value <= high:
                    got = json.dumps(records[index][name])[:80]
                    reason = (
                        f"expected a whole number from {low} to {high}, got {got}: this "
                        "version is served by the Spark fallback, held to MLflow's signature, which takes "
                        "no null or fraction for an integer input"
                    )
                    raise RecordError(name, reason, index)
            frame[name] = whole
        for name, dtype in self._dtypes.items():
            frame[name] = frame[name].astype(dtype)
        for item in self.spec.inputs:
            if item.kind == "string":
                frame[item.name] = frame[item.name].astype("string")
        predictions = self._model.predict(frame)
        values = predictions[PREDICTION] if hasattr(predictions, "columns") else predictions
        return format_outputs({PREDICTION: np.asarray(values, dtype=np.float64)}, len(records))
