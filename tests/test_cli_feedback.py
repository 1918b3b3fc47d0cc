"""`python -m pipeline feedback --from SOURCE --key COLUMN`: outcomes in bulk from CSV, Parquet or Delta.

Real parts without an engine: a prediction log committed by the serving app's own writer, sources written
by pyarrow and delta-rs, the feedback table read back with delta-rs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable, write_deltalake

from tests.serving.test_feedback import _logged
from tests.test_cli_train import registry_cli


def test_feedback_loads_the_known_outcomes_and_refuses_bad_columns_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _logged(tmp_path / "prediction_log", {"a": 2, "b": 1, "c": 1})
    config = tmp_path / "job.yaml"
    data = {"source": {"path": "data/t"}, "label": "churned"}
    config.write_text(
        yaml.safe_dump(
            {"root": str(tmp_path), "data": data, "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"}}
        )
    )
    cli = functools.partial(registry_cli, capsys, monkeypatch, {})
    outcomes = pa.table({"request": ["a", "a", "b", "nope"], "line": [0, 1, 0, 0], "churned": [1, 0, 1, 1]})
    pa_csv.write_csv(outcomes, tmp_path / "outcomes.csv")

    loaded = cli(
        "feedback",
        "--config",
        str(config),
        "--from",
        str(tmp_path / "outcomes.csv"),
        "--key",
        "request",
        "--row",
        "line",
    )
    assert loaded.returncode == 0, loaded.stderr
    lines = loaded.stdout.splitlines()
    assert (
        lines[0]
        == f"feedback: 3 of 4 outcomes from {tmp_path / 'outcomes.csv'} written to {tmp_path / 'feedback'}"
    )
    assert lines[1].startswith("  1 unknown (not in the prediction log of the last 30 days;") and lines[
        1
    ].endswith(": nope row 0")
    written = DeltaTable(str(tmp_path / "feedback")).to_pyarrow_table().to_pylist()
    assert sorted((row["request_id"], row["row"], row["outcome"]) for row in written) == [
        ("a", 0, 1.0),
        ("a", 1, 0.0),
        ("b", 0, 1.0),
    ]
    assert {row["source"] for row in written} == {f"csv:{tmp_path / 'outcomes.csv'}"}

    write_deltalake(str(tmp_path / "outcomes_delta"), pa.table({"request": ["c"], "value": [0.25]}))
    from_delta = cli(
        "feedback",
        "--config",
        str(config),
        "--from",
        str(tmp_path / "outcomes_delta"),
        "--key",
        "request",
        "--outcome",
        "value",
    )
    assert from_delta.returncode == 0 and from_delta.stdout.startswith("feedback: 1 of 1 outcomes"), from_delta
    assert DeltaTable(str(tmp_path / "feedback")).version() == 2  # created, then one commit per load

    pq.write_table(pa.table({"request": ["a", None], "churned": ["yes", "no"]}), tmp_path / "bad.parquet")
    for args, message in [
        (
            ["--key", "id"],
            f"error: --from {tmp_path / 'bad.parquet'}: no column 'id'; the parquet source has "
            "['request', 'churned']",
        ),
        (["--key", "request"], "error: --key request: 1 of 2 rows are empty; every row needs one"),
    ]:
        refused = cli("feedback", "--config", str(config), "--from", str(tmp_path / "bad.parquet"), *args)
        assert (refused.returncode, refused.stderr.strip()) == (1, message)
    pq.write_table(pa.table({"request": ["a"], "churned": ["yes"]}), tmp_path / "text.parquet")
    text = cli("feedback", "--config", str(config), "--from", str(tmp_path / "text.parquet"), "--key", "request")
    assert text.returncode == 1 and text.stderr.strip() == (
        "error: --outcome churned: a string column; outcomes must be numbers (the label index a classifier "
        "answers with, or a regressor's value)"
    )
    assert DeltaTable(str(tmp_path / "feedback")).version() == 2  # nothing written by a refused load
