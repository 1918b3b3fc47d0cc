"""The Spark actor builds each feature variant's folds once, however many trials ask at the same time,
and a variant whose build failed fails every later trial at once with that error (not a rebuild each).

The actor fits the first variant in a thread while Tune starts its workers, so the first trials arrive
while it is building. A feature build that fails after the data checks passed is a fault we cannot
produce on demand with real data, so ``_build_folds`` is replaced by a stand-in that counts its calls
(and fails, where the test says so); the locking and caching under test are the real class's, without
Spark. The real path (threads, Spark, Tune) runs in tests/test_api.py's and test_sweeps.py's sweeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pipeline.tuning._trainer import SparkTrainer


def _trainer(build: Callable[[bool, bool], Any]) -> SparkTrainer:
    trainer = SparkTrainer.__new__(SparkTrainer)  # no __init__: no Spark
    trainer._folds = {}
    trainer._fold_failures = {}
    trainer._lock = threading.Lock()
    trainer._build_folds = build  # type: ignore[method-assign,assignment]
    return trainer


def test_trials_arriving_during_the_build_wait_for_it_and_share_its_folds() -> None:
    calls: list[tuple[bool, bool]] = []

    def build(non_negative: bool, center: bool) -> Any:
        calls.append((non_negative, center))
        time.sleep(0.3)  # long enough for every caller below to be waiting on the lock
        return [("fit", "validation")]

    trainer = _trainer(build)
    with ThreadPoolExecutor(max_workers=4) as pool:
        folds = list(pool.map(lambda _: trainer._cached_folds(False, False), range(4)))
    assert calls == [(False, False)]
    assert all(result is folds[0] for result in folds)
    trainer._cached_folds(True, False)  # another variant is built for itself
    assert calls == [(False, False), (True, False)]


def test_a_failed_build_fails_later_trials_with_the_same_error_without_rebuilding() -> None:
    calls: list[tuple[bool, bool]] = []

    def build(non_negative: bool, center: bool) -> Any:
        calls.append((non_negative, center))
        raise ValueError("features: column 'memo' has no tokens")

    trainer = _trainer(build)
    errors = []
    for _ in range(3):
        with pytest.raises(ValueError, match="column 'memo' has no tokens") as raised:
            trainer._cached_folds(False, True)
        errors.append(raised.value)
    assert calls == [(False, True)]
    assert errors[0] is errors[1] is errors[2]
