"""The prediction-log writer of one ingress replica: each answered request is written ahead (to a local
file, before the answer goes out: it outlives the replica) and committed to the Delta table every
``log_flush_seconds`` (on a thread, so requests go on meanwhile), on demand (/feedback looks for an answer
not committed yet), and once more when the replica stops gracefully. The written-ahead files are
fdatasync'ed in groups as fast as they come; with ``wait_for_disk`` an answer waits for its group's."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import orjson

from serving._prediction_log import AnsweredRequest, PredictionLog
from serving._requests import Envelope
from serving._variants import VariantAnswer

logger = logging.getLogger("ray.serve")
_SYNC_PAUSE_SECONDS = 0.05  # between two fdatasyncs nobody waits for: at most this much lost to a power cut


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

    def __init__(
        self,
        path: str | None,
        max_buffer_rows: int,
        flush_seconds: float,
        model_name: str,
        wait_for_disk: bool = False,
        write_ahead: str | None = None,
    ) -> None:
        wal = Path(write_ahead) if write_ahead else None
        self.log = PredictionLog(path, max_buffer_rows, wal) if path else None
        self._flush_seconds = flush_seconds
        self._model_name = model_name
        self._wait_for_disk = wait_for_disk
        self._tasks: list[asyncio.Task[None]] = []
        self._written = asyncio.Event()  # something was written ahead since the last fdatasync
        self._waiting: list[asyncio.Future[None]] = []  # answers held until their fdatasync (wait_for_disk)

    def offer(self, answered: Answered, answer: VariantAnswer) -> asyncio.Future[None] | None:
        """Write an answer ahead: its predictions, or for a variant's failure (5xx) one error row per
        record (a guardrail counts them); a refused request (4xx: the client's error) is not logged. A full
        backlog drops the entry, counted. With ``wait_for_disk``, a future the answer awaits: its fdatasync."""
        if self.log is None or 200 < answer.status < 500:
            return None
        failed = answer.status >= 500
        output = orjson.dumps([{"error": answer.status}] * answered.envelope.rows) if failed else answer.output
        written = self.log.offer(
            AnsweredRequest(
                answered.request_id,
                time.time(),
                "recommend" if answered.method == "recommend" else "predict",
                answered.variant,
                answered.role,
                self._model_name,
                answered.version,
                answered.trained_on,
                answer.scorer,
                answered.body,
                output,
                time.perf_counter() - answered.started,
                answered.envelope.sticky,
                answered.envelope.rows,
            )
        )
        if not written:
            return None
        self._written.set()
        if not self._wait_for_disk:
            return None
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(durable)
        return durable

    def ensure_running(self) -> None:
        """Start the periodic commit and the fdatasyncs on the running event loop (again, if they ended)."""
        if self.log is not None and (not self._tasks or any(task.done() for task in self._tasks)):
            for task in self._tasks:
                task.cancel()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._write_forever()), loop.create_task(self._sync_forever())]

    async def flush(self) -> int:
        """Commit what was written ahead now (on a thread); the rows written."""
        return 0 if self.log is None else await asyncio.to_thread(self.log.commit)

    async def _write_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except Exception as error:  # commit() keeps the rows for the next try
                logger.warning("prediction log flush failed: %s", error)

    async def _sync_forever(self) -> None:
        assert self.log is not None
        while True:
            await self._written.wait()
            self._written.clear()
            waiting, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self.log.sync)
            except Exception as error:  # the rows are in the kernel's hands: they outlive the replica anyway
                logger.warning("prediction log fdatasync failed: %s", error)
            for durable in waiting:
                if not durable.done():
                    durable.set_result(None)
            if not self._wait_for_disk:
                await asyncio.sleep(_SYNC_PAUSE_SECONDS)

    def close(self, state: Any) -> None:
        """At a graceful stop: commit what was written ahead (blocking: the replica is going), then send the
        last counts to ``state`` without waiting."""
        for task in self._tasks:
            task.cancel()
        if self.log is None:
            return
        written = self.log.close()  # waits for a commit in flight on the writer's thread first
        logger.info("prediction log: %d rows committed at shutdown", written)
        try:
            state.record_many.remote([], dataclasses.asdict(self.log.take_counts()))
        except Exception as error:  # the counts only: the rows are committed
            logger.info("prediction log counts not sent at shutdown: %s", error)
