"""The Ray Serve application: a FastAPI ingress that routes to one deployment per model variant.

No `from __future__ import annotations` here: the ingress class is pickled by value into its replicas,
and FastAPI needs real types (not strings to resolve against module globals) in the route signatures.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import re
import shlex
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve

from serving._metrics import MetricsTable
from serving._paths import PathNotAllowed, confine_path
from serving._registry import LoadedModel, ModelNotFound, ModelSource, load_model, resolve_version
from serving.routing import WeightsError, check_weights, choose_variant
from serving.scoring import RecordError, positional_record

logger = logging.getLogger("ray.serve")
STATE_NAMESPACE = "pipeline-serve"
SHADOW_LOG_SIZE = 1000


@dataclass(frozen=True)
class VariantSettings:
    source: ModelSource
    weight: float
    replicas: int = 1
    autoscaling: dict[str, Any] | None = None
    cpus: float = 0.0


def state_actor_name(app_name: str) -> str:
    """The name of the app's ServeState actor (in STATE_NAMESPACE)."""
    return f"{app_name}-state"


@dataclass(frozen=True)
class AppSettings:
    """Everything the ingress needs, built from the config by ``serving.deploy``."""

    app_name: str
    model_name: str
    variants: dict[str, VariantSettings]
    sticky_key: str | None = None
    shadow: str | None = None
    token_sha256: str | None = None  # the admin routes exist only when a token is configured
    max_batch_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    refresh_seconds: float = 1.0
    ingress_replicas: int = 1
    max_ongoing_requests: int = 64
    data_roots: tuple[str, ...] = ()
    config_file: str | None = None  # the YAML `POST /train` jobs start from
    dashboard_url: str | None = None  # Ray Jobs are submitted through the dashboard
    python: str = sys.executable
    algorithms: tuple[str, ...] = ()

    @property
    def state_name(self) -> str:
        return state_actor_name(self.app_name)


# --- shared state: weights and metrics for all replicas -------------------------------------------


@ray.remote(num_cpus=0)
class ServeState:
    """One per app: the live weights, the request metrics summed over every ingress replica, and the
    recent shadow results (also logged)."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights
        self.metrics = MetricsTable()
        self.shadow_results: deque[dict[str, Any]] = deque(maxlen=SHADOW_LOG_SIZE)

    def get_weights(self) -> dict[str, float]:
        return self.weights

    def set_weights(self, weights: dict[str, float]) -> dict[str, float]:
        self.weights = weights
        return weights

    def record_many(self, entries: list[tuple[str, str, str, int, float, int]]) -> None:
        """Requests an ingress replica answered since its last flush (variant, version, role, status, s, rows)."""
        for entry in entries:
            self.metrics.record(*entry)

    def record_shadow(self, entry: dict[str, Any]) -> None:
        self.shadow_results.append(entry)

    def shadow_log(self) -> list[dict[str, Any]]:
        return list(self.shadow_results)

    def render_metrics(self) -> str:
        return self.metrics.render()


def parse_json(body: bytes) -> Any:
    """The request body; orjson first (fast), then the standard parser, which also reads NaN and Infinity
    so that a non-finite number is refused by name (field and reason) rather than as unreadable JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:  # one error type for every unreadable body: a 400, not a 500
        raise json.JSONDecodeError(f"not UTF-8 ({error.reason} at byte {error.start})", "", 0) from error


# --- one deployment per variant -------------------------------------------------------------------


@serve.deployment(ray_actor_options={"num_cpus": 0})
class VariantModel:
    """Loads ``models:/<name>@<alias>`` (or a pinned version) and scores records with it."""

    def __init__(self, variant: str, source: ModelSource) -> None:
        self.variant = variant
        self.source = source
        self.model: LoadedModel | None = None
        self.error: str | None = None
        self.missing = False  # the alias or version is not in the registry (yet): not an app failure
        self._load()

    def _load(self) -> None:
        try:
            self.model = load_model(self.source)
            self.error, self.missing = None, False
        except Exception as error:  # the replica stays up, unready, and says why on /health
            self.missing = isinstance(error, ModelNotFound)
            self.error = str(error) if self.missing else f"{type(error).__name__}: {error}"
            logger.warning("variant %s: cannot load %s: %s", self.variant, self.source.describe(), self.error)

    def info(self) -> dict[str, Any]:
        model = self.model
        if model is None:
            return {"variant": self.variant, "ready": False, "source": self.source.describe(), "error": self.error,
                    "missing": self.missing}  # fmt: skip
        return {
            "variant": self.variant,
            "ready": True,
            "source": self.source.describe(),
            "version": model.version,
            "run_id": model.run_id,
            "scorer": model.scorer,
            "scorer_reason": model.reason,
            "lineage": model.lineage,
            "inputs": [{"name": item.name, "type": item.describe()} for item in model.spec.inputs],
            "task": model.spec.task,
        }

    def reload(self) -> dict[str, Any]:
        """Re-resolve the alias; load and swap in a new version (in-flight requests keep the old one)."""
        current = self.model.version if self.model is not None else None
        try:
            target = str(resolve_version(self.source).version)
        except Exception as error:
            return {"variant": self.variant, "version": current, "changed": False, "error": str(error)}
        if target != current:
            self._load()
        return {"variant": self.variant, "version": self.model.version if self.model else None,
                "previous": current, "changed": target != current, "error": self.error}  # fmt: skip

    def score(self, body: bytes, ignore: str | None) -> dict[str, Any]:
        """Score a request body the ingress has checked; the predictions come back as JSON bytes.

        The raw body travels instead of parsed records, and JSON comes back, because for a batch of
        thousands of records pickling Python objects both ways costs more than parsing here.
        """
        model = self.model  # one reference for the whole request, whatever a reload does meanwhile
        if model is None:
            return {"status": 503, "detail": {"field": "model", "reason": f"variant {self.variant} is not loaded"}}
        payload = parse_json(body)
        records, features = payload.get("instances"), payload.get("features")
        try:
            if features is not None:
                records = [positional_record(model.spec.inputs, features)]
            assert records is not None
            if ignore is not None and all(item.name != ignore for item in model.spec.inputs):
                records = [{k: v for k, v in record.items() if k != ignore} for record in records]
            output = orjson.dumps(model.score(records))
        except RecordError as error:
            return {"status": 422, "detail": {"field": _field_path(error, features), "reason": error.reason}}
        return {"status": 200, "version": model.version, "scorer": model.scorer, "output": output}

    def recommend(self, body: bytes, _sticky_key: str | None) -> dict[str, Any]:
        """Top-k items for the body's user(s), as JSON bytes (the same call shape as ``score``)."""
        model = self.model
        if model is None:
            return {"status": 503, "detail": {"field": "model", "reason": f"variant {self.variant} is not loaded"}}
        if model.recommender is None:
            reason = (
                f"version {model.version} is scored by Spark ({model.reason}); top-k needs the exported factors"
                if model.spec.task == "recommendation"
                else f"version {model.version} is a {model.spec.task} model; recommendations need an ALS model"
            )
            return {"status": 422, "detail": {"field": "model_id", "reason": reason}}
        payload = parse_json(body)
        users = payload["users"] if payload.get("users") is not None else [payload["user"]]
        try:
            output = orjson.dumps(model.recommender.recommend(users, payload.get("k", 10)))
        except RecordError as error:
            field_name = error.field if payload.get("users") is not None else "user"
            return {"status": 422, "detail": {"field": field_name, "reason": error.reason}}
        return {"status": 200, "version": model.version, "scorer": model.scorer, "output": output}


def _field_path(error: RecordError, features: list[Any] | None) -> str:
    if features is not None:
        return "features" if error.field == "features" else f"features[{error.field}]"
    return f"instances[{error.record}].{error.field}" if error.record is not None else error.field


# --- the HTTP ingress -----------------------------------------------------------------------------


class PredictRequest(BaseModel):
    """Records by field name (``instances``), or one record as values in the model's input order
    (``features``). ``model_id`` names a variant, an alias or a served version to bypass routing."""

    model_config = ConfigDict(extra="allow")
    instances: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    features: list[Any] | None = Field(default=None, min_length=1)
    model_id: str | None = Field(default=None, min_length=1)


class RecommendRequest(BaseModel):
    """Top-k items for one user (``user``) or several (``users``) from an ALS version's factors."""

    model_config = ConfigDict(extra="allow")
    user: int | None = None
    users: list[int] | None = Field(default=None, min_length=1)
    k: int = Field(default=10, ge=1, le=1000)
    model_id: str | None = Field(default=None, min_length=1)


@dataclass(frozen=True)
class _Envelope:
    """A request body whose shape has been checked (the values are the variant's to check)."""

    rows: int
    model_id: str | None
    sticky: str | None  # the sticky key's value, when the request carries one


class _Refused(Exception):
    def __init__(self, status: int, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.response = _problem(status, field_name, reason)


def _model_id(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        raise _Refused(422, "body", f"expected a JSON object, got {type(raw).__name__}")
    model_id = raw.get("model_id")
    if model_id is not None and (not isinstance(model_id, str) or not model_id):
        raise _Refused(422, "model_id", f"expected a variant, alias or version name, got {model_id!r}")
    return model_id


def _non_empty_list(raw: dict[str, Any], name: str) -> list[Any]:
    value = raw[name]
    if not isinstance(value, list) or not value:
        raise _Refused(422, name, f"expected a non-empty list, got {json.dumps(value)[:80]}")
    return value


def _either(raw: dict[str, Any], many: str, one: str, max_rows: int) -> list[Any] | None:
    """``raw[many]`` (checked: a non-empty list of at most max_rows), or None when ``raw[one]`` is given."""
    if (raw.get(many) is None) == (raw.get(one) is None):
        raise _Refused(422, "body", f"give either '{many}' (a list) or '{one}' (a single one)")
    if raw.get(many) is None:
        return None
    values = _non_empty_list(raw, many)
    if len(values) > max_rows:
        raise _Refused(413, many, f"{len(values)} rows; at most {max_rows} per request")
    return values


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _predict_envelope(raw: Any, max_rows: int, sticky_key: str | None) -> _Envelope:
    """The shape PredictRequest documents, checked without building a model per record (batches are large)."""
    model_id = _model_id(raw)
    instances = _either(raw, "instances", "features", max_rows)
    if instances is None:
        _non_empty_list(raw, "features")
        return _Envelope(1, model_id, _text(raw.get(sticky_key)) if sticky_key else None)
    for index, record in enumerate(instances):
        if not isinstance(record, dict):
            reason = f"expected an object (a record), got {json.dumps(record)[:80]}"
            raise _Refused(422, f"instances[{index}]", reason)
    sticky = None
    if sticky_key is not None:
        sticky = _text(raw.get(sticky_key, instances[0].get(sticky_key)))
    return _Envelope(len(instances), model_id, sticky)


def _recommend_envelope(raw: Any, max_rows: int, sticky_key: str | None) -> _Envelope:
    """The shape RecommendRequest documents; the user ids themselves are checked by the variant."""
    model_id = _model_id(raw)
    users = _either(raw, "users", "user", max_rows)
    k = raw.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise _Refused(422, "k", f"expected an integer from 1 to 1000, got {json.dumps(k)[:80]}")
    sticky = None
    if sticky_key is not None:  # one user's requests stick to a variant by the user id itself
        sticky = _text(raw.get(sticky_key, raw.get("user") if users is None else None))
    return _Envelope(1 if users is None else len(users), model_id, sticky)


class TrainRequest(BaseModel):
    """The seed API's training request: an algorithm and a table inside the configured data roots."""

    model_config = ConfigDict(extra="forbid")
    algorithm: str = Field(min_length=1)
    data_path: str = Field(min_length=1)
    format: Literal["delta", "parquet", "csv"] | None = None


_REGISTERED = re.compile(r"^model:\s+(\S+) version (\d+)(?: alias @(\w+))?", re.MULTILINE)


def _submit_training(app: AppSettings, asked: TrainRequest, data_path: Path) -> str:
    """A Ray Job running `python -m pipeline train` on the deployed config with the request's overrides."""
    from ray.job_submission import JobSubmissionClient

    assert app.config_file is not None and app.dashboard_url is not None
    job_id = f"train-{uuid.uuid4().hex[:12]}"
    env = {
        "PIPELINE__MODEL__ALGORITHM": asked.algorithm,
        "PIPELINE__MODEL__HYPERPARAMETERS": "{}",
        "PIPELINE__DATA__SOURCE__PATH": str(data_path),
        "PIPELINE__RAY__ADDRESS": "auto",  # join this cluster, in a namespace of its own (RayDP: one app each)
        "PIPELINE__RAY__NAMESPACE": job_id,
    }
    if asked.format is not None:
        env["PIPELINE__DATA__SOURCE__FORMAT"] = asked.format
    entrypoint = f"{shlex.quote(app.python)} -m pipeline train --config {shlex.quote(app.config_file)}"
    client = JobSubmissionClient(app.dashboard_url)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.submit_job(
                entrypoint=entrypoint,
                submission_id=job_id,
                runtime_env={"env_vars": env},
                metadata={"algorithm": asked.algorithm, "data_path": str(data_path)},
            )
            return job_id
        except RuntimeError as error:
            # A fresh cluster's job agent takes a few seconds to come up ("No available agent").
            if "No available agent" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def _training_status(app: AppSettings, job_id: str) -> dict[str, Any] | None:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(app.dashboard_url)
    try:
        info = client.get_job_info(job_id)
    except RuntimeError:
        return None
    status = str(info.status.value if hasattr(info.status, "value") else info.status)
    result: dict[str, Any] = {"id": job_id, "status": status, **(info.metadata or {})}
    if status in ("SUCCEEDED", "FAILED", "STOPPED"):
        logs = client.get_job_logs(job_id)
        if found := _REGISTERED.search(logs):
            result.update(model=found.group(1), version=found.group(2), alias=found.group(3))
        errors = [line for line in logs.splitlines() if line.startswith(("error:", "config error:"))]
        if status != "SUCCEEDED":
            result["error"] = errors[-1] if errors else (info.message or "the job failed; see its logs")
    return result


class WeightsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float]


def _problem(status: int, field_name: str, reason: str) -> JSONResponse:
    return JSONResponse({"detail": {"field": field_name, "reason": reason}}, status_code=status)


def _invalid(error: ValidationError) -> JSONResponse:
    """422 naming the first invalid field of a request body (its dotted location) and pydantic's reason."""
    first = error.errors()[0]
    return _problem(422, ".".join(str(part) for part in first["loc"]) or "body", first["msg"])


def build_ingress(settings: AppSettings) -> Any:
    """The ingress deployment class; admin routes are defined only when a token is configured."""
    api = FastAPI(
        title=f"{settings.model_name} serving",
        description="Champion/challenger scoring of registered MLlib pipelines (ONNX, Spark fallback).",
        version="1",
    )
    admin = settings.token_sha256 is not None

    @serve.deployment(
        ray_actor_options={"num_cpus": 0},
        num_replicas=settings.ingress_replicas,
        max_ongoing_requests=settings.max_ongoing_requests,
    )
    @serve.ingress(api)
    class Router:
        def __init__(self, handles: dict[str, Any], settings: AppSettings) -> None:
            self.handles = handles
            self.settings = settings
            self.state = ray.get_actor(settings.state_name, namespace=STATE_NAMESPACE)
            self.weights = {name: variant.weight for name, variant in settings.variants.items()}
            self.versions: dict[str, str] = {}
            self._refresher: asyncio.Task[None] | None = None
            self._shadow_tasks: set[asyncio.Task[None]] = set()
            # Answered requests not yet sent to the state actor: one Ray call per flush, not per request.
            self._unsent: list[tuple[str, str, str, int, float, int]] = []

        def _count(self, variant: str, version: str, role: str, status: int, started: float, rows: int) -> None:
            self._unsent.append((variant, version, role, status, time.perf_counter() - started, rows))

        async def _flush_metrics(self) -> None:
            if self._unsent:
                entries, self._unsent = self._unsent, []
                await self.state.record_many.remote(entries)

        async def _refresh_forever(self) -> None:
            while True:
                try:
                    await self._flush_metrics()
                    self.weights = await self.state.get_weights.remote()
                    await self._refresh_versions()
                except Exception as error:  # keep serving on the last known weights
                    logger.warning("router refresh failed: %s", error)
                await asyncio.sleep(self.settings.refresh_seconds)

        async def _refresh_versions(self) -> dict[str, dict[str, Any]]:
            infos = await asyncio.gather(*(handle.info.remote() for handle in self.handles.values()))
            self.versions = {info["variant"]: info["version"] for info in infos if info.get("ready")}
            return {info["variant"]: info for info in infos}

        async def _ensure_refresher(self) -> None:
            if self._refresher is None or self._refresher.done():
                await self._refresh_versions()
                self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

        def _routable(self) -> dict[str, float]:
            """The live weights of the variants that have a model loaded (a missing alias gets no traffic)."""
            return {name: weight for name, weight in self.weights.items() if name in self.versions}

        def _target(self, model_id: str) -> str | None:
            if model_id in self.handles:
                return model_id
            for name, variant in self.settings.variants.items():
                if variant.source.alias == model_id.removeprefix("@"):
                    return name
            matches = [name for name, version in self.versions.items() if version == model_id]
            return matches[0] if matches else None

        @api.get("/health")
        async def health(self) -> JSONResponse:
            """Ready (200) only when every variant has loaded its model; per-variant status."""
            await self._ensure_refresher()
            infos = await self._refresh_versions()
            ready = all(info.get("ready") for info in infos.values())
            body = {"status": "ready" if ready else "loading", "variants": infos}
            return JSONResponse(body, status_code=200 if ready else 503)

        @api.get("/models")
        async def models(self) -> dict[str, Any]:
            """Variants with their alias, version, weight, scorer kind and lineage (Delta version)."""
            await self._ensure_refresher()
            infos = await self._refresh_versions()
            variants = {}
            for name, variant in self.settings.variants.items():
                variants[name] = {
                    **infos[name],
                    "alias": variant.source.alias,
                    "pinned_version": variant.source.version,
                    "weight": self.weights.get(name, 0.0),
                }
            settings = self.settings
            return {"model": settings.model_name, "sticky_key": settings.sticky_key, "shadow": settings.shadow,
                    "variants": variants}  # fmt: skip

        @api.get("/metrics", response_class=PlainTextResponse)
        async def metrics(self) -> PlainTextResponse:
            """Prometheus text: requests, errors, rows and latency per variant, version and role."""
            await self._ensure_refresher()
            await self._flush_metrics()  # other ingress replicas flush every refresh_seconds
            text = await self.state.render_metrics.remote()
            return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

        @api.post(
            "/predict",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": PredictRequest.model_json_schema()}}}},
        )  # fmt: skip
        async def predict(self, request: Request) -> Response:
            """Score one record or a batch; the response names the variant and version that answered."""
            return await self._answer(request, "score", _predict_envelope, "predictions")

        @api.post(
            "/recommend",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": RecommendRequest.model_json_schema()}}}},
        )  # fmt: skip
        async def recommend(self, request: Request) -> Response:
            """Top-k items per user from an ALS version's factors (routed like /predict)."""
            return await self._answer(request, "recommend", _recommend_envelope, "recommendations")

        async def _answer(
            self, request: Request, method: str, envelope: Callable[[Any, int, str | None], _Envelope], key: str
        ) -> Response:
            """Check the body's shape, route it (or follow model_id), let the variant's ``method`` answer."""
            await self._ensure_refresher()
            started = time.perf_counter()
            request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
            limit = self.settings.max_body_bytes
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                return _problem(413, "body", f"{declared} bytes; at most {limit}")
            body = await request.body()
            if len(body) > limit:
                return _problem(413, "body", f"{len(body)} bytes; at most {limit}")
            try:
                payload = envelope(parse_json(body), self.settings.max_batch_rows, self.settings.sticky_key)
            except json.JSONDecodeError as error:
                return _problem(400, "body", f"not valid JSON: {error}")
            except _Refused as refused:
                return refused.response
            if payload.model_id is not None:
                variant = self._target(payload.model_id)
                if variant is None:
                    served = sorted({*self.handles, *self.versions.values()})
                    return _problem(404, "model_id", f"{payload.model_id!r} is not served; served: {served}")
                role = "direct"
            else:
                routable = self._routable()
                if sum(routable.values()) <= 0:
                    return _problem(503, "model", f"no variant with traffic has a model loaded: {self.weights}")
                variant = choose_variant(routable, payload.sticky)
                role = "routed"
            try:
                answer = await getattr(self.handles[variant], method).remote(body, self.settings.sticky_key)
            except Exception as error:  # a scorer bug or a lost replica: a JSON 500, counted, not a bare one
                logger.exception("variant %s failed on request %s", variant, request_id)
                reason = f"variant {variant} failed: {type(error).__name__} (request {request_id}; see the logs)"
                answer = {"status": 500, "detail": {"field": "model", "reason": reason}}
            version = answer.get("version", self.versions.get(variant, "none"))
            self._count(variant, version, role, answer["status"], started, payload.rows)
            if answer["status"] != 200:
                return JSONResponse({"detail": answer["detail"], "variant": variant}, status_code=answer["status"])
            shadow = self.settings.shadow
            if shadow is not None and shadow != variant and role == "routed":
                task = asyncio.get_running_loop().create_task(
                    self._shadow(shadow, method, body, payload.rows, request_id)
                )
                self._shadow_tasks.add(task)
                task.add_done_callback(self._shadow_tasks.discard)
            head = orjson.dumps({"request_id": request_id, "variant": variant, "model": self.settings.model_name,
                                 "version": answer["version"], "scorer": answer["scorer"]})  # fmt: skip
            # The variant's answer is JSON already: spliced in, not parsed and written again.
            content = head[:-1] + b',"' + key.encode() + b'":' + answer["output"] + b"}"
            headers = {"x-variant": variant, "x-model-version": str(answer["version"]), "x-request-id": request_id}
            return Response(content, media_type="application/json", headers=headers)

        async def _shadow(self, variant: str, method: str, body: bytes, rows: int, request_id: str) -> None:
            started = time.perf_counter()
            answer = await getattr(self.handles[variant], method).remote(body, self.settings.sticky_key)
            version = answer.get("version", "none")
            self._count(variant, version, "shadow", answer["status"], started, rows)
            output = orjson.loads(answer["output"])[:10] if answer["status"] == 200 else []
            entry = {"request_id": request_id, "variant": variant, "version": version, "status": answer["status"],
                     "method": method, "output": output}  # fmt: skip
            self.state.record_shadow.remote(entry)
            logger.info("shadow %s", json.dumps(entry))

        def _authorised(self, request: Request) -> JSONResponse | None:
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            digest = hashlib.sha256(token.encode()).hexdigest()
            if token and hmac.compare_digest(digest, self.settings.token_sha256 or ""):
                return None
            return JSONResponse(
                {"detail": {"field": "authorization", "reason": "a valid bearer token is required"}},
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )

        if admin:

            @api.post("/admin/weights")
            async def set_weights(self, request: Request) -> JSONResponse:
                """Change the routing weights (bearer token); applies to new requests at once."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                try:
                    asked = WeightsRequest.model_validate(parse_json(await request.body()))
                    weights = check_weights(asked.weights, set(self.handles))
                except (json.JSONDecodeError, ValidationError, WeightsError) as error:
                    return _problem(422, "weights", str(error).splitlines()[0])
                self.weights = await self.state.set_weights.remote(weights)
                return JSONResponse({"weights": self.weights})

            @api.post("/admin/reload")
            async def reload(self, request: Request) -> JSONResponse:
                """Re-resolve every variant's alias on every replica (bearer token); no restart."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                results: dict[str, list[Any]] = {}
                for name, handle in self.handles.items():
                    results[name] = await handle.broadcast("reload").results_async()
                await self._refresh_versions()
                return JSONResponse({"variants": results, "versions": self.versions})

            @api.post("/train", status_code=202)
            async def train(self, request: Request) -> JSONResponse:
                """Submit a training run as a Ray Job (bearer token); `data_path` must be inside the data roots."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                try:
                    asked = TrainRequest.model_validate(parse_json(await request.body()))
                except json.JSONDecodeError as error:
                    return _problem(400, "body", f"not valid JSON: {error}")
                except ValidationError as error:
                    return _invalid(error)
                if asked.algorithm not in self.settings.algorithms:
                    return _problem(
                        422, "algorithm", f"{asked.algorithm!r} is not one of {list(self.settings.algorithms)}"
                    )
                try:
                    data_path = confine_path(asked.data_path, self.settings.data_roots)
                except PathNotAllowed as error:
                    return _problem(403, "data_path", str(error))
                if self.settings.config_file is None or self.settings.dashboard_url is None:
                    reason = (
                        "training jobs need the Ray dashboard and the deployed config file (ray.dashboard: true)"
                    )
                    return _problem(503, "train", reason)
                try:
                    job_id = await asyncio.to_thread(_submit_training, self.settings, asked, data_path)
                except (RuntimeError, ConnectionError) as error:
                    return _problem(503, "train", f"Ray Jobs did not take the job: {error}")
                return JSONResponse({"id": job_id, "status": "PENDING", "status_url": f"/train/{job_id}"}, 202)

            @api.get("/train/{job_id}")
            async def training(self, job_id: str, request: Request) -> JSONResponse:
                """A training job's status, and the registered version once it succeeded (bearer token)."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                status = None
                if job_id.startswith("train-") and self.settings.dashboard_url is not None:
                    status = await asyncio.to_thread(_training_status, self.settings, job_id)
                if status is None:
                    return _problem(404, "id", f"no training job {job_id!r}")
                return JSONResponse(status)

    return Router


def shadow_log(app_name: str) -> list[dict[str, Any]]:
    """The recent shadow results of a running app (newest last)."""
    state = ray.get_actor(state_actor_name(app_name), namespace=STATE_NAMESPACE)
    return list(ray.get(state.shadow_log.remote()))


def build_application(settings: AppSettings) -> Any:
    """The Serve application (ingress bound to one deployment per variant) and its state actor."""
    weights = {name: variant.weight for name, variant in settings.variants.items()}
    state = ServeState.options(  # type: ignore[attr-defined]
        name=settings.state_name, namespace=STATE_NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote(weights)
    ray.get(state.set_weights.remote(weights))  # a redeploy starts from the config's weights
    handles = {}
    for name, variant in settings.variants.items():
        options: dict[str, Any] = {
            "name": f"variant-{name}",
            "ray_actor_options": {"num_cpus": variant.cpus},
            # Serve's default (5) makes concurrent clients queue and back off: scoring takes well under 1 ms.
            "max_ongoing_requests": settings.max_ongoing_requests,
            # The ingress logs every HTTP request already; a second line per internal call costs time.
            "logging_config": {"enable_access_log": False},
        }
        if variant.autoscaling is not None:
            options["autoscaling_config"] = variant.autoscaling
        else:
            options["num_replicas"] = variant.replicas
        handles[name] = VariantModel.options(**options).bind(name, variant.source)  # type: ignore[attr-defined]
    return build_ingress(settings).options(name="router").bind(handles, settings)


def kill_state(app_name: str) -> bool:
    try:
        ray.kill(ray.get_actor(state_actor_name(app_name), namespace=STATE_NAMESPACE))
    except ValueError:
        return False
    return True
