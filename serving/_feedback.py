"""Feedback: the true outcomes of logged predictions, by request id and row, appended to a Delta table by
delta-rs (no Spark in serving). ``POST /feedback`` and ``python -m pipeline feedback`` both end here.

An outcome is only kept for a prediction the log holds (looked up in the last ``lookback_days`` of its
date partitions); the others are counted and reported as unknown, never written. An outcome is a number
in the prediction's own units: the label index a classifier answers with, a regressor's value.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field

from pipeline.storage import delta_storage_options, table_location
from serving._requests import Refused

FEEDBACK_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),  # the record's index in its request
        pa.field("outcome", pa.float64(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),  # when the outcome arrived
        pa.field("source", pa.string(), nullable=False),  # api, or the file or table it was loaded from
    ]
)
MAX_REQUEST_ID = 128
_SHOWN_UNKNOWN = 20  # unknown outcomes listed in an answer (all are counted)


@dataclass(frozen=True)
class Outcome:
    """The true outcome of one logged prediction."""

    request_id: str
    row: int
    outcome: float


class OutcomeKey(BaseModel):
    request_id: str
    row: int


class FeedbackAccepted(BaseModel):
    """What ``POST /feedback`` did: outcomes written, and those whose prediction is not in the log."""

    accepted: int
    unknown: int = Field(description="outcomes for a request id (and row) the prediction log does not hold")
    unknown_outcomes: list[OutcomeKey] = Field(description=f"the first {_SHOWN_UNKNOWN} unknown ones")


def feedback_body_schema(max_rows: int) -> dict[str, Any]:
    """The JSON Schema ``feedback_outcomes`` takes: one outcome, or a list of them."""
    one = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID},
            "row": {"type": "integer", "minimum": 0, "maximum": max_rows - 1, "default": 0},
            "outcome": {"type": "number", "description": "label index, or a regressor's value"},
        },
        "required": ["request_id", "outcome"],
        "additionalProperties": False,
    }
    many = {
        "type": "object",
        "properties": {"outcomes": {"type": "array", "items": one, "minItems": 1, "maxItems": max_rows}},
        "required": ["outcomes"],
        "additionalProperties": False,
    }
    return {"oneOf": [one, many]}


def _outcome(raw: Any, where: str, max_rows: int) -> Outcome:
    # By hand, to take exactly what the schema above says (JSON's 3.0 is the integer 3; a string is not).
    if not isinstance(raw, dict):
        raise Refused(422, where or "body", f"expected an object, got {json.dumps(raw)[:80]}")
    prefix = f"{where}." if where else ""
    for key in raw:
        if key not in ("request_id", "row", "outcome"):
            raise Refused(422, f"{prefix}{key}", "unknown field; an outcome takes request_id, row and outcome")
    request_id = raw.get("request_id")
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= MAX_REQUEST_ID:
        reason = f"expected a request id (1 to {MAX_REQUEST_ID} characters), got {json.dumps(request_id)[:80]}"
        raise Refused(422, f"{prefix}request_id", reason)
    row = raw.get("row", 0)
    if isinstance(row, float) and row.is_integer():
        row = int(row)
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < max_rows:
        raise Refused(
            422, f"{prefix}row", f"expected an integer from 0 to {max_rows - 1}, got {json.dumps(row)[:80]}"
        )
    value = raw.get("outcome")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused(422, f"{prefix}outcome", f"expected a finite number, got {json.dumps(value)[:80]}")
    return Outcome(request_id, row, float(value))


def feedback_outcomes(raw: Any, max_rows: int) -> list[Outcome]:
    """The outcomes of a ``POST /feedback`` body; Refused (naming the field) for anything else."""
    if isinstance(raw, dict) and "outcomes" in raw:
        if set(raw) != {"outcomes"}:
            extra = sorted(set(raw) - {"outcomes"})[0]
            raise Refused(422, extra, "unknown field; give 'outcomes' (a list) or one outcome's fields")
        items = raw["outcomes"]
        if not isinstance(items, list) or not items:
            raise Refused(422, "outcomes", f"expected a non-empty list, got {json.dumps(items)[:80]}")
        if len(items) > max_rows:
            raise Refused(413, "outcomes", f"{len(items)} outcomes; at most {max_rows} per request")
        return [_outcome(item, f"outcomes[{index}]", max_rows) for index, item in enumerate(items)]
    return [_outcome(raw, "", max_rows)]


def create_feedback_table(path: str | Path) -> None:
    """The empty feedback table, unless one is there."""
    from deltalake import DeltaTable

    storage = table_location(path, "serving.feedback.path")
    DeltaTable.create(str(path), FEEDBACK_SCHEMA, mode="ignore", name="feedback", storage_options=storage)


def unknown_outcomes(
    log_path: str | Path, outcomes: Sequence[Outcome], lookback_days: int, today: dt.date | None = None
) -> list[Outcome]:
    """The outcomes whose (request id, row) the prediction log does not hold in its last ``lookback_days``
    days. Reads only the log's request_id and row columns of those days' partitions."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    if not outcomes:
        return []
    since = ((today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=lookback_days)).isoformat()
    ids = pa.array(sorted({outcome.request_id for outcome in outcomes}), pa.string())
    wanted = (pc.field("date") >= since) & pc.field("request_id").isin(ids)
    log = DeltaTable(str(log_path), storage_options=delta_storage_options(log_path))
    logged = log.to_pyarrow_dataset().to_table(columns=["request_id", "row"], filter=wanted)
    known = set(zip(logged.column("request_id").to_pylist(), logged.column("row").to_pylist(), strict=True))
    return [outcome for outcome in outcomes if (outcome.request_id, outcome.row) not in known]


def append_feedback(path: str | Path, outcomes: Iterable[Outcome], source: str) -> int:
    """One Delta commit of ``outcomes`` (none: no commit); the rows written."""
    from deltalake import write_deltalake

    rows = list(outcomes)
    if not rows:
        return 0
    now = dt.datetime.now(dt.UTC)
    table = pa.Table.from_pydict(
        {
            "request_id": [row.request_id for row in rows],
            "row": [row.row for row in rows],
            "outcome": [row.outcome for row in rows],
            "time": [now] * len(rows),
            "source": [source] * len(rows),
        },
        schema=FEEDBACK_SCHEMA,
    )
    write_deltalake(str(path), table, mode="append", storage_options=delta_storage_options(path))
    return len(rows)


@dataclass(frozen=True)
class FeedbackReport:
    """What one load of outcomes did."""

    accepted: int
    unknown: list[Outcome]

    def as_json(self) -> dict[str, Any]:
        shown = [{"request_id": item.request_id, "row": item.row} for item in self.unknown[:_SHOWN_UNKNOWN]]
        return {"accepted": self.accepted, "unknown": len(self.unknown), "unknown_outcomes": shown}


def write_known(
    feedback_path: str | Path, outcomes: Sequence[Outcome], unknown: Sequence[Outcome], source: str
) -> FeedbackReport:
    """Write ``outcomes`` but the ``unknown`` ones (one commit), and report both."""
    missing = {(item.request_id, item.row) for item in unknown}
    accepted = append_feedback(
        feedback_path, (item for item in outcomes if (item.request_id, item.row) not in missing), source
    )
    return FeedbackReport(accepted, list(unknown))


def record_feedback(
    log_path: str | Path, feedback_path: str | Path, outcomes: Sequence[Outcome], lookback_days: int, source: str
) -> FeedbackReport:
    """Write the outcomes the log knows (one commit), report the others."""
    return write_known(feedback_path, outcomes, unknown_outcomes(log_path, outcomes, lookback_days), source)
