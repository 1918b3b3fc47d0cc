"""Feedback bodies and the feedback table, on real Delta tables (delta-rs) and a real prediction log
written by the serving app's own writer, without Serve."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from deltalake import DeltaTable

from pipeline.storage import StorageError, delta_storage_options
from serving._experiment import _latest_outcomes
from serving._feedback import (
    FEEDBACK_SCHEMA,
    Outcome,
    create_feedback_table,
    feedback_body_schema,
    feedback_outcomes,
    record_feedback,
    unknown_outcomes,
)
from serving._prediction_log import (
    AnsweredRequest,
    PredictionLog,
    create_log_table,
    is_delta_table,
    logged_request,
)
from serving._requests import Refused

MAX_ROWS = 100


def _logged(
    path: Path | str, requests: dict[str, int], at: float | None = None, write_ahead: Path | None = None
) -> None:
    log = PredictionLog(str(path), max_buffer_rows=1000, write_ahead=write_ahead)
    create_log_table(path)
    for request_id, rows in requests.items():
        outputs = orjson.dumps([{"prediction": 1.0}] * rows)
        body = orjson.dumps({"instances": [{"x": index} for index in range(rows)]})
        log.offer(
            AnsweredRequest(
                request_id,
                at or time.time(),
                "predict",
                "champion",
                "routed",
                "m",
                "1",
                0,
                "onnx",
                body,
                outputs,
                0.001,
                None,
                rows,
            )
        )
    assert log.commit() == sum(requests.values())


def _refused(raw: Any) -> tuple[int, str, str]:
    with pytest.raises(Refused) as caught:
        feedback_outcomes(raw, MAX_ROWS)
    detail = caught.value.body["detail"]
    return caught.value.status, detail["field"], detail["reason"]


def test_one_outcome_or_many_are_read_and_the_row_defaults_to_0() -> None:
    assert feedback_outcomes({"request_id": "r1", "outcome": 1}, MAX_ROWS) == [Outcome("r1", 0, 1.0)]
    many = {"outcomes": [{"request_id": "r1", "row": 2.0, "outcome": 0.5}, {"request_id": "r2", "outcome": 0}]}
    assert feedback_outcomes(many, MAX_ROWS) == [Outcome("r1", 2, 0.5), Outcome("r2", 0, 0.0)]


def test_bad_outcomes_are_refused_by_field_value_and_rule() -> None:
    batch = {"outcomes": [{"request_id": "r1", "outcome": 1}, {"request_id": "r2", "outcome": "yes"}]}
    assert _refused(batch) == (422, "outcomes[1].outcome", 'expected a finite number, got "yes"')
    assert _refused({"request_id": "r1", "outcome": True}) == (
        422,
        "outcome",
        "expected a finite number, got true",
    )
    assert _refused({"request_id": "r1", "outcome": float("nan")})[1] == "outcome"
    assert _refused({"request_id": "", "outcome": 1})[:2] == (422, "request_id")
    assert _refused({"request_id": "r1", "row": "2", "outcome": 1}) == (
        422,
        "row",
        f'expected an integer from 0 to {MAX_ROWS - 1}, got "2"',
    )
    assert _refused({"request_id": "r1", "outcome": 1, "label": 1})[:2] == (422, "label")
    assert _refused({"outcomes": []})[:2] == (422, "outcomes")
    assert _refused({"outcomes": [{"request_id": "r", "outcome": 1}] * (MAX_ROWS + 1)})[:2] == (413, "outcomes")
    assert _refused([1, 2])[:2] == (422, "body")


def test_the_documented_schema_takes_exactly_what_the_check_takes() -> None:
    schema = feedback_body_schema(MAX_ROWS)
    bodies = [
        {"request_id": "r1", "outcome": 1},
        {"request_id": "r1", "row": 3, "outcome": -2.5},
        {"outcomes": [{"request_id": "r1", "outcome": 1}]},
        {"request_id": "r1", "outcome": "1"},
        {"request_id": "r1", "row": -1, "outcome": 1},
        {"request_id": "r1", "row": MAX_ROWS, "outcome": 1},
        {"outcomes": []},
        {"outcomes": [{"request_id": "r1", "outcome": 1}], "x": 1},
        {"request_id": "r1"},
        {"request_id": "x" * 129, "outcome": 1},
        {"request_id": 7, "outcome": 1},
        "text",
    ]
    for body in bodies:
        documented = jsonschema.Draft202012Validator(schema).is_valid(body)
        try:
            feedback_outcomes(json.loads(json.dumps(body)), MAX_ROWS)
            taken = True
        except Refused:
            taken = False
        assert taken == documented, body


def test_only_outcomes_of_logged_predictions_are_written_in_one_commit(tmp_path: Path) -> None:
    log, feedback = tmp_path / "prediction_log", tmp_path / "feedback"
    _logged(log, {"a": 2, "b": 1})
    create_feedback_table(feedback)
    outcomes = [
        Outcome("a", 0, 1.0),
        Outcome("a", 1, 0.0),
        Outcome("a", 2, 1.0),
        Outcome("b", 0, 1.0),
        Outcome("zzz", 0, 1.0),
    ]
    report = record_feedback(log, feedback, outcomes, lookback_days=30, source="api")
    assert report.accepted == 3 and report.unknown == [Outcome("a", 2, 1.0), Outcome("zzz", 0, 1.0)]
    assert report.as_json() == {
        "accepted": 3,
        "unknown": 2,
        "unknown_outcomes": [{"request_id": "a", "row": 2}, {"request_id": "zzz", "row": 0}],
    }
    table = DeltaTable(str(feedback))
    assert table.version() == 1  # created, then one commit
    written = table.to_pyarrow_table()
    assert written.schema == FEEDBACK_SCHEMA
    found = zip(
        written["request_id"].to_pylist(), written["row"].to_pylist(), written["outcome"].to_pylist(), strict=True
    )
    assert sorted(found) == [("a", 0, 1.0), ("a", 1, 0.0), ("b", 0, 1.0)]
    assert set(written["source"].to_pylist()) == {"api"}
    nothing = record_feedback(log, feedback, [Outcome("zzz", 0, 1.0)], lookback_days=30, source="api")
    assert nothing.accepted == 0 and DeltaTable(str(feedback)).version() == 1  # no empty commit


def test_predictions_older_than_the_lookback_are_unknown(tmp_path: Path) -> None:
    log = tmp_path / "prediction_log"
    old = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC).timestamp()
    _logged(log, {"old": 1}, at=old)
    _logged(log, {"new": 1}, at=dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC).timestamp())
    outcomes = [Outcome("old", 0, 1.0), Outcome("new", 0, 1.0)]
    today = dt.date(2026, 12, 1)
    assert unknown_outcomes(log, outcomes, lookback_days=30, today=today) == [Outcome("old", 0, 1.0)]
    assert unknown_outcomes(log, outcomes, lookback_days=90, today=today) == []


def test_the_log_and_the_feedback_in_a_bucket(tmp_path: Path, bucket: str) -> None:
    """Both tables in a bucket (moto's S3 API): the log's rows are written ahead to a local folder and
    committed to the bucket; outcomes are checked against the log there and appended beside it."""
    log, feedback = f"s3://{bucket}/serving/prediction_log", f"s3://{bucket}/serving/feedback"
    assert not is_delta_table(log)
    _logged(log, {"a": 2, "b": 1}, write_ahead=tmp_path / "wal")
    assert is_delta_table(log) and [p for p in (tmp_path / "wal").rglob("*.wal")] == []  # committed, let go
    assert [row["row"] for row in logged_request(log, "a")] == [0, 1]
    create_feedback_table(feedback)
    outcomes = [Outcome("a", 0, 1.0), Outcome("b", 0, 0.0), Outcome("zzz", 0, 1.0)]
    report = record_feedback(log, feedback, outcomes, lookback_days=30, source="api")
    assert report.accepted == 2 and report.unknown == [Outcome("zzz", 0, 1.0)]
    assert _latest_outcomes(feedback) == {("a", 0): 1.0, ("b", 0): 0.0}
    table = DeltaTable(feedback, storage_options=delta_storage_options(feedback))
    assert table.version() == 1 and table.to_pyarrow_table().num_rows == 2
    assert not list(tmp_path.glob("**/_delta_log"))  # nothing of either table on the local disk


def test_a_log_in_a_missing_bucket_is_one_line_before_anything_is_written(s3_server: str) -> None:
    with pytest.raises(StorageError) as caught:
        create_log_table("s3://no-such-bucket-here/prediction_log")
    assert str(caught.value).startswith(
        "serving.prediction_log.path = 's3://no-such-bucket-here/prediction_log': no such bucket"
    ), caught.value
    with pytest.raises(StorageError, match=r"^serving.feedback.path = .*: no such bucket"):
        create_feedback_table("s3://no-such-bucket-here/feedback")
