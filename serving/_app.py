"""The Ray Serve application: one FastAPI ingress deployment that routes, scores ONNX variants in-process
(one hop from the HTTP front) and reaches Spark-scored variants through a deployment of their own.

No `from __future__ import annotations` here: the ingress class is pickled by value into its replicas,
and FastAPI needs real types (not strings to resolve against module globals) in the route signatures.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from ray import serve

from scoring import OnnxScorer
from serving._contract import ServedVariant, VariantInputs, contract_document
from serving._metrics import RequestRecord
from serving._requests import (
    Envelope,
    Health,
    PredictResponse,
    RecommendResponse,
    Refused,
    TrainAccepted,
    TrainRequest,
    parse_json,
    predict_envelope,
    problem,
    problems,
    recommend_envelope,
    weights_body,
)
from serving._settings import AppSettings
from serving._state import start_state, state_handle
from serving._training import start_training, training_status
from serving._variants import VariantAnswer, VariantSlot
from serving.routing import WeightsError, check_weights, choose_variant

logger = logging.getLogger("ray.serve")
INGRESS_NAME = "router"


@serve.deployment(ray_actor_options={"num_cpus": 0})
class SparkVariant:
    """A variant scored by Spark (MLflow pyfunc, a local JVM): kept out of the ingress replicas."""

    def __init__(self, variant: str, settings: AppSettings) -> None:
        self.slot = VariantSlot(variant, settings.variants[variant].source, allow_spark=True)

    def info(self) -> dict[str, Any]:
        return self.slot.info()

    def reload(self) -> dict[str, Any]:
        return self.slot.reload()

    def score(self, payload: dict[str, Any], ignore: str | None) -> VariantAnswer:
        return self.slot.score(payload, ignore)

    def recommend(self, payload: dict[str, Any], ignore: str | None) -> VariantAnswer:
        return self.slot.recommend(payload, ignore)

    def inputs(self) -> VariantInputs | None:
        return self.slot.inputs()


def _error(status: int, field_name: str, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({**problem(field_name, reason), **extra}, status_code=status)


def _body_schema(model: Any) -> dict[str, Any]:
    content = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}}


def build_ingress(settings: AppSettings) -> Any:
    """The ingress deployment class; admin routes are defined only when a token is configured."""
    # /openapi.json and /docs are routes of the ingress: the request bodies depend on what is loaded now.
    api = FastAPI(
        title=f"{settings.model_name} serving",
        description="Champion/challenger scoring of registered MLlib pipelines (ONNX, Spark fallback).",
        version="1",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    admin = settings.token_sha256 is not None
    scoring_errors = problems(400, 404, 413, 422, 500, 503)

    @serve.ingress(api)
    class Router:
        def __init__(self, remote: dict[str, Any], settings: AppSettings) -> None:
            from ray.util import metrics

            self.settings = settings
            self.handles = remote  # Spark-scored variants, one deployment each
            self.slots = {name: VariantSlot(name, variant.source, settings.scorer_threads)
                          for name, variant in settings.variants.items() if not variant.remote}  # fmt: skip
            self.state = state_handle(settings.app_name)
            self.weights = settings.initial_weights
            self.versions: dict[str, str] = {}
            self._refresher: asyncio.Task[None] | None = None
            self._background: set[asyncio.Task[Any]] = set()
            # Answered requests not yet sent to the state actor: one Ray call per flush, not per request.
            self._unsent: list[RequestRecord] = []
            tags = ("variant", "version", "role", "status")
            self._ray_requests = metrics.Counter(
                "pipeline_serve_requests", "Prediction requests by variant, version, role and status.", tags
            )
            self._ray_latency = metrics.Histogram(
                "pipeline_serve_request_seconds", "Time to answer a prediction request.",
                boundaries=[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0], tag_keys=tags[:3],
            )  # fmt: skip

        # --- state kept in step with the other replicas ------------------------------------------

        def _count(self, variant: str, version: str, role: str, status: int, started: float, rows: int) -> None:
            seconds = time.perf_counter() - started
            self._unsent.append(RequestRecord(variant, version, role, status, seconds, rows))
            labels = {"variant": variant, "version": version, "role": role}
            self._ray_requests.inc(tags={**labels, "status": str(status)})
            self._ray_latency.observe(seconds, tags=labels)

        async def flush_metrics(self) -> None:
            """Send the requests counted here to the state actor (also called on every replica by /metrics)."""
            if self._unsent:
                records, self._unsent = self._unsent, []
                try:
                    await self.state.record_many.remote(records)
                except Exception:
                    self._unsent = records + self._unsent  # sent again with the next flush
                    raise

        async def _refresh_forever(self) -> None:
            while True:
                try:
                    await self.flush_metrics()
                    self.weights = await self.state.get_weights.remote()
                    await self._refresh_versions()
                except Exception as error:  # keep serving on the last known weights
                    logger.warning("router refresh failed: %s", error)
                await asyncio.sleep(self.settings.refresh_seconds)

        async def _refresh_versions(self) -> dict[str, dict[str, Any]]:
            infos = {name: slot.info() for name, slot in self.slots.items()}
            remote = await asyncio.gather(*(handle.info.remote() for handle in self.handles.values()))
            infos.update({info["variant"]: info for info in remote})
            self.versions = {name: info["version"] for name, info in infos.items() if info["ready"]}
            return {name: infos[name] for name in self.settings.variants}

        async def _ensure_refresher(self) -> None:
            if self._refresher is None or self._refresher.done():
                await self._refresh_versions()
                self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

        def _routable(self) -> dict[str, float]:
            """The live weights of the variants that have a model loaded (a missing alias gets no traffic)."""
            return {name: weight for name, weight in self.weights.items() if name in self.versions}

        def _target(self, model_id: str) -> str | None:
            if model_id in self.settings.variants:
                return model_id
            for name, variant in self.settings.variants.items():
                if variant.source.alias == model_id.removeprefix("@"):
                    return name
            matches = [name for name, version in self.versions.items() if version == model_id]
            return matches[0] if matches else None

        async def reload_local(self) -> dict[str, Any]:
            """Re-resolve this replica's in-process variants (called on every replica by /admin/reload), on a
            thread: loading a version takes a second, and requests go on meanwhile on the current one."""
            return {name: await asyncio.to_thread(slot.reload) for name, slot in self.slots.items()}

        def apply_weights(self, weights: dict[str, float]) -> None:
            self.weights = weights

        async def _served_variants(self) -> list[ServedVariant]:
            """The loaded variants with what they take and the model_id values that reach them."""
            inputs = {name: slot.inputs() for name, slot in self.slots.items()}
            remote = await asyncio.gather(*(handle.inputs.remote() for handle in self.handles.values()))
            inputs.update(zip(self.handles, remote, strict=True))
            candidates = {*self.settings.variants, *self.versions.values()}
            for variant in self.settings.variants.values():
                if variant.source.alias is not None:
                    candidates |= {variant.source.alias, f"@{variant.source.alias}"}
            reaching: dict[str, list[str]] = {name: [] for name in self.settings.variants}
            for candidate in sorted(candidates):
                target = self._target(candidate)
                if target is not None:
                    reaching[target].append(candidate)
            routable = self._routable()
            return [ServedVariant(name, tuple(reaching[name]), found, routable.get(name, 0.0) > 0)
                    for name, found in inputs.items() if found is not None]  # fmt: skip

        # --- read-only routes --------------------------------------------------------------------

        @api.get("/openapi.json", include_in_schema=False)
        async def openapi(self, request: Request) -> JSONResponse:
            """This app's OpenAPI document, with the request bodies the loaded versions take now."""
            await self._ensure_refresher()
            await self._refresh_versions()
            document = contract_document(
                request.app.openapi(), await self._served_variants(), list(self.settings.variants),
                self.settings.max_batch_rows, self.settings.sticky_key,
            )  # fmt: skip
            return JSONResponse(document)

        @api.get("/docs", include_in_schema=False)
        async def docs(self) -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{self.settings.model_name} serving")

        @api.get(
            "/health",
            responses={
                200: {"model": Health},
                503: {
                    "model": Health,
                    "description": "loading: a variant with a registered version is not loaded",
                },
            },
        )
        async def health(self) -> JSONResponse:
            """200 when every variant that has a model in the registry is loaded and some variant takes
            routed traffic; a variant whose alias does not exist yet is listed under `missing`."""
            await self._ensure_refresher()
            infos = await self._refresh_versions()
            failing = sorted(name for name, info in infos.items() if not info["ready"] and not info["missing"])
            missing = sorted(name for name, info in infos.items() if info["missing"])
            ready = not failing and sum(self._routable().values()) > 0
            body = {"status": "ready" if ready else "loading", "missing": missing, "variants": infos}
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
                    "placement": "spark deployment" if variant.remote else "in-process",
                }
            settings = self.settings
            return {"model": settings.model_name, "sticky_key": settings.sticky_key, "shadow": settings.shadow,
                    "variants": variants}  # fmt: skip

        @api.get("/metrics", response_class=PlainTextResponse)
        async def metrics(self) -> PlainTextResponse:
            """Prometheus text: requests, errors, rows and latency per variant, version and role."""
            await self._ensure_refresher()
            # Every ingress replica sends what it counted first: the text is exact at the time of asking.
            await self._own_replicas().broadcast("flush_metrics").results_async()
            text = await self.state.render_metrics.remote()
            return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

        # --- scoring -----------------------------------------------------------------------------

        @api.post("/predict", responses={200: {"model": PredictResponse}, **scoring_errors})
        async def predict(self, request: Request) -> Response:
            """Score one record or a batch; the response names the variant and version that answered."""
            return await self._answer(request, "score", predict_envelope, "predictions")

        @api.post("/recommend", responses={200: {"model": RecommendResponse}, **scoring_errors})
        async def recommend(self, request: Request) -> Response:
            """Top-k items per user from an ALS version's factors (routed like /predict)."""
            return await self._answer(request, "recommend", recommend_envelope, "recommendations")

        async def _call(self, variant: str, method: str, envelope: Envelope) -> VariantAnswer:
            slot = self.slots.get(variant)
            if slot is None:
                answer: VariantAnswer = await getattr(self.handles[variant], method).remote(
                    envelope.payload, self.settings.sticky_key
                )
                return answer
            call = getattr(slot, method)
            if envelope.rows >= OnnxScorer.BATCH_ROWS:  # a large batch must not stop the event loop
                return await asyncio.to_thread(call, envelope.payload, self.settings.sticky_key)
            return call(envelope.payload, self.settings.sticky_key)

        async def _answer(
            self, request: Request, method: str, check: Callable[[Any, int, str | None], Envelope], key: str
        ) -> Response:
            """Read and check the body once, route it (or follow model_id), let the variant answer."""
            await self._ensure_refresher()
            started = time.perf_counter()
            request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
            limit = self.settings.max_body_bytes
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                return _error(413, "body", f"{declared} bytes; at most {limit}")
            body = await request.body()
            if len(body) > limit:
                return _error(413, "body", f"{len(body)} bytes; at most {limit}")
            try:
                envelope = check(parse_json(body), self.settings.max_batch_rows, self.settings.sticky_key)
            except Refused as refused:
                return JSONResponse(refused.body, status_code=refused.status)
            if envelope.model_id is not None:
                variant = self._target(envelope.model_id)
                if variant is None:
                    served = sorted({*self.settings.variants, *self.versions.values()})
                    return _error(404, "model_id", f"{envelope.model_id!r} is not served; served: {served}")
                role = "direct"
            else:
                routable = self._routable()
                if sum(routable.values()) <= 0:
                    return _error(503, "model", f"no variant with traffic has a model loaded: {self.weights}")
                variant = choose_variant(routable, envelope.sticky)
                role = "routed"
            try:
                answer = await self._call(variant, method, envelope)
            except Exception as error:  # a scorer bug or a lost replica: a JSON 500, counted, not a bare one
                logger.exception("variant %s failed on request %s", variant, request_id)
                reason = f"variant {variant} failed: {type(error).__name__} (request {request_id}; see the logs)"
                answer = VariantAnswer.refused(500, "model", reason)
            version = answer.version or self.versions.get(variant, "none")
            self._count(variant, version, role, answer.status, started, envelope.rows)
            if answer.status != 200:
                return _error(answer.status, answer.field or "model", answer.reason or "", variant=variant)
            shadow = self.settings.shadow
            if shadow is not None and shadow != variant and role == "routed":
                self._in_background(self._shadow(shadow, method, envelope, request_id))
            head = orjson.dumps({"request_id": request_id, "variant": variant, "model": self.settings.model_name,
                                 "version": version, "scorer": answer.scorer})  # fmt: skip
            # The predictions are JSON already: spliced in, not parsed and written again.
            content = head[:-1] + b',"' + key.encode() + b'":' + answer.output + b"}"
            headers = {"x-variant": variant, "x-model-version": version, "x-request-id": request_id}
            return Response(content, media_type="application/json", headers=headers)

        def _in_background(self, work: Any) -> None:
            task = asyncio.get_running_loop().create_task(work)
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        async def _shadow(self, variant: str, method: str, envelope: Envelope, request_id: str) -> None:
            started = time.perf_counter()
            await asyncio.sleep(0)  # after the routed answer has gone out
            try:
                answer = await self._call(variant, method, envelope)
            except Exception as error:
                answer = VariantAnswer.refused(500, "model", f"{type(error).__name__}: {error}")
            version = answer.version or "none"
            self._count(variant, version, "shadow", answer.status, started, envelope.rows)
            output = orjson.loads(answer.output)[:10] if answer.status == 200 else []
            entry = {"request_id": request_id, "variant": variant, "version": version, "status": answer.status,
                     "method": method, "output": output}  # fmt: skip
            self.state.record_shadow.remote(entry)
            logger.info("shadow %s", json.dumps(entry))

        # --- routes that change state (bearer token) ---------------------------------------------

        def _authorised(self, request: Request) -> JSONResponse | None:
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            digest = hashlib.sha256(token.encode()).hexdigest()
            if token and hmac.compare_digest(digest, self.settings.token_sha256 or ""):
                return None
            body = problem("authorization", "a valid bearer token is required")
            return JSONResponse(body, status_code=401, headers={"www-authenticate": "Bearer"})

        def _own_replicas(self) -> Any:
            return serve.get_deployment_handle(INGRESS_NAME, self.settings.app_name)

        if admin:

            @api.post("/admin/weights", responses=problems(400, 401, 422))
            async def set_weights(self, request: Request) -> JSONResponse:
                """Change the routing weights (bearer token); applies to new requests at once."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                try:
                    asked = weights_body(parse_json(await request.body()))
                    weights = check_weights(asked, set(self.settings.variants))
                except Refused as error:
                    return JSONResponse(error.body, status_code=error.status)
                except WeightsError as error:
                    return _error(422, "weights", str(error))
                self.weights = await self.state.set_weights.remote(weights)
                await self._own_replicas().broadcast("apply_weights", self.weights).results_async()
                return JSONResponse({"weights": self.weights})

            @api.post("/admin/reload", responses=problems(401))
            async def reload(self, request: Request) -> JSONResponse:
                """Re-resolve every variant's alias on every replica (bearer token); no restart."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                results: dict[str, list[Any]] = {name: [] for name in self.settings.variants}
                for replica in await self._own_replicas().broadcast("reload_local").results_async():
                    for name, outcome in replica.items():
                        results[name].append(outcome)
                for name, handle in self.handles.items():
                    results[name] = await handle.broadcast("reload").results_async()
                await self._refresh_versions()
                return JSONResponse({"variants": results, "versions": self.versions})

            @api.post("/train", status_code=202, openapi_extra=_body_schema(TrainRequest),
                      responses={202: {"model": TrainAccepted}, **problems(400, 401, 403, 422, 503)})  # fmt: skip
            async def train(self, request: Request) -> JSONResponse:
                """Submit a training run as a Ray Job (bearer token); `data_path` must be inside the data roots."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                try:
                    job = await asyncio.to_thread(start_training, self.settings, await request.body())
                except Refused as error:
                    return JSONResponse(error.body, status_code=error.status)
                return JSONResponse(job, status_code=202)

            @api.get("/train/{job_id}", responses=problems(401, 404))
            async def training(self, job_id: str, request: Request) -> JSONResponse:
                """A training job's status, and once it ended the outcome it wrote (bearer token)."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                status = None
                if job_id.startswith("train-") and self.settings.dashboard_url is not None:
                    status = await asyncio.to_thread(training_status, self.settings, job_id)
                if status is None:
                    return _error(404, "id", f"no training job {job_id!r}")
                return JSONResponse(status)

    return Router


def _scaling(autoscaling: dict[str, Any] | None, replicas: int, max_per_node: int | None) -> dict[str, Any]:
    """A deployment's replica options: Serve's autoscaling or a fixed count, and the per-node cap."""
    options: dict[str, Any] = (
        {"autoscaling_config": autoscaling} if autoscaling is not None else {"num_replicas": replicas}
    )
    if max_per_node is not None:
        options["max_replicas_per_node"] = max_per_node
    return options


def build_application(settings: AppSettings) -> Any:
    """The Serve application: the ingress (scoring ONNX variants itself) bound to one deployment per
    Spark-scored variant; the state actor is started first."""
    start_state(settings.app_name, settings.initial_weights)
    remote = {}
    for name, variant in settings.variants.items():
        if not variant.remote:
            continue
        options: dict[str, Any] = {
            "name": f"variant-{name}",
            "ray_actor_options": {"num_cpus": variant.cpus},
            "max_ongoing_requests": settings.max_ongoing_requests,
            "logging_config": {"enable_access_log": False},  # the ingress logs every HTTP request already
        }
        options.update(_scaling(variant.autoscaling, variant.replicas, settings.max_replicas_per_node))
        remote[name] = SparkVariant.options(**options).bind(name, settings)  # type: ignore[attr-defined]
    ingress: dict[str, Any] = {
        "name": INGRESS_NAME,
        "ray_actor_options": {"num_cpus": 0},
        # Serve's default (5) makes concurrent clients queue and back off: scoring takes well under 1 ms.
        "max_ongoing_requests": settings.max_ongoing_requests,
    }
    per_node = settings.max_replicas_per_node
    ingress.update(_scaling(settings.ingress_autoscaling, settings.ingress_replicas, per_node))
    router = serve.deployment(**ingress)(build_ingress(settings))
    return router.bind(remote, settings)
