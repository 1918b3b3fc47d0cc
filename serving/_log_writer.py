"""The prediction-log writer of one ingress replica: answered requests are buffered as they go out and
committed to the Delta table every ``log_flush_seconds`` (on a thread, so requests go on meanwhile), on
demand (/feedback looks for an answer still buffered), and once more when the replica stops gracefully."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import orjson

from serving._prediction_log import AnsweredRequest, PredictionLog
from serving._requests import Envelope
from serving._variants import VariantAnswer

logger = logging.getLogger("ray.serve")


@dataclasses.dataclass(frozen=True)
class Answered:
    """What the ingress knows of one request once a variant answered it."""

    request_id: str
    method: str  # score or recommend
    variant: str
    role: str  # routed, direct or shadow
    version: str
    trained_on: int | None  # the Delta version the answering model was trained on
    envelope: Envelope
    body: bytes
    started: float  # time.perf_counter() when the request came in


class PredictionLogWriter:
    """Buffers answered requests of one replica and commits them; ``log`` is None when the log is off."""

    def __init__(self, path: str | None, max_buffer_rows: int, flush_seconds: float, model_name: str) -> None:
        self.log = PredictionLog(path, max_buffer_rows) if path else None
        self._flush_seconds = flush_seconds
        self._model_name = model_name
        self._task: asyncio.Task[None] | None = None

    def offer(self, answered: Answered, answer: VariantAnswer) -> None:
        """Hand an answer to the buffer: its predictions, or for a variant's failure (5xx) one error row
        per record (a guardrail counts them); a refused request (4xx: the client's error) is not logged.
        A full buffer drops the entry, counted."""
        if self.log is None or 200 < answer.status < 500:
            return
        failed = answer.status >= 500
        output = orjson.dumps([{"error": answer.status}] * answered.envelope.rows) if failed else answer.output
        self.log.offer(AnsweredRequest(
            answered.request_id, time.time(), "recommend" if answered.method == "recommend" else "predict",
            answered.variant, answered.role, self._model_name, answered.version, answered.trained_on,
            answer.scorer, answered.body, output, time.perf_counter() - answered.started,
            answered.envelope.sticky, answered.envelope.rows,
        ))  # fmt: skip

    def ensure_running(self) -> None:
        """Start the periodic commit on the running event loop (again, if it ended)."""
        if self.log is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._write_forever())

    async def flush(self) -> int:
        """Commit the buffered rows now (on a thread); the rows written."""
        return 0 if self.log is None else await asyncio.to_thread(self.log.commit)

    async def _write_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except Exception as error:  # commit() keeps the rows for the next try
                logger.warning("prediction log flush failed: %s", error)

    def close(self, state: Any) -> None:
        """At a graceful stop: commit what the buffer holds (blocking: the replica is going), then send the
        last counts to ``state`` without waiting."""
        if self._task is not None:
            self._task.cancel()
        if self.log is None or not self.log.pending_rows:
            return
        written = self.log.commit(final=True)  # waits for a commit in flight on the writer's thread first
        logger.info("prediction log: %d rows committed at shutdown", written)
        try:
            state.record_many.remote([], dataclasses.asdict(self.log.take_counts()))
        except Exception as error:  # the counts only: the rows are committed
            logger.info("prediction log counts not sent at shutdown: %s", error)
