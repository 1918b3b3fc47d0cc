"""The prediction log's write-ahead files and commits, on real Delta tables (delta-rs), without Serve;
replicas killed with SIGKILL are real processes."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from deltalake import DeltaTable

from serving._metrics import MetricsTable
from serving._prediction_log import (
    LOG_SCHEMA,
    AnsweredRequest,
    LogCounts,
    PredictionLog,
    create_log_table,
    log_table,
    sticky_key_hash,
    write_ahead_folder,
)
from serving._wal import WAL_FOLDER
from tests.conftest import PROJECT_ROOT


def _answered(
    request_id: str, records: list[dict[str, object]], route: str = "predict", sticky: str | None = None
) -> AnsweredRequest:
    outputs = [{"prediction": float(i), "probability": [0.25, 0.75]} for i in range(len(records))]
    payload: dict[str, object] = {"instances": records}
    if route == "recommend":
        payload = {"users": [record["user"] for record in records], "k": 2}
        outputs = [{"user": record["user"], "items": [[7, 0.5]]} for record in records]
    return AnsweredRequest(
        request_id,
        1_764_547_200.25,
        route,
        "champion",
        "routed",
        "demo",
        "3",
        0,
        "onnx",
        orjson.dumps(payload),
        orjson.dumps(outputs),
        0.002,
        sticky,
        len(records),
    )


def test_one_row_per_record_with_its_input_output_and_lineage() -> None:
    table = log_table(
        [
            _answered("r1", [{"amount": 1.5, "city": "a"}, {"amount": None, "city": "b"}], sticky="user-9"),
            _answered("r2", [{"user": 4}, {"user": 5}], route="recommend"),
        ]
    )
    assert table.schema == LOG_SCHEMA
    rows = table.to_pylist()
    assert [(r["request_id"], r["row"]) for r in rows] == [("r1", 0), ("r1", 1), ("r2", 0), ("r2", 1)]
    assert json.loads(rows[1]["input"]) == {"amount": None, "city": "b"}
    assert json.loads(rows[1]["output"]) == {"prediction": 1.0, "probability": [0.25, 0.75]}
    assert json.loads(rows[3]["input"]) == {"user": 5, "k": 2} and rows[3]["route"] == "recommend"
    assert rows[0]["sticky_key_hash"] == sticky_key_hash("user-9") and len(rows[0]["sticky_key_hash"]) == 16
    assert rows[2]["sticky_key_hash"] is None  # no sticky key: no hash
    assert rows[0]["date"] == "2025-12-01" and rows[0]["latency_ms"] == 2.0
    assert {r["trained_on_delta_version"] for r in rows} == {0}
    unreadable = dataclasses.replace(_answered("r3", [{"x": 1}]), body=b"{not json")
    (row,) = log_table([unreadable]).to_pylist()
    assert row["input"] == "null" and json.loads(row["output"])["prediction"] == 0.0  # logged, not stuck


def _logged_ids(path: Path) -> list[tuple[str, int]]:
    return sorted((r["request_id"], r["row"]) for r in DeltaTable(str(path)).to_pyarrow_table().to_pylist())


def test_commits_append_every_written_row_once(tmp_path: Path) -> None:
    path = tmp_path / "prediction_log"
    create_log_table(path)
    create_log_table(path)  # a second deploy finds it there: nothing changes
    assert DeltaTable(str(path)).version() == 0
    log = PredictionLog(str(path), max_buffer_rows=100)
    assert log.offer(_answered("a", [{"x": 1}, {"x": 2}])) and log.offer(_answered("b", [{"x": 3}]))
    assert log.pending_rows == 3 and len(list((path / WAL_FOLDER).glob("*/*.wal"))) == 1  # written ahead
    assert log.commit() == 3 and log.commit() == 0  # nothing written since: no empty commit
    assert log.offer(_answered("c", [{"x": 4}]))
    assert log.close() == 1
    table = DeltaTable(str(path))
    assert table.version() == 2 and table.metadata().partition_columns == ["date"]
    assert _logged_ids(path) == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    assert log.take_counts() == LogCounts(written=4) and log.take_counts() == LogCounts()
    assert list((path / WAL_FOLDER).iterdir()) == []  # a graceful stop leaves no file behind


def test_live_replicas_commit_only_their_own_rows(tmp_path: Path) -> None:
    path = tmp_path / "prediction_log"
    create_log_table(path)
    first, second = PredictionLog(str(path), 100), PredictionLog(str(path), 100)
    first.offer(_answered("first", [{"x": 1}]))
    second.offer(_answered("second", [{"x": 2}, {"x": 3}]))
    assert second.commit() == 2 and first.pending_rows == 1  # the other replica is alive: its file is its own
    assert first.commit() == 1
    assert _logged_ids(path) == [("first", 0), ("second", 0), ("second", 1)]


def test_a_full_backlog_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "log"), max_buffer_rows=3)
    assert log.offer(_answered("a", [{"x": 1}, {"x": 2}]))
    started = time.perf_counter()
    assert not log.offer(_answered("b", [{"x": 3}, {"x": 4}]))  # 2 + 2 > 3: dropped whole
    assert time.perf_counter() - started < 0.05
    assert log.offer(_answered("c", [{"x": 5}])) and log.pending_rows == 3
    assert log.take_counts() == LogCounts(dropped=2)


def test_a_failed_commit_keeps_the_rows_for_the_next_one_and_counts_it(tmp_path: Path) -> None:
    path = tmp_path / "log"  # a folder, but no table yet: a real failure, delta-rs finds nothing to append to
    log = PredictionLog(str(path), max_buffer_rows=10)
    log.offer(_answered("a", [{"x": 1}]))
    assert log.commit() == 0 and log.pending_rows == 1
    create_log_table(path)
    log.offer(_answered("b", [{"x": 2}]))
    assert log.commit() == 2 and log.pending_rows == 0
    assert _logged_ids(path) == [("a", 0), ("b", 0)]
    assert log.take_counts() == LogCounts(written=2, failed_writes=1)


# A replica's life up to a SIGKILL, in a process of its own (the kernel must release its lock as for a
# real replica). argv: the log's path, then what to do before dying: "committed" (a commit that went
# through, its files put back as they were before it: a death between the Delta commit and the files'
# removal, which no signal can be timed to hit, so the files are restored by hand) or "torn" (an entry cut
# short mid-write).
_REPLICA = """
import os, shutil, signal, sys
from pathlib import Path
from tests.serving.test_prediction_log import _answered
from serving._prediction_log import PredictionLog

path, how = sys.argv[1], sys.argv[2]
log = PredictionLog(path, max_buffer_rows=100)
log.offer(_answered("kept-1", [{"x": 1}, {"x": 2}]))
if how == "committed":
    folder = log._wal.folder
    before = {p: p.read_bytes() for p in folder.glob("*.wal")}
    assert log.commit() == 2
    for p, data in before.items():
        p.write_bytes(data)
log.offer(_answered("kept-2", [{"x": 3}]))
if how == "torn":
    frame = _answered("torn", [{"x": 4}]).frame()
    log._wal.append(frame[: len(frame) // 2])
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("how", ["committed", "torn"])
def test_rows_a_killed_replica_wrote_ahead_are_committed_once_by_another(tmp_path: Path, how: str) -> None:
    path = tmp_path / "prediction_log"
    create_log_table(path)
    died = subprocess.run(
        [sys.executable, "-c", _REPLICA, str(path), how],
        cwd=PROJECT_ROOT,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert len(list((path / WAL_FOLDER).iterdir())) == 1  # its folder, left behind
    survivor = PredictionLog(str(path), max_buffer_rows=100)
    survivor.offer(_answered("own", [{"x": 5}]))
    written = survivor.commit()
    assert _logged_ids(path) == [("kept-1", 0), ("kept-1", 1), ("kept-2", 0), ("own", 0)]  # each once
    assert written == (2 if how == "committed" else 4)  # kept-1 was committed before the death, or not
    assert survivor.commit() == 0
    assert [p.name for p in (path / WAL_FOLDER).iterdir()] == [survivor._wal.owner]  # type: ignore[union-attr]


def test_metrics_text_reports_the_log() -> None:
    table = MetricsTable()
    table.add([], {"written": 5, "dropped": 2, "failed_writes": 1})
    table.add([], {"written": 1})
    text = MetricsTable.from_json(table.to_json()).render()
    assert 'pipeline_prediction_log_rows_total{outcome="written"} 6' in text
    assert 'pipeline_prediction_log_rows_total{outcome="dropped"} 2' in text
    assert "pipeline_prediction_log_failed_writes_total 1" in text


def test_a_log_in_a_bucket_writes_ahead_to_a_local_folder_of_its_own(tmp_path: Path) -> None:
    local = tmp_path / "prediction_log"
    assert write_ahead_folder(local, tmp_path) == local / WAL_FOLDER  # replicas sharing the disk adopt
    first = write_ahead_folder("s3://lake/serving/prediction_log", tmp_path)
    second = write_ahead_folder("s3://lake/other/prediction_log", tmp_path)
    assert first.parent == tmp_path / ".pipeline" / "prediction_log_wal" and first != second  # never shared
    with pytest.raises(ValueError, match="needs a local write-ahead folder"):
        PredictionLog("s3://lake/serving/prediction_log", 100)
