"""Where the suite's time goes, by kind: a pytest plugin (registered by tests/conftest.py).

Each test file's time (its tests' setup, call and teardown, as ``--durations`` counts them) is split into
what the main thread spent blocked in:

- ``engines``: starting Ray and Spark in this process (``Runtime``), a Ray head or worker node, an app
  deployed on Serve (``serving.deploy``, ``serve.run``);
- ``training``: fitting models in this process (``pipeline.training.train`` and what calls it);
- ``cli``: a ``python -m pipeline`` process run to its end (``tests.conftest.run_cli``), of which
  ``cli engines`` is what those processes printed as their own Ray and Spark start-ups;
- ``waiting``: a test's own ``time.sleep`` on the main thread (polls, and what a fault test lets happen);
- ``rest``: everything else: the work the tests assert, and processes a test drives itself (Popen).

The innermost kind counts: training inside a fixture's deploy is training. The table is printed at the
end of the run (CI's output keeps it; under pytest-xdist the controller sums its workers' times);
``PIPELINE_TEST_TIMINGS=FILE`` also writes it as JSON.
``install`` reaches into private modules on purpose: a function is wrapped where it is defined and where
the package re-exports it, so that every caller's binding is the counted one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, SupportsIndex

import pytest

KINDS = ("engines", "training", "cli", "waiting")
_CLI_ENGINE_LINE = re.compile(r"\] Starting (?:Ray|Spark in Ray) \(.*\): done in ([0-9.]+)s")


class _Clock:
    """Time of the main thread by (file, kind); the innermost kind of a nested call counts."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.file = "(outside tests)"
        self._stack: list[list[Any]] = []  # [kind, started] of the calls under way

    @contextlib.contextmanager
    def kind(self, kind: str) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        now = time.monotonic()
        if self._stack:  # the enclosing kind pauses while this one runs
            outer = self._stack[-1]
            self.seconds[self.file][outer[0]] += now - outer[1]
        self._stack.append([kind, now])
        try:
            yield
        finally:
            now = time.monotonic()
            kind_, started = self._stack.pop()
            self.seconds[self.file][kind_] += now - started
            if self._stack:
                self._stack[-1][1] = now

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[self.file][kind] += seconds


CLOCK = _Clock()


def timed(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator counting a function's time as ``kind``."""

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def counted(*args: Any, **kwargs: Any) -> Any:
            with CLOCK.kind(kind):
                return function(*args, **kwargs)

        return counted

    return wrap


def count_cli_engines(stderr: str) -> None:
    """Add what a finished CLI process printed as its own Ray and Spark start-ups."""
    CLOCK.add("cli engines", sum(float(seconds) for seconds in _CLI_ENGINE_LINE.findall(stderr)))


def _patch(module: Any, name: str, kind: str) -> None:
    setattr(module, name, timed(kind)(getattr(module, name)))


def install() -> None:
    """Wrap the engines' and training's entry points (before the test modules import them)."""
    from ray import serve

    import pipeline.jobs
    import pipeline.runtime
    import pipeline.runtime._detached
    import pipeline.runtime._session
    import pipeline.training
    import pipeline.training._train
    import serving
    import serving._deploy

    pipeline.runtime._session.Runtime.__enter__ = timed("engines")(  # type: ignore[method-assign]
        pipeline.runtime._session.Runtime.__enter__
    )
    for module in (pipeline.runtime, pipeline.runtime._detached):
        _patch(module, "start_detached_head", "engines")
    for module in (serving, serving._deploy):
        _patch(module, "deploy", "engines")
    _patch(serve, "run", "engines")
    for module in (pipeline.training, pipeline.training._train):
        _patch(module, "train", "training")
    _patch(pipeline.jobs, "train_and_register", "training")
    sleep = time.sleep
    tests_folder = os.path.dirname(os.path.abspath(__file__))

    def counted_sleep(seconds: float | SupportsIndex) -> None:
        # Only a test's own sleeps: Ray's and Serve's polls while they start count as their engines.
        if sys._getframe(1).f_code.co_filename.startswith(tests_folder):
            with CLOCK.kind("waiting"):
                sleep(seconds)
        else:
            sleep(seconds)

    time.sleep = counted_sleep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    CLOCK.file = item.nodeid.split("::")[0]
    with CLOCK.kind("rest"):
        yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a pytest-xdist worker: hand this worker's times to the controller, which prints the table."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["pipeline_timings"] = json.dumps(CLOCK.seconds)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """In the pytest-xdist controller: add a finished worker's times to this process's."""
    for file, kinds in json.loads(getattr(node, "workeroutput", {}).get("pipeline_timings", "{}")).items():
        for kind, seconds in kinds.items():
            CLOCK.seconds[file][kind] += seconds


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if hasattr(terminalreporter.config, "workeroutput"):
        return  # a worker: its times went to the controller
    rows = {file: dict(kinds) for file, kinds in CLOCK.seconds.items() if sum(kinds.values()) >= 1.0}
    if not rows:
        return
    columns = ("total", *KINDS, "rest", "cli engines")
    for kinds in rows.values():
        kinds["total"] = sum(kinds.get(kind, 0.0) for kind in (*KINDS, "rest"))
    totals = {column: sum(kinds.get(column, 0.0) for kinds in rows.values()) for column in columns}
    write = terminalreporter.write_line
    write("")
    write("where the time went, by file and kind (seconds; see tests/_timing.py)")
    write(f"{'file':<52}" + "".join(f"{column:>12}" for column in columns))
    for file, kinds in sorted(rows.items(), key=lambda item: -item[1]["total"]):
        write(f"{file:<52}" + "".join(f"{kinds.get(column, 0.0):12.1f}" for column in columns))
    write(f"{'all files':<52}" + "".join(f"{totals[column]:12.1f}" for column in columns))
    target = os.environ.get("PIPELINE_TEST_TIMINGS")
    if target:
        with open(target, "w") as out:
            json.dump({"files": rows, "totals": totals}, out, indent=1, sort_keys=True)
