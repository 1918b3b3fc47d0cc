"""The registry's facts: the `models:/` URI of a version or an alias, built in one place; a job's outcome
record (`--result FILE`, what `GET /train/{id}` reports), written and read by one class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.tracking import model_uri
from pipeline.tracking.facts import TrainOutcome


@pytest.mark.parametrize(
    ("reference", "uri"),
    [
        ("3", "models:/m/3"),
        (3, "models:/m/3"),
        ("champion", "models:/m@champion"),
        ("@challenger", "models:/m@challenger"),
    ],
)
def test_a_version_number_or_an_alias_makes_its_models_uri(reference: str | int, uri: str) -> None:
    assert model_uri("m", reference) == uri


def test_a_jobs_outcome_is_written_whole_and_read_back_by_the_same_class(tmp_path: Path) -> None:
    path = tmp_path / "jobs" / "result.json"
    succeeded = TrainOutcome(
        status="SUCCEEDED", model="m", version="3", alias=None, run_id="r", scorer="onnx", metrics={"auc_roc": 0.8}
    )
    succeeded.write(path)
    written = {
        "status": "SUCCEEDED",
        "model": "m",
        "version": "3",
        "alias": None,
        "run_id": "r",
        "scorer": "onnx",
        "metrics": {"auc_roc": 0.8},
    }
    assert json.loads(path.read_text()) == written
    assert TrainOutcome.read(path) == succeeded and not list(path.parent.glob(".*.partial"))
    TrainOutcome(status="FAILED", error="data.label = 'x': no such column").write(path)
    assert json.loads(path.read_text()) == {"status": "FAILED", "error": "data.label = 'x': no such column"}
    path.write_text("{half a reco")
    assert TrainOutcome.read(path) is None and TrainOutcome.read(tmp_path / "none.json") is None
    assert TrainOutcome.from_record({"version": "2", "unknown": 1}) == TrainOutcome(status="FAILED", version="2")


def test_a_served_alias_of_digits_stays_an_alias() -> None:
    """What a user names goes through ``model_uri`` (digits: a version); a variant's configured alias is an
    alias whatever its name (MLflow allows ``2024``)."""
    from serving._registry import ModelSource

    assert ModelSource("sqlite://", "m", alias="2024").describe() == "models:/m@2024"
    assert ModelSource("sqlite://", "m", version="3").describe() == "models:/m/3"
