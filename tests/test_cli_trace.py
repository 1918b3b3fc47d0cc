"""`python -m pipeline trace REQUEST_ID`: a logged answer back to its version, MLflow run and training data.

Real parts without an engine: a sqlite MLflow registry whose version carries the lineage tags training
sets, and a prediction log table committed by the serving app's own writer (serving/_prediction_log.py).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import mlflow
import orjson
import pytest
import yaml

from serving._prediction_log import AnsweredRequest, PredictionLog, create_log_table
from tests.test_cli_train import registry_cli


def _answered(request_id: str, records: list[dict[str, float]]) -> AnsweredRequest:
    outputs = [{"prediction": 1.0, "probability": [0.2, 0.8]} for _ in records]
    return AnsweredRequest(
        request_id,
        time.time(),
        "predict",
        "champion",
        "routed",
        "traced",
        "1",
        4,
        "onnx",
        orjson.dumps({"instances": records}),
        orjson.dumps(outputs),
        0.0012,
        None,
        len(records),
    )


def test_trace_prints_the_answers_their_version_run_and_training_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mlruns").mkdir()
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("demo", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    client.create_registered_model("traced")
    lineage = {
        "algorithm": "random_forest",
        "data.path": "/lake/transactions",
        "data.delta_version": "4",
        "data.rows": "3000",
    }
    client.create_model_version("traced", str(tmp_path / "artifacts" / "model"), run.info.run_id, tags=lineage)
    client.set_registered_model_alias("traced", "champion", "1")
    log = PredictionLog(str(tmp_path / "prediction_log"), max_buffer_rows=100)
    create_log_table(log.path)
    log.offer(_answered("req-1", [{"amount": 1.5}, {"amount": 2.5}]))
    log.offer(_answered("req-2", [{"amount": 9.0}]))
    assert log.commit() == 3
    config = tmp_path / "job.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "root": str(tmp_path),
                "data": {"source": {"path": "data/t"}},
                "tracking": {"uri": uri, "experiment": "demo", "registered_model": "traced"},
            }
        )
    )
    cli = functools.partial(registry_cli, capsys, monkeypatch, {})

    traced = cli("trace", "--config", str(config), "req-1")
    assert traced.returncode == 0, traced.stderr
    lines = traced.stdout.splitlines()
    assert lines[0].startswith("request req-1: predict at ") and lines[0].endswith("answered in 1.20 ms")
    assert lines[1] == "routed answer by variant champion: traced version 1 (scorer onnx)"
    assert lines[2] == f"  MLflow run {run.info.run_id} (random_forest; @champion) in {uri}"
    assert lines[3] == "  trained on /lake/transactions at Delta version 4 (3000 rows)"
    assert lines[4:] == [
        '  row 0: {"amount":1.5} -> {"prediction":1.0,"probability":[0.2,0.8]}',
        '  row 1: {"amount":2.5} -> {"prediction":1.0,"probability":[0.2,0.8]}',
    ]

    unknown = cli("trace", "--config", str(config), "req-404")
    assert unknown.returncode == 1 and unknown.stderr.strip() == (
        f"error: trace: request 'req-404' is not in the prediction log at {tmp_path / 'prediction_log'} (each "
        "replica commits its answers every 5 s and at a graceful stop)"
    )
    elsewhere = tmp_path / "other.yaml"
    elsewhere.write_text(config.read_text() + "serving: {prediction_log: {path: nowhere}}\n")
    missing = cli("trace", "--config", str(elsewhere), "req-1")
    assert missing.returncode == 1 and missing.stderr.strip() == (
        f"error: trace: no prediction log at {tmp_path / 'nowhere'} (serving.prediction_log.path; is the log "
        "enabled?)"
    )
