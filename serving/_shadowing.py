"""Shadow traffic: a routed request is sent again, after its answer has gone out, to the shadow variant;
its answer is counted and logged (role ``shadow``) and kept in the state actor's shadow log, never
returned to the client."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any

import orjson

from serving._accounting import RequestAccounting
from serving._directory import VariantDirectory
from serving._log_writer import Answered, PredictionLogWriter
from serving._requests import Envelope
from serving._variants import VariantAnswer

logger = logging.getLogger("ray.serve")
_KEPT_OUTPUTS = 10  # predictions kept per shadow log entry: enough to compare by eye, small in the actor


class Shadowing:
    """Sends copies of routed requests to ``variant`` in the background of one replica's event loop."""

    def __init__(
        self,
        variant: str | None,
        directory: VariantDirectory,
        accounting: RequestAccounting,
        writer: PredictionLogWriter,
        state: Any,
    ) -> None:
        self.variant = variant
        self._directory = directory
        self._accounting = accounting
        self._writer = writer
        self._state = state
        self._running: set[asyncio.Task[Any]] = set()  # kept referenced until done (asyncio holds weak refs)

    def follows(self, variant: str, role: str) -> bool:
        """Whether a request answered by ``variant`` in ``role`` is shadowed."""
        return self.variant is not None and self.variant != variant and role == "routed"

    def send(self, request_id: str, method: str, envelope: Envelope, body: bytes) -> None:
        """Shadow one request, in the background."""
        self._in_background(self._shadow(request_id, method, envelope, body))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _shadow(self, request_id: str, method: str, envelope: Envelope, body: bytes) -> None:
        assert self.variant is not None
        started = time.perf_counter()
        await asyncio.sleep(0)  # after the routed answer has gone out
        try:
            answer = await self._directory.call(self.variant, method, envelope)
        except Exception as error:
            answer = VariantAnswer.refused(500, "model", f"{type(error).__name__}: {error}")
        version = answer.version or "none"
        self._accounting.count(self.variant, version, "shadow", answer.status, started, envelope.rows)
        logged_version = answer.version or self._directory.version_of(self.variant)  # a failure names none
        answered = Answered(
            request_id,
            method,
            self.variant,
            "shadow",
            logged_version,
            self._directory.trained_on(logged_version),
            envelope,
            body,
            started,
        )
        self._writer.offer(answered, answer)
        output = orjson.loads(answer.output)[:_KEPT_OUTPUTS] if answer.status == 200 else []
        entry = {
            "request_id": request_id,
            "variant": self.variant,
            "version": version,
            "status": answer.status,
            "method": method,
            "output": output,
        }
        self._state.record_shadow.remote(entry)
        logger.info("shadow %s", json.dumps(entry))
