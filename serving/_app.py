"""The ingress deployment: one replica's routes. It checks a request, routes it (or follows its
``model_id``), lets a variant answer, counts the request and hands the answer to the prediction log.
Each of those is a part of its own (``_directory``, ``_accounting``, ``_log_writer``, ``_shadowing``,
``_admin``); ``build_ingress`` only assembles the routes (the admin ones only when a token is set).

No `from __future__ import annotations` here: this module is pickled by value into the replicas (see
``build_ingress``), and FastAPI needs real types in the route methods' signatures, not strings to resolve.
"""

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from ray import cloudpickle, serve
from ray.exceptions import RayActorError

from serving._accounting import RequestAccounting
from serving._admin import bearer_token_valid, change_weights, feedback_tables, take_feedback
from serving._contract import contract_document
from serving._directory import VariantDirectory
from serving._feedback import FeedbackAccepted, feedback_body_schema
from serving._log_writer import Answered, PredictionLogWriter
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
)
from serving._settings import AppSettings
from serving._shadowing import Shadowing
from serving._state import state_handle
from serving._training import start_training, training_status
from serving._variants import VariantAnswer
from serving.routing import choose_variant

logger = logging.getLogger("ray.serve")
INGRESS_NAME = "router"


def _error(status: int, field_name: str, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({**problem(field_name, reason), **extra}, status_code=status)


def _refused(refused: Refused) -> JSONResponse:
    return JSONResponse(refused.body, status_code=refused.status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body; Refused (413) past ``limit`` bytes, before reading when the length is declared."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, "body", f"{declared} bytes; at most {limit}")
    body = await request.body()
    if len(body) > limit:
        raise Refused(413, "body", f"{len(body)} bytes; at most {limit}")
    return body


class Router:
    """One ingress replica. Its route methods are registered by ``build_ingress``; the other public
    methods are called on every replica through the deployment's handle (``broadcast``)."""

    def __init__(self, remote: dict[str, Any], settings: AppSettings) -> None:
        self.settings = settings
        self.state = state_handle(settings.app_name)
        self.weights = settings.initial_weights
        self.directory = VariantDirectory(settings, remote)
        self.accounting = RequestAccounting(self.state)
        self.writer = PredictionLogWriter(
            settings.prediction_log,
            settings.log_max_buffer_rows,
            settings.log_flush_seconds,
            settings.model_name,
            settings.log_wait_for_disk,
            settings.log_write_ahead,
        )
        self.shadowing = Shadowing(settings.shadow, self.directory, self.accounting, self.writer, self.state)
        self._refresher: asyncio.Task[None] | None = None

    # --- called on every replica -----------------------------------------------------------------

    async def flush_metrics(self) -> None:
        """Send the requests counted here to the state actor (also called on every replica by /metrics)."""
        await self.accounting.flush(self.writer.log)

    async def flush_log(self) -> int:
        """Commit the prediction log rows this replica wrote ahead (and any a dead one left); the rows written."""
        return await self.writer.flush()

    async def reload_local(self) -> dict[str, Any]:
        """Re-resolve this replica's in-process variants (called on every replica by /admin/reload)."""
        return await self.directory.reload_local()

    async def reload_all(self) -> dict[str, Any]:
        """Every replica of every variant re-resolves its alias (/admin/reload, the experiment watcher)."""
        results: dict[str, list[Any]] = {name: [] for name in self.settings.variants}
        for replica in await self._own_replicas().broadcast("reload_local").results_async():
            for name, outcome in replica.items():
                results[name].append(outcome)
        results.update(await self.directory.reload_remote())
        await self.directory.refresh()
        return {"variants": results, "versions": self.directory.versions}

    def apply_weights(self, weights: dict[str, float]) -> None:
        self.weights = weights

    def __del__(self) -> None:
        """A graceful stop (serve --stop, Ctrl-C, a redeploy; Serve calls this once in-flight requests are
        answered): what the prediction log holds is committed before the replica goes."""
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.close(self.state)

    # --- kept in step with the other replicas ----------------------------------------------------

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.flush_metrics()
                self.weights = await self.state.get_weights.remote()
                await self.directory.refresh()
            except Exception as error:  # keep serving on the last known weights
                logger.warning("router refresh failed: %s", error)
            await asyncio.sleep(self.settings.refresh_seconds)

    async def _ensure_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            # A replica started after a change of weights (a replacement for a killed one) serves the app's
            # live weights from its first request, not the config's.
            with contextlib.suppress(Exception):
                self.weights = await self.state.get_weights.remote()
            await self.directory.refresh()
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())
        self.writer.ensure_running()

    def _own_replicas(self) -> Any:
        return serve.get_deployment_handle(INGRESS_NAME, self.settings.app_name)

    # --- read-only routes ------------------------------------------------------------------------

    async def openapi(self, request: Request) -> JSONResponse:
        """This app's OpenAPI document, with the request bodies the loaded versions take now."""
        await self._ensure_refresher()
        await self.directory.refresh()
        document = contract_document(
            request.app.openapi(),
            await self.directory.served_variants(self.weights),
            list(self.settings.variants),
            self.settings.max_batch_rows,
            self.settings.sticky_key,
        )
        return JSONResponse(document)

    async def docs(self) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{self.settings.model_name} serving")

    async def health(self) -> JSONResponse:
        """200 when every variant that has a model in the registry is loaded and some variant takes
        routed traffic; a variant whose alias does not exist yet is listed under `missing`."""
        await self._ensure_refresher()
        infos = await self.directory.refresh()
        failing = sorted(name for name, info in infos.items() if not info.ready and not info.missing)
        missing = sorted(name for name, info in infos.items() if info.missing)
        ready = not failing and sum(self.directory.routable(self.weights).values()) > 0
        body = {
            "status": "ready" if ready else "loading",
            "missing": missing,
            "variants": {name: info.as_json() for name, info in infos.items()},
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def models(self) -> dict[str, Any]:
        """Variants with their alias, version, weight, scorer kind and lineage (Delta version)."""
        await self._ensure_refresher()
        infos = await self.directory.refresh()
        variants = {}
        for name, variant in self.settings.variants.items():
            variants[name] = {
                **infos[name].as_json(),
                "alias": variant.source.alias,
                "pinned_version": variant.source.version,
                "weight": self.weights.get(name, 0.0),
                "placement": "spark deployment" if variant.remote else "in-process",
            }
        settings = self.settings
        return {
            "model": settings.model_name,
            "sticky_key": settings.sticky_key,
            "shadow": settings.shadow,
            "variants": variants,
        }

    async def metrics(self) -> PlainTextResponse:
        """Prometheus text: requests, errors, rows and latency per variant, version and role."""
        await self._ensure_refresher()
        # Every ingress replica sends what it counted first: the text is exact at the time of asking.
        await self._own_replicas().broadcast("flush_metrics").results_async()
        text = await self.state.render_metrics.remote()
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    # --- scoring ---------------------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        """Score one record or a batch; the response names the variant and version that answered."""
        return await self._answer(request, "score", predict_envelope, "predictions")

    async def recommend(self, request: Request) -> Response:
        """Top-k items per user from an ALS version's factors (routed like /predict)."""
        return await self._answer(request, "recommend", recommend_envelope, "recommendations")

    async def _answer(
        self, request: Request, method: str, check: Callable[[Any, int, str | None], Envelope], key: str
    ) -> Response:
        """Read and check the body once, route it (or follow model_id), let the variant answer."""
        await self._ensure_refresher()
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        try:
            body = await _read_body(request, self.settings.max_body_bytes)
            envelope = check(parse_json(body), self.settings.max_batch_rows, self.settings.sticky_key)
            variant, role = self._destination(envelope)
        except Refused as refused:
            return _refused(refused)
        try:
            answer = await self.directory.call(variant, method, envelope)
        except RayActorError as error:  # a Spark-scored variant's replica lost while answering: worth a retry
            logger.warning("variant %s lost its replica on request %s: %s", variant, request_id, error)
            reason = f"variant {variant} lost its replica while answering (request {request_id}): retry"
            answer = VariantAnswer.refused(503, "model", reason)
        except Exception as error:  # a scorer bug: a JSON 500, counted, not a bare one
            logger.exception("variant %s failed on request %s", variant, request_id)
            reason = f"variant {variant} failed: {type(error).__name__} (request {request_id}; see the logs)"
            answer = VariantAnswer.refused(500, "model", reason)
        version = answer.version or self.directory.version_of(variant)
        self.accounting.count(variant, version, role, answer.status, started, envelope.rows)
        answered = Answered(
            request_id, method, variant, role, version, self.directory.trained_on(version), envelope, body, started
        )
        durable = self.writer.offer(answered, answer)  # written ahead: it outlives this replica from here
        if durable is not None:
            await durable
        if answer.status != 200:
            return _error(answer.status, answer.field or "model", answer.reason or "", variant=variant)
        if self.shadowing.follows(variant, role):
            self.shadowing.send(request_id, method, envelope, body)
        head = orjson.dumps(
            {
                "request_id": request_id,
                "variant": variant,
                "model": self.settings.model_name,
                "version": version,
                "scorer": answer.scorer,
            }
        )
        # The predictions are JSON already: spliced in, not parsed and written again.
        content = head[:-1] + b',"' + key.encode() + b'":' + answer.output + b"}"
        # No x-request-id here: Serve's own middleware sets it on every answer (the one read above: it adds
        # one to a request that came without); a second would reach clients as "id, id".
        headers = {"x-variant": variant, "x-model-version": version}
        return Response(content, media_type="application/json", headers=headers)

    def _destination(self, envelope: Envelope) -> tuple[str, str]:
        """The variant that answers and the request's role: ``direct`` to the one its model_id names (404
        if none), else ``routed`` by the weights among the loaded variants (503 if none has traffic)."""
        if envelope.model_id is not None:
            variant = self.directory.target(envelope.model_id)
            if variant is None:
                reason = f"{envelope.model_id!r} is not served; served: {self.directory.served()}"
                raise Refused(404, "model_id", reason)
            return variant, "direct"
        routable = self.directory.routable(self.weights)
        if sum(routable.values()) <= 0:
            raise Refused(503, "model", f"no variant with traffic has a model loaded: {self.weights}")
        return choose_variant(routable, envelope.sticky), "routed"

    # --- routes that change state (bearer token) -------------------------------------------------

    def _unauthorised(self, request: Request) -> JSONResponse | None:
        if bearer_token_valid(request.headers.get("authorization", ""), self.settings.token_sha256):
            return None
        body = problem("authorization", "a valid bearer token is required")
        return JSONResponse(body, status_code=401, headers={"www-authenticate": "Bearer"})

    async def set_weights(self, request: Request) -> JSONResponse:
        """Change the routing weights (bearer token); applies to new requests at once."""
        if (refused := self._unauthorised(request)) is not None:
            return refused
        try:
            await self.directory.refresh()  # what is loaded now, not at the last periodic refresh
            body, variants, loaded = await request.body(), set(self.settings.variants), self.directory.versions
            self.weights = await change_weights(body, variants, loaded, self.state, self._own_replicas())
        except Refused as error:
            return _refused(error)
        return JSONResponse({"weights": self.weights})

    async def feedback(self, request: Request) -> JSONResponse:
        """Outcomes of logged predictions by request id and row (bearer token); those the prediction log
        does not hold are counted and listed, not written."""
        if (refused := self._unauthorised(request)) is not None:
            return refused
        try:
            tables = feedback_tables(self.settings)  # 503 when the log is off, before the body is read
            body = await _read_body(request, self.settings.max_body_bytes)
            report = await take_feedback(body, tables, self.settings, self.state, self._own_replicas())
        except Refused as error:
            return _refused(error)
        return JSONResponse(report.as_json())

    async def reload(self, request: Request) -> JSONResponse:
        """Re-resolve every variant's alias on every replica (bearer token); no restart."""
        if (refused := self._unauthorised(request)) is not None:
            return refused
        return JSONResponse(await self.reload_all())

    async def train(self, request: Request) -> JSONResponse:
        """Submit a training run as a Ray Job (bearer token); `data_path` must be inside the data roots."""
        if (refused := self._unauthorised(request)) is not None:
            return refused
        try:
            job = await asyncio.to_thread(start_training, self.settings, await request.body())
        except Refused as error:
            return _refused(error)
        return JSONResponse(job, status_code=202)

    async def training(self, job_id: str, request: Request) -> JSONResponse:
        """A training job's status, and once it ended the outcome it wrote (bearer token)."""
        if (refused := self._unauthorised(request)) is not None:
            return refused
        status = None
        if job_id.startswith("train-") and self.settings.dashboard_url is not None:
            status = await asyncio.to_thread(training_status, self.settings, job_id)
        if status is None:
            return _error(404, "id", f"no training job {job_id!r}")
        return JSONResponse(status)


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def build_ingress(settings: AppSettings) -> Any:
    """The ingress deployment class: ``Router`` behind a FastAPI app of its routes (the admin routes only
    when a token is configured). /openapi.json and /docs are routes too: the request bodies they describe
    depend on the versions loaded now."""
    api = FastAPI(
        title=f"{settings.model_name} serving",
        description="Champion/challenger scoring of registered MLlib pipelines (ONNX, Spark fallback).",
        version="1",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    scoring_errors = problems(400, 404, 413, 422, 500, 503)
    loading = {"model": Health, "description": "loading: a variant with a registered version is not loaded"}

    def route(path: str, endpoint: Callable[..., Any], method: str = "GET", **options: Any) -> None:
        api.add_api_route(path, endpoint, methods=[method], **options)

    route("/openapi.json", Router.openapi, include_in_schema=False)
    route("/docs", Router.docs, include_in_schema=False)
    route("/health", Router.health, responses={200: {"model": Health}, 503: loading})
    route("/models", Router.models)
    route("/metrics", Router.metrics, response_class=PlainTextResponse)
    route("/predict", Router.predict, "POST", responses={200: {"model": PredictResponse}, **scoring_errors})
    route("/recommend", Router.recommend, "POST", responses={200: {"model": RecommendResponse}, **scoring_errors})
    if settings.token_sha256 is not None:
        route("/admin/weights", Router.set_weights, "POST", responses=problems(400, 401, 409, 422))
        route(
            "/feedback",
            Router.feedback,
            "POST",
            openapi_extra=_json_body(feedback_body_schema(settings.max_batch_rows)),
            responses={200: {"model": FeedbackAccepted}, **problems(400, 401, 413, 422, 503)},
        )
        route("/admin/reload", Router.reload, "POST", responses=problems(401))
        route(
            "/train",
            Router.train,
            "POST",
            status_code=202,
            openapi_extra=_json_body(TrainRequest.model_json_schema()),
            responses={202: {"model": TrainAccepted}, **problems(400, 401, 403, 422, 503)},
        )
        route("/train/{job_id}", Router.training, responses=problems(401, 404))
    # Serve turns the route methods into class-based views by changing their signatures (``self``
    # injected as a dependency) in this process only. Pickled by value, the replicas get them as changed;
    # by reference, a replica would import them anew and FastAPI would read ``self`` as a query parameter.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return serve.ingress(api)(Router)
