"""The ingress deployment: FastAPI routes that check, route and answer requests, scoring ONNX variants
in-process (one hop from the HTTP front) and reaching Spark-scored variants through a deployment of their
own (serving._assembly binds them), counting every request and logging every answer.

No `from __future__ import annotations` here: the ingress class is pickled by value into its replicas,
and FastAPI needs real types (not strings to resolve against module globals) in the route signatures.
"""

import asyncio
import contextlib
import dataclasses
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
from serving._contract import ServedVariant, contract_document
from serving._feedback import (
    FeedbackAccepted,
    feedback_body_schema,
    feedback_outcomes,
    unknown_outcomes,
    write_known,
)
from serving._metrics import RequestRecord
from serving._prediction_log import AnsweredRequest, LogCounts, PredictionLog
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
from serving._state import state_handle
from serving._training import start_training, training_status
from serving._variants import VariantAnswer, VariantSlot
from serving.routing import WeightsError, check_weights, choose_variant

logger = logging.getLogger("ray.serve")
INGRESS_NAME = "router"


def _error(status: int, field_name: str, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse({**problem(field_name, reason), **extra}, status_code=status)


def _body_schema(model: Any) -> dict[str, Any]:
    return _schema_body(model.model_json_schema())


def _schema_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


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
            self.log = (PredictionLog(settings.prediction_log, settings.log_max_buffer_rows)
                        if settings.prediction_log else None)  # fmt: skip
            self._log_writer: asyncio.Task[None] | None = None
            self._trained_on: dict[str, int | None] = {}  # model version -> the Delta version it was trained on
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
            log = self.log.take_counts() if self.log is not None else LogCounts()
            if self._unsent or log != LogCounts():
                records, self._unsent = self._unsent, []
                try:
                    await self.state.record_many.remote(records, dataclasses.asdict(log))
                except Exception:
                    self._unsent = records + self._unsent  # sent again with the next flush
                    if self.log is not None:
                        self.log.restore_counts(log)
                    raise

        async def flush_log(self) -> int:
            """Commit this replica's buffered prediction log rows now (on a thread); the rows written."""
            return 0 if self.log is None else await asyncio.to_thread(self.log.commit)

        async def _write_log_forever(self) -> None:
            while True:
                await asyncio.sleep(self.settings.log_flush_seconds)
                try:
                    await self.flush_log()
                except Exception as error:  # commit() keeps the rows for the next try
                    logger.warning("prediction log flush failed: %s", error)

        def __del__(self) -> None:
            """A graceful stop (serve --stop, Ctrl-C, a redeploy; Serve calls this once in-flight requests are
            answered): what the log holds is committed before the replica goes. Blocking is fine here."""
            log, writer = getattr(self, "log", None), getattr(self, "_log_writer", None)
            if writer is not None:
                writer.cancel()
            if log is None or not log.pending_rows:
                return
            written = log.commit(final=True)  # waits for a commit in flight on the writer's thread first
            logger.info("prediction log: %d rows committed at shutdown", written)
            with contextlib.suppress(Exception):  # the counts, without waiting: the replica is going
                self.state.record_many.remote([], dataclasses.asdict(log.take_counts()))

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
            for info in infos.values():
                if info["ready"]:
                    trained_on = info.get("lineage", {}).get("data.delta_version")
                    self._trained_on[info["version"]] = int(trained_on) if trained_on is not None else None
            return {name: infos[name] for name in self.settings.variants}

        async def _ensure_refresher(self) -> None:
            if self._refresher is None or self._refresher.done():
                # A replica started after a change of weights (a replacement for a killed one) serves the
                # app's live weights from its first request, not the config's.
                with contextlib.suppress(Exception):
                    self.weights = await self.state.get_weights.remote()
                await self._refresh_versions()
                self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())
            if self.log is not None and (self._log_writer is None or self._log_writer.done()):
                self._log_writer = asyncio.get_running_loop().create_task(self._write_log_forever())

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

        async def reload_all(self) -> dict[str, Any]:
            """Every replica of every variant re-resolves its alias (/admin/reload, the experiment watcher)."""
            results: dict[str, list[Any]] = {name: [] for name in self.settings.variants}
            for replica in await self._own_replicas().broadcast("reload_local").results_async():
                for name, outcome in replica.items():
                    results[name].append(outcome)
            for name, handle in self.handles.items():
                results[name] = await handle.broadcast("reload").results_async()
            await self._refresh_versions()
            return {"variants": results, "versions": self.versions}

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
                if answer.status >= 500:  # the variant's failure, not the client's: a guardrail counts it
                    failed = orjson.dumps([{"error": answer.status}] * envelope.rows)
                    self._log(request_id, method, variant, role, answer, envelope, body, started, failed)
                return _error(answer.status, answer.field or "model", answer.reason or "", variant=variant)
            self._log(request_id, method, variant, role, answer, envelope, body, started)
            shadow = self.settings.shadow
            if shadow is not None and shadow != variant and role == "routed":
                self._in_background(self._shadow(shadow, method, envelope, body, request_id))
            head = orjson.dumps({"request_id": request_id, "variant": variant, "model": self.settings.model_name,
                                 "version": version, "scorer": answer.scorer})  # fmt: skip
            # The predictions are JSON already: spliced in, not parsed and written again.
            content = head[:-1] + b',"' + key.encode() + b'":' + answer.output + b"}"
            headers = {"x-variant": variant, "x-model-version": version, "x-request-id": request_id}
            return Response(content, media_type="application/json", headers=headers)

        def _log(
            self, request_id: str, method: str, variant: str, role: str, answer: VariantAnswer,
            envelope: Envelope, body: bytes, started: float, failed: bytes | None = None,
        ) -> None:  # fmt: skip
            """Hand an answered (or ``failed``) request to the prediction log (a full buffer drops it, counted)."""
            if self.log is None:
                return
            version = answer.version or self.versions.get(variant, "none")
            self.log.offer(AnsweredRequest(
                request_id, time.time(), "recommend" if method == "recommend" else "predict", variant, role,
                self.settings.model_name, version, self._trained_on.get(version), answer.scorer, body,
                failed or answer.output, time.perf_counter() - started, envelope.sticky, envelope.rows,
            ))  # fmt: skip

        def _in_background(self, work: Any) -> None:
            task = asyncio.get_running_loop().create_task(work)
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        async def _shadow(
            self, variant: str, method: str, envelope: Envelope, body: bytes, request_id: str
        ) -> None:
            started = time.perf_counter()
            await asyncio.sleep(0)  # after the routed answer has gone out
            try:
                answer = await self._call(variant, method, envelope)
            except Exception as error:
                answer = VariantAnswer.refused(500, "model", f"{type(error).__name__}: {error}")
            version = answer.version or "none"
            self._count(variant, version, "shadow", answer.status, started, envelope.rows)
            if answer.status == 200 or answer.status >= 500:
                failed = orjson.dumps([{"error": answer.status}] * envelope.rows) if answer.status >= 500 else None
                self._log(request_id, method, variant, "shadow", answer, envelope, body, started, failed)
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

            feedback_body = _schema_body(feedback_body_schema(settings.max_batch_rows))
            feedback_answers = {200: {"model": FeedbackAccepted}, **problems(400, 401, 413, 422, 503)}

            @api.post("/feedback", openapi_extra=feedback_body, responses=feedback_answers)
            async def feedback(self, request: Request) -> JSONResponse:
                """Outcomes of logged predictions by request id and row (bearer token); those the prediction
                log does not hold are counted and listed, not written."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                if self.settings.feedback is None or self.settings.prediction_log is None:
                    return _error(503, "feedback", "the prediction log is off (serving.prediction_log.enabled)")
                body = await request.body()
                if len(body) > self.settings.max_body_bytes:
                    return _error(413, "body", f"{len(body)} bytes; at most {self.settings.max_body_bytes}")
                try:
                    outcomes = feedback_outcomes(parse_json(body), self.settings.max_batch_rows)
                except Refused as error:
                    return JSONResponse(error.body, status_code=error.status)
                log, lookback = self.settings.prediction_log, self.settings.feedback_lookback_days
                unknown = await asyncio.to_thread(unknown_outcomes, log, outcomes, lookback)
                if unknown:
                    # Answers still in a replica's buffer are not in the table yet: commit them, look again
                    # for those (the log is read once when every outcome is known at once).
                    await self._own_replicas().broadcast("flush_log").results_async()
                    unknown = await asyncio.to_thread(unknown_outcomes, log, unknown, lookback)
                report = await asyncio.to_thread(write_known, self.settings.feedback, outcomes, unknown, "api")
                counts = {"feedback_accepted": report.accepted, "feedback_unknown": len(report.unknown)}
                self.state.record_many.remote([], counts)
                return JSONResponse(report.as_json())

            @api.post("/admin/reload", responses=problems(401))
            async def reload(self, request: Request) -> JSONResponse:
                """Re-resolve every variant's alias on every replica (bearer token); no restart."""
                if (refused := self._authorised(request)) is not None:
                    return refused
                return JSONResponse(await self.reload_all())

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
