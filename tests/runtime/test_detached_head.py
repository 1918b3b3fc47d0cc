"""A detached head whose ``ray start`` gives up is started again, and one that keeps giving up is one error.

On a slow machine ``ray start --head`` gives up on its own raylet after Ray's fixed 30 s ("The current
node timed out during startup"; seen 2026-12-04, the real cluster fixture's head log shows the retry).
That fault cannot be produced on demand, so here ``ray`` is a stand-in script beside a stand-in
interpreter path: it gives up the first N times, then prints what ``ray start`` prints and blocks. The
retry, the log reading and the stop are the real functions'. The real head starts in tests/cluster.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import RayConfig
from pipeline.runtime import ClusterError, start_detached_head, stop_detached_head

GIVES_UP = "Exception: The current node timed out during startup."


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The head's start exports Java and ``PYSPARK_PYTHON`` (here the stand-in interpreter's path) into
    this process's environment, which the session's Spark and later tests' CLI processes inherit."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _stand_in_ray(folder: Path, failures: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``ray`` that fails its first ``failures`` starts (counted in a file), then starts and blocks."""
    counter = folder / "starts"
    script = folder / "ray"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{counter}" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "{counter}"\n'
        f'if [ "$n" -le {failures} ]; then echo "{GIVES_UP}"; exit 1; fi\n'
        'echo "Ray runtime started."\n'
        "exec sleep 60\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "executable", str(folder / "python"))  # the head runs the `ray` beside it
    return counter


def test_a_head_that_gives_up_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _stand_in_ray(tmp_path, failures=2, monkeypatch=monkeypatch)
    log = tmp_path / "head.log"
    head = start_detached_head(RayConfig(dashboard=False), log, high_throughput=False, timeout=30)
    try:
        assert counter.read_text().strip() == "3"
        text = log.read_text()
        assert text.count(GIVES_UP) == 2 and "ray start gave up (attempt 2 of 3)" in text
    finally:
        assert stop_detached_head(head.pid, timeout=10)


def test_a_head_that_always_gives_up_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _stand_in_ray(tmp_path, failures=5, monkeypatch=monkeypatch)
    log = tmp_path / "head.log"
    with pytest.raises(ClusterError, match=r"^ray start exited before the head was up, 3 times; see .*head\.log$"):
        start_detached_head(RayConfig(dashboard=False), log, high_throughput=False, timeout=30)
    assert counter.read_text().strip() == "3"


def test_the_stand_in_leaves_the_environment_as_it_found_it() -> None:
    # Runs after the two above (file order): their start set PYSPARK_PYTHON to the stand-in's path.
    assert os.environ.get("PYSPARK_PYTHON", sys.executable) == sys.executable
