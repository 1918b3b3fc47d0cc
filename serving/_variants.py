"""One served variant: its loaded version, and scoring or recommending for a checked request body.

The same slot runs inside every ingress replica (ONNX variants: one hop) and inside the Spark-fallback
deployment (reached through a handle). No Serve import here.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from scoring import RecordError, positional_record
from serving._contract import VariantInputs
from serving._registry import LoadedModel, ModelNotFound, ModelSource, load_model, resolve_version
from serving._requests import record_field_path

logger = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class VariantAnswer:
    """What a variant says to one request: 200 with the predictions as JSON bytes, or an error."""

    status: int
    version: str | None = None
    scorer: str | None = None
    output: bytes = b"[]"
    field: str | None = None  # errors only: which field of the request, and why
    reason: str | None = None

    @classmethod
    def refused(cls, status: int, field_name: str, reason: str, version: str | None = None) -> VariantAnswer:
        return cls(status, version=version, field=field_name, reason=reason)


@dataclass(frozen=True)
class VariantInfo:
    """A variant's status, read by attribute in the app and shown by /health and /models (``as_json``)."""

    variant: str
    source: str  # models:/<name>@<alias> or models:/<name>/<version>
    ready: bool  # a version is loaded
    missing: bool  # the alias does not exist yet (not a failure)
    error: str | None  # why nothing is loaded
    version: str | None = None
    run_id: str | None = None
    scorer: str | None = None  # onnx, or spark
    scorer_reason: str | None = None
    lineage: dict[str, str] = field(default_factory=dict)  # the version's data lineage and algorithm
    inputs: list[dict[str, str]] = field(default_factory=list)  # name and type of each input
    ignored_inputs: list[str] = field(default_factory=list)  # the training table's other columns
    task: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The status of a variant with nothing loaded; with the loaded version's facts when ready."""
        if not self.ready:
            return {
                "variant": self.variant,
                "source": self.source,
                "ready": False,
                "missing": self.missing,
                "error": self.error,
            }
        return asdict(self)


class VariantSlot:
    """Loads ``models:/<name>@<alias>`` (or a pinned version) and answers requests with it."""

    def __init__(self, variant: str, source: ModelSource, threads: int = 1, allow_spark: bool = False) -> None:
        self.variant = variant
        self.source = source
        self.threads = threads
        self.allow_spark = allow_spark
        self.model: LoadedModel | None = None
        self.error: str | None = None
        self.missing = False  # the alias or version is not in the registry (yet): not an app failure
        self._load()

    def _load(self) -> None:
        try:
            self.model = load_model(self.source, self.threads, self.allow_spark)
            self.error, self.missing = None, False
        except Exception as error:  # the slot stays, unready (or on its previous version), and says why
            self.missing = isinstance(error, ModelNotFound)
            self.error = str(error) if self.missing else f"{type(error).__name__}: {error}"
            logger.warning("variant %s: cannot load %s: %s", self.variant, self.source.describe(), self.error)

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def info(self) -> VariantInfo:
        """The variant's status as /health and /models show it."""
        model = self.model
        if model is None:
            return VariantInfo(
                self.variant, self.source.describe(), ready=False, missing=self.missing, error=self.error
            )
        return VariantInfo(
            self.variant,
            self.source.describe(),
            ready=True,
            missing=False,
            error=self.error,
            version=model.version,
            run_id=model.run_id,
            scorer=model.scorer,
            scorer_reason=model.reason,
            lineage=dict(model.lineage),
            inputs=[{"name": item.name, "type": item.describe()} for item in model.spec.inputs],
            ignored_inputs=list(model.spec.ignored),
            task=model.spec.task,
        )

    def inputs(self) -> VariantInputs | None:
        """What the loaded version takes (its fields' JSON Schemas, as its scorer checks them); None unloaded."""
        model = self.model
        if model is None:
            return None
        named = zip(model.spec.inputs, model.field_schemas, strict=True)
        fields = tuple((item.name, schema) for item, schema in named)
        return VariantInputs(fields, model.recommender is not None, model.spec.ignored)

    def reload(self) -> dict[str, Any]:
        """Re-resolve the alias; load and swap in a new version (requests in flight keep the old one)."""
        current = self.version
        try:
            target = str(resolve_version(self.source).version)
        except Exception as error:
            return {"variant": self.variant, "version": current, "changed": False, "error": str(error)}
        if target != current:
            self._load()
        return {
            "variant": self.variant,
            "version": self.version,
            "previous": current,
            "changed": self.version != current,
            "error": self.error,
        }

    def score(self, payload: dict[str, Any], ignore: str | None) -> VariantAnswer:
        """Predictions for a body whose shape the ingress checked; ``ignore``: the sticky key, when the model
        does not take it as an input."""
        model = self.model  # one reference for the whole request, whatever a reload does meanwhile
        if model is None:
            return VariantAnswer.refused(503, "model", f"variant {self.variant} is not loaded: {self.error}")
        features = payload.get("features")
        try:
            if features is not None:
                records = [positional_record(model.spec.inputs, features)]
            else:
                records = payload["instances"]
            if ignore is not None and all(item.name != ignore for item in model.spec.inputs):
                records = [{k: v for k, v in record.items() if k != ignore} for record in records]
            output = orjson.dumps(model.score(records))
        except RecordError as error:
            return VariantAnswer.refused(422, record_field_path(error, features is not None), error.reason)
        return VariantAnswer(200, model.version, model.scorer, output)

    def recommend(self, payload: dict[str, Any], _ignore: str | None) -> VariantAnswer:
        """Top-k items for the body's user(s) (the same call shape as ``score``)."""
        model = self.model
        if model is None:
            return VariantAnswer.refused(503, "model", f"variant {self.variant} is not loaded: {self.error}")
        if model.recommender is None:
            reason = (
                f"version {model.version} is scored by Spark ({model.reason}); top-k needs the exported factors"
                if model.spec.task == "recommendation"
                else f"version {model.version} is a {model.spec.task} model; recommendations need an ALS model"
            )
            return VariantAnswer.refused(422, "model_id", reason, model.version)
        many = payload.get("users") is not None
        users = payload["users"] if many else [payload["user"]]
        try:
            output = orjson.dumps(model.recommender.recommend(users, payload.get("k", 10)))
        except RecordError as error:
            return VariantAnswer.refused(422, error.field if many else "user", error.reason, model.version)
        return VariantAnswer(200, model.version, model.scorer, output)
