"""How `.ci/run` splits the suite over two pytest-xdist workers (`-n 2 --dist loadscope`), one per core.

A worker runs whole files, so that each session fixture (the session's Ray and Spark, the lake, the shared
trainings) is built at most once per worker. The files that deploy Serve apps or start Ray clusters form
one scope, run in order on one worker: two Serve apps at once on two cores made proxies miss their
readiness checks (2026-12-06), and the fault tests must not find another app's processes. The other
worker takes the remaining files one at a time, the slowest first (a slow file started last would run on
alone); each unit and contract file goes to whichever worker is free.

pytest-xdist's own `--dist loadgroup` (an ``xdist_group`` mark) renames node ids in a way pytest 9.2 no
longer reads, hence a scheduler of our own through xdist's ``pytest_xdist_make_scheduler`` hook. It
overrides ``LoadScopeScheduling._split_scope``, a private method: the one place where xdist decides a
test's scope, and no public setting takes a mapping of our own (re-check it when pytest-xdist is upgraded).
"""

from __future__ import annotations

from typing import Any

import pytest

# One scope, run on one worker in this order.
SERVING_SCOPE = (
    "tests/serving/test_serve_app.py",
    "tests/serving/test_serve_faults.py",
    "tests/serving/test_experiment_end_to_end.py",
    "tests/serving/test_app_builder.py",
    "tests/monitoring/test_prometheus.py",
    "tests/tracking/test_mlflow_server.py",
    "tests/cluster/",
)
# The slowest of the other files (tests/_timing.py's table), started first.
SLOWEST_FIRST = (
    "tests/tuning/test_sweeps.py",
    "tests/test_cli_train.py",
    "tests/training/test_algorithms_end_to_end.py",
    "tests/test_api.py",
    "tests/runtime/test_runtime_session.py",
    "tests/export/test_parity_gate.py",
    "tests/evaluation/test_compare_versions.py",
    "tests/training/test_training_options.py",
)


def _rank(nodeid: str) -> tuple[int, int]:
    for group, prefixes in enumerate((SERVING_SCOPE, SLOWEST_FIRST)):
        for position, prefix in enumerate(prefixes):
            if nodeid.startswith(prefix):
                return group, position
    return 2, 0


def order(items: list[pytest.Item]) -> None:
    """The serving scope first, then the slowest files, then the rest (each file's own order kept)."""
    items.sort(key=lambda item: _rank(item.nodeid))


def scope_of(nodeid: str) -> str:
    return "serving" if nodeid.startswith(SERVING_SCOPE) else nodeid.split("::")[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadscope``: scopes as above, handed out in collection order (see ``order``)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ServingScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    config.option.loadscopereorder = False  # by the number of tests, not time: keep ``order``'s
    return ServingScopeScheduling(config, log)
