"""Request accounting of one ingress replica: each answered (or refused) request counted as Ray metrics at
once, and kept for the app's state actor, which renders /metrics from the counts of every replica.
Sending is batched (one Ray call per flush, not per request) and nothing is lost when a send fails."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from serving._metrics import RequestRecord
from serving._prediction_log import LogCounts, PredictionLog

_TAGS = ("variant", "version", "role", "status")
_LATENCY_BOUNDARIES = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]


class RequestAccounting:
    """Counts requests here, sends them (and the prediction log's counts) to the state actor on ``flush``."""

    def __init__(self, state: Any) -> None:
        from ray.util import metrics  # Ray's metrics need a connected worker: imported where one runs

        self._state = state
        self._unsent: list[RequestRecord] = []
        self._requests = metrics.Counter(
            "pipeline_serve_requests", "Prediction requests by variant, version, role and status.", _TAGS
        )
        self._latency = metrics.Histogram(
            "pipeline_serve_request_seconds",
            "Time to answer a prediction request.",
            boundaries=_LATENCY_BOUNDARIES,
            tag_keys=_TAGS[:3],
        )

    def count(self, variant: str, version: str, role: str, status: int, started: float, rows: int) -> None:
        """One request, ``started`` at that ``time.perf_counter()``, answered now with ``status``."""
        seconds = time.perf_counter() - started
        self._unsent.append(RequestRecord(variant, version, role, status, seconds, rows))
        labels = {"variant": variant, "version": version, "role": role}
        self._requests.inc(tags={**labels, "status": str(status)})
        self._latency.observe(seconds, tags=labels)

    async def flush(self, log: PredictionLog | None) -> None:
        """Send what was counted since the last flush, with the log's counts; kept for the next on failure."""
        counts = log.take_counts() if log is not None else LogCounts()
        if not self._unsent and counts == LogCounts():
            return
        records, self._unsent = self._unsent, []
        try:
            await self._state.record_many.remote(records, dataclasses.asdict(counts))
        except Exception:
            self._unsent = records + self._unsent  # sent again with the next flush
            if log is not None:
                log.restore_counts(counts)
            raise
