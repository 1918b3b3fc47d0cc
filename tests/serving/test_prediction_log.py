"""The prediction log's buffer and commits, on real Delta tables (delta-rs), without Serve."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import orjson
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
)


def _answered(request_id: str, records: list[dict[str, object]], route: str = "predict",
              sticky: str | None = None) -> AnsweredRequest:  # fmt: skip
    outputs = [{"prediction": float(i), "probability": [0.25, 0.75]} for i in range(len(records))]
    payload: dict[str, object] = {"instances": records}
    if route == "recommend":
        payload = {"users": [record["user"] for record in records], "k": 2}
        outputs = [{"user": record["user"], "items": [[7, 0.5]]} for record in records]
    return AnsweredRequest(request_id, 1_764_547_200.25, route, "champion", "routed", "demo", "3", 0, "onnx",
                           orjson.dumps(payload), orjson.dumps(outputs), 0.002, sticky, len(records))  # fmt: skip


def test_one_row_per_record_with_its_input_output_and_lineage() -> None:
    table = log_table([
        _answered("r1", [{"amount": 1.5, "city": "a"}, {"amount": None, "city": "b"}], sticky="user-9"),
        _answered("r2", [{"user": 4}, {"user": 5}], route="recommend"),
    ])  # fmt: skip
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


def test_commits_append_every_buffered_row_once(tmp_path: Path) -> None:
    path = tmp_path / "prediction_log"
    create_log_table(path)
    create_log_table(path)  # a second deploy finds it there: nothing changes
    assert DeltaTable(str(path)).version() == 0
    log = PredictionLog(str(path), max_buffer_rows=100)
    assert log.offer(_answered("a", [{"x": 1}, {"x": 2}])) and log.offer(_answered("b", [{"x": 3}]))
    assert log.commit() == 3 and log.commit() == 0  # nothing buffered: no empty commit
    assert log.offer(_answered("c", [{"x": 4}]))
    assert log.commit(final=True) == 1
    table = DeltaTable(str(path))
    assert table.version() == 2 and table.metadata().partition_columns == ["date"]
    ids = sorted((r["request_id"], r["row"]) for r in table.to_pyarrow_table().to_pylist())
    assert ids == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    assert log.take_counts() == LogCounts(written=4) and log.take_counts() == LogCounts()


def test_a_full_buffer_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "log"), max_buffer_rows=3)
    assert log.offer(_answered("a", [{"x": 1}, {"x": 2}]))
    started = time.perf_counter()
    assert not log.offer(_answered("b", [{"x": 3}, {"x": 4}]))  # 2 + 2 > 3: dropped whole
    assert time.perf_counter() - started < 0.05
    assert log.offer(_answered("c", [{"x": 5}])) and log.pending_rows == 3
    assert log.take_counts() == LogCounts(dropped=2)


def test_a_failed_commit_keeps_the_rows_for_the_next_one_and_counts_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the table's folder would be")  # a real failure: delta-rs cannot write
    log = PredictionLog(str(blocker / "log"), max_buffer_rows=10)
    log.offer(_answered("a", [{"x": 1}]))
    assert log.commit() == 0 and log.pending_rows == 1
    log.offer(_answered("b", [{"x": 2}]))
    assert log.commit(final=True) == 0 and log.pending_rows == 0  # going away: lost, and counted so
    assert log.take_counts() == LogCounts(dropped=2, failed_writes=2)


def test_metrics_text_reports_the_log() -> None:
    table = MetricsTable()
    table.add([], {"written": 5, "dropped": 2, "failed_writes": 1})
    table.add([], {"written": 1})
    text = MetricsTable.from_json(table.to_json()).render()
    assert 'pipeline_prediction_log_rows_total{outcome="written"} 6' in text
    assert 'pipeline_prediction_log_rows_total{outcome="dropped"} 2' in text
    assert "pipeline_prediction_log_failed_writes_total 1" in text
