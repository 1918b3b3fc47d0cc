"""What the routes that change state do (each behind the bearer token): new routing weights for every
replica, outcomes for logged predictions. The HTTP side (paths, status codes) is the ingress's."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from serving._feedback import FeedbackReport, feedback_outcomes, unknown_outcomes, write_known
from serving._requests import Refused, parse_json, weights_body
from serving._settings import AppSettings
from serving.routing import WeightsError, check_weights


def bearer_token_valid(authorization: str, token_sha256: str | None) -> bool:
    """Whether an ``Authorization`` header carries the token whose SHA-256 the app was given (constant
    time: the comparison does not tell how much of a guess was right)."""
    token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return bool(token) and hmac.compare_digest(digest, token_sha256 or "")


def servable_weights(weights: Mapping[str, float], loaded: Mapping[str, str]) -> None:
    """Refused (409) unless some variant with a loaded model (``loaded``: variant -> version) would get
    traffic: weights that route everything to missing models would answer every request with 503."""
    if any(weights.get(name, 0.0) > 0 for name in loaded):
        return
    shares = ", ".join(
        f"{name} (version {version}) would get {weights.get(name, 0.0):g}"
        for name, version in sorted(loaded.items())
    )
    reason = f"{dict(weights)}: no variant with a loaded model would get traffic; loaded: {shares or 'none'}"
    raise Refused(409, "weights", reason)


async def change_weights(
    body: bytes, variants: set[str], loaded: Mapping[str, str], state: Any, replicas: Any
) -> dict[str, float]:
    """Check the weights asked for (``loaded``: the variants with a model loaded, and their versions), store
    them in the state actor, apply them on every ingress replica (``replicas``: a handle to the ingress
    deployment); the weights now in force. Raises Refused."""
    try:
        weights = check_weights(weights_body(parse_json(body)), variants)
    except WeightsError as error:
        raise Refused(422, "weights", str(error)) from error
    servable_weights(weights, loaded)
    stored: dict[str, float] = await state.set_weights.remote(weights)
    await replicas.broadcast("apply_weights", stored).results_async()
    return stored


def feedback_tables(settings: AppSettings) -> tuple[str, str]:
    """The prediction log and the feedback table; Refused (503) when the prediction log is off."""
    if settings.prediction_log is None or settings.feedback is None:
        raise Refused(503, "feedback", "the prediction log is off (serving.prediction_log.enabled)")
    return settings.prediction_log, settings.feedback


async def take_feedback(
    body: bytes, tables: tuple[str, str], settings: AppSettings, state: Any, replicas: Any
) -> FeedbackReport:
    """Write the outcomes of logged predictions to the feedback table (``tables``: the prediction log and
    the feedback table, from ``feedback_tables``); outcomes of requests the log does not hold are counted
    and listed, not written. Raises Refused."""
    log, table = tables
    outcomes = feedback_outcomes(parse_json(body), settings.max_batch_rows)
    lookback = settings.feedback_lookback_days
    unknown = await asyncio.to_thread(unknown_outcomes, log, outcomes, lookback)
    if unknown:
        # Answers a replica has not committed yet are not in the table: commit them, look again for those
        # (the log is read once when every outcome is known at once).
        await replicas.broadcast("flush_log").results_async()
        unknown = await asyncio.to_thread(unknown_outcomes, log, unknown, lookback)
    report = await asyncio.to_thread(write_known, table, outcomes, unknown, "api")
    state.record_many.remote([], {"feedback_accepted": report.accepted, "feedback_unknown": len(report.unknown)})
    return report
