"""A SIGKILL under bounded request streams, and what the prediction log kept of the answers: shared by the
fault tests (test_serve_faults.py), the Spark-scored variant's kill (test_serve_app.py) and the two-node
cluster's node kill (tests/cluster)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The streams watch each kill for at least this long: failures that come late (a dead replica still routed
# to) are seen.
WATCH_SECONDS = 10.0
# How long the app may take to answer again. Not a speed target: an HAProxy restart takes ~5 s on an idle
# machine and was measured at 16 s with the suite's earlier modules loading both cores (a new proxy actor
# and the killed replica's replacement starting at once). The bound only turns a hang into a failure.
RECOVERY_BOUND_SECONDS = 60.0


@dataclass
class Stream:
    """One client sending one body back to back: each answer's time, status (or error name), how long it
    took, and the ids of the requests answered 200."""

    body: dict[str, Any]
    answers: list[tuple[float, str, float]] = field(default_factory=list)  # (answered at, status, seconds)
    answered_ids: list[str] = field(default_factory=list)
    mismatched_ids: list[tuple[str, str]] = field(default_factory=list)  # (in the body, in the header)
    error: BaseException | None = None  # what ended the client's thread early, if anything did
    pause: float = 0.0  # seconds between requests: 0, back to back

    def run(self, base: str, timeout: float, stop: threading.Event, deadline: float) -> None:
        try:
            self._send(base, timeout, stop, deadline)
        except BaseException as error:  # reported by kill_under_streams: a thread's own raise would be lost
            self.error = error

    def _send(self, base: str, timeout: float, stop: threading.Event, deadline: float) -> None:
        with httpx.Client(base_url=base, timeout=timeout) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    response = client.post("/predict", json=self.body)
                    status = str(response.status_code)
                    if response.status_code == 200:
                        # The id the answer carries, once in its header: the one the log keys it by.
                        request_id = response.json()["request_id"]
                        if response.headers.get("x-request-id") != request_id:
                            self.mismatched_ids.append((request_id, str(response.headers.get("x-request-id"))))
                        self.answered_ids.append(request_id)
                except httpx.HTTPError as error:  # a refused connection or a timeout: counted, never a hang
                    status = type(error).__name__
                    time.sleep(0.05)  # a refused connection comes back at once: no busy loop
                now = time.monotonic()
                self.answers.append((now, status, now - sent))
                if self.pause:
                    time.sleep(self.pause)

    @property
    def statuses(self) -> Counter[str]:
        return Counter(status for _, status, _ in self.answers)

    def answering_for(self, seconds: float) -> bool:
        """Whether every answer of the last ``seconds`` (and there were some) was a 200."""
        since = time.monotonic() - seconds
        recent = [status for when, status, _ in list(self.answers) if when >= since]
        return bool(recent) and all(status == "200" for status in recent)

    def recovery(self, killed_at: float) -> float:
        """Seconds from the kill to the first 200 after the stream's last failure."""
        last_failure = max((when for when, status, _ in self.answers if status != "200"), default=killed_at)
        back = [when for when, status, _ in self.answers if status == "200" and when > last_failure]
        assert back, f"no 200 after the last failure: {self.statuses}"
        return back[0] - killed_at

    def slowest_failure(self) -> float:
        """The longest a request that failed was held (0 if none failed)."""
        return max((seconds for _, status, seconds in self.answers if status != "200"), default=0.0)


@contextmanager
def streaming(
    base: str, body: dict[str, Any], seconds: float, timeout: float = 10.0, pause: float = 0.0
) -> Iterator[Stream]:
    """One ``Stream`` from a thread for ``seconds``, ``pause`` between requests: on success it runs its whole
    course (what follows the fault done in the block is the point); a block that raises stops it at once."""
    stream, stop, end = Stream(body, pause=pause), threading.Event(), time.monotonic() + seconds
    worker = threading.Thread(target=stream.run, args=(base, timeout, stop, end), daemon=True)
    worker.start()
    try:
        yield stream
    except BaseException:
        stop.set()
        raise
    finally:
        worker.join(timeout=seconds + timeout + 10)
    assert stream.error is None, repr(stream.error)
    assert not stream.mismatched_ids, stream.mismatched_ids[:3]


def kill_under_streams(
    base: str,
    bodies: Sequence[dict[str, Any]],
    find_pid: Callable[[], int],
    timeout: float = 5.0,
    recovery_bound: float = RECOVERY_BOUND_SECONDS,
) -> tuple[list[Stream], float]:
    """SIGKILL one process while a client per body sends requests back to back, for ``WATCH_SECONDS`` and
    then until every stream has answered 200 for 2 s in a row (at most ``recovery_bound`` after the kill);
    returns the streams and the kill's time (``time.monotonic``)."""
    streams = [Stream(body) for body in bodies]
    stop = threading.Event()
    end = time.monotonic() + recovery_bound + WATCH_SECONDS + 5
    workers = [threading.Thread(target=s.run, args=(base, timeout, stop, end), daemon=True) for s in streams]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        pid = find_pid()
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        time.sleep(WATCH_SECONDS)
        deadline = killed_at + recovery_bound
        while time.monotonic() < deadline and not all(stream.answering_for(2.0) for stream in streams):
            time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=timeout + 10)
    for stream in streams:
        assert stream.error is None, repr(stream.error)
        assert not stream.mismatched_ids, stream.mismatched_ids[:3]
    return streams, killed_at


def logged_once(log: Path | str, request_ids: list[str]) -> None:
    """Every answered request is in the prediction log at ``log`` once, row 0 only (one record each), once
    the replicas' next commits have run: those of a killed replica included, adopted by a live one. (The
    answer's own row: a shadow variant's row for the same request, where shadowing is on, is another.)"""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    wanted = sorted(set(request_ids))
    assert len(wanted) == len(request_ids)  # the app gave each answer its own id
    assert wanted, "no answer to look up: the check would pass on an empty log"
    answers = pc.field("request_id").isin(wanted) & (pc.field("role") != "shadow")
    deadline, logged = time.monotonic() + RECOVERY_BOUND_SECONDS, Counter[tuple[str, int]]()
    while time.monotonic() < deadline:
        table = DeltaTable(str(log)).to_pyarrow_dataset()
        rows = table.to_table(columns=["request_id", "row"], filter=answers)
        logged = Counter(zip(rows["request_id"].to_pylist(), rows["row"].to_pylist(), strict=True))
        if len(logged) == len(wanted):
            break
        time.sleep(0.5)
    missing = sorted(set(wanted) - {request_id for request_id, _ in logged})
    duplicated = {key: count for key, count in logged.items() if count > 1}
    print(f"prediction log: {len(wanted)} answered, {len(missing)} missing, {len(duplicated)} duplicated")
    assert not missing and not duplicated, (missing[:5], list(duplicated.items())[:5], len(duplicated))
    assert {row for _, row in logged} == {0}
