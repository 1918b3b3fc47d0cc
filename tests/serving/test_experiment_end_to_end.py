"""One champion/challenger experiment end to end on the real app over HTTP: a weak champion (a one-split
tree) and a truly better challenger (a random forest) on scikit-learn's wine data, whose outcomes are
known (its labels); a bounded stream of requests, their outcomes posted as feedback, `compare --online`,
`--apply` moving the aliases and reloading the app, `rollback`; and `score`, whose batch outputs equal the
served answers of the same version.

Everything but the MLflow store is in one bucket (moto's S3 API), as on a cluster with no shared disk: the
Delta table it trains on, the models' artifacts (the variants load from there, ONNX and Spark alike), the
prediction log and the feedback table (tests/serving/test_serve_app holds them in local folders)."""

from __future__ import annotations

import functools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable

from pipeline._console import Console
from pipeline.config import TableSource
from pipeline.data import ingest
from pipeline.errors import PipelineError
from pipeline.export import TOLERANCE
from pipeline.jobs import score_source
from pipeline.runtime import free_port
from pipeline.storage import delta_storage_options, filesystem, parse_location
from pipeline.tracking import CHALLENGER, connect, find_version
from serving import deploy
from serving._watch import watcher_history
from tests.conftest import example_config, new_bucket
from tests.serving._live import live_app
from tests.test_cli_train import registry_cli

# Starts engines of its own: left out of the quick loop (`pytest`), run by .ci/run.
pytestmark = pytest.mark.extended

TOKEN = "experiment-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# 4,000 answered records, about 2,000 by each version: the 178 wines of scikit-learn's set in turn. A tree
# of one split cannot tell three cultivars apart (it names two at most); the forest can.
REQUESTS, RECORDS = 200, 20


@pytest.fixture(scope="module")
def experiment(
    spark: Any, trainings: Any, lake: Path, tmp_path_factory: pytest.TempPathFactory, s3_server: str
) -> Any:
    store = tmp_path_factory.mktemp("experiment")
    lake_bucket = f"s3://{new_bucket(s3_server)}"
    tracking = {
        "uri": f"sqlite:///{store}/mlflow.db",
        "artifact_location": f"{lake_bucket}/artifacts",
        "registered_model": "experiment",
        "experiment": "experiment",
        "alias": "auto",
    }
    serving = {
        "port": free_port(),
        "variants": {"champion": {"weight": 0.5}, "challenger": {"weight": 0.5}},
        "shadow": "challenger",
        "refresh_seconds": 0.2,
        "prediction_log": {"path": f"{lake_bucket}/serving/prediction_log", "flush_seconds": 0.5},
        "feedback": {"path": f"{lake_bucket}/serving/feedback"},
    }
    wine = {
        "source": {"format": "delta", "path": f"{lake_bucket}/demo/wine"},
        "label": "label",
        "ingest": {"generate": {"generator": "wine", "seed": 42}},
    }
    sections = {
        "tracking": tracking,
        "serving": serving,
        "experiment": {"metric": "accuracy", "mde": 0.02},
        "data": wine,
        "features": {"drop": ["sample_id"]},
    }
    trained: dict[str, Any] = {}
    for algorithm, model in [
        ("decision_tree", {"hyperparameters": {"maxDepth": 1}}),  # v1: @champion
        ("random_forest", {}),
    ]:  # v2: @challenger
        config = example_config(algorithm, lake, **sections, model=model)
        if not trained:  # the new bucket's table, once
            ingest(spark, config.data)
        trained[algorithm] = trainings.train_and_register(config)
    raw = config.model_dump(mode="json")  # the CLI's view of the same project
    raw["model"]["hyperparameters"] = {}
    path = store / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw))
    shared = {"config": config, "file": path, "trained": trained, "spark": spark, "store": store}
    assert not list(store.rglob("_delta_log")) and not list(store.rglob("MLmodel"))  # all in the bucket
    with live_app(config, TOKEN) as client:
        yield {**shared, "client": client}


def _table(path: Path | str) -> pa.Table:
    """A Delta table's rows, local or in the bucket."""
    return DeltaTable(str(path), storage_options=delta_storage_options(path)).to_pyarrow_table()


def _champion_version(client: httpx.Client) -> str:
    return str(client.get("/models").json()["variants"]["champion"]["version"])


def test_feedback_compare_apply_and_rollback(
    experiment: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, config = experiment["client"], experiment["config"]
    prepared = experiment["trained"]["random_forest"].trained.prepared
    loaded = client.get("/models").json()["variants"]  # both versions' artifacts came from the bucket
    assert {name: info["ready"] for name, info in loaded.items()} == {"champion": True, "challenger": True}, loaded
    rows = _table(config.data.source.path).to_pylist()  # every labelled wine
    outcomes: list[dict[str, Any]] = []
    variants: Counter[str] = Counter()
    for index in range(REQUESTS):  # a bounded stream of requests of RECORDS records each, the wines in turn
        batch = [rows[(index * RECORDS + offset) % len(rows)] for offset in range(RECORDS)]
        records = [{name: row[name] for name in prepared.input_columns} for row in batch]
        answer = client.post("/predict", json={"instances": records}, headers={"x-request-id": f"exp-{index}"})
        assert answer.status_code == 200, answer.text
        variants[answer.json()["variant"]] += 1
        outcomes += [
            {"request_id": f"exp-{index}", "row": position, "outcome": float(row[prepared.label])}
            for position, row in enumerate(batch)
        ]
    for start in range(0, len(outcomes), 1000):
        posted = client.post("/feedback", json={"outcomes": outcomes[start : start + 1000]}, headers=AUTH)
        assert posted.status_code == 200 and posted.json()["unknown"] == 0, posted.text
    logged = [
        row
        for row in _table(config.serving.prediction_log.path).to_pylist()
        if row["request_id"].startswith("exp-")
    ]
    keys = Counter((row["request_id"], row["row"], row["role"]) for row in logged)
    assert max(keys.values()) == 1  # none twice
    assert sum(1 for key in keys if key[2] == "routed") == REQUESTS * RECORDS  # none lost
    assert sum(1 for key in keys if key[2] == "shadow") == variants["champion"] * RECORDS  # the challenger shadows

    cli = functools.partial(registry_cli, capsys, monkeypatch, {config.serving.token_env: TOKEN})
    compared = cli("compare", "--config", str(experiment["file"]), "--online")
    assert compared.returncode == 0, compared.stderr
    routed = [
        line for line in compared.stdout.splitlines() if line.startswith("accuracy ") and "shadow" not in line
    ]
    assert len(routed) == 1 and routed[0].endswith("b better"), compared.stdout
    assert "accuracy (shadow pairs)" in compared.stdout and "guardrail version 2: 0 of " in compared.stdout
    # The 200 routed requests against the 0.5/0.5 weights (a false mismatch at p < 0.001: 1 run in 1,000).
    (split,) = [line for line in compared.stdout.splitlines() if line.startswith("traffic: ")]
    assert split.startswith("traffic: split as configured: ") and "vs 50.0%" in split, split

    applied = cli("compare", "--config", str(experiment["file"]), "--online", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "promoted: accuracy: b better by " in applied.stdout, applied.stdout
    assert "@champion -> version 2 (was version 1, now @previous" in applied.stdout
    assert "reloaded the app at " in applied.stdout and "champion -> version 2" in applied.stdout
    assert _champion_version(client) == "2"
    answered = client.post("/predict", json={"instances": records, "model_id": "champion"})
    assert answered.json()["version"] == "2"

    rolled = cli("rollback", "--config", str(experiment["file"]))
    assert rolled.returncode == 0 and "@champion -> version 1 (rolled back from version 2)" in rolled.stdout
    assert "champion -> version 1" in rolled.stdout and _champion_version(client) == "1"


def test_score_writes_every_row_with_lineage_and_equals_the_served_answers(experiment: Any, bucket: str) -> None:
    client, config, spark, store = (
        experiment["client"],
        experiment["config"],
        experiment["spark"],
        experiment["store"],
    )
    source = config.data.source
    version = find_version(config.tracking, "2")
    output = store / "scores"
    run = score_source(spark, config, version, source, output, Console(quiet=True))
    table = DeltaTable(str(output)).to_pyarrow_table()
    total = _table(source.path).num_rows
    assert run.written.rows == table.num_rows == total  # one output row per input row
    assert set(table["model_version"].to_pylist()) == {"2"} and set(table["scorer"].to_pylist()) == {"spark"}
    assert set(table["source_delta_version"].to_pylist()) == {0} and run.source.endswith("(Delta version 0)")
    prepared = experiment["trained"]["random_forest"].trained.prepared
    first = table.slice(0, 50).to_pylist()
    records = [{name: row[name] for name in prepared.input_columns} for row in first]
    served = client.post("/predict", json={"instances": records, "model_id": "2"}).json()["predictions"]
    assert [answer["prediction"] for answer in served] == [row["prediction"] for row in first]
    worst = np.abs(np.array([a["probability"] for a in served]) - np.array([row["probability"] for row in first]))
    assert worst.max() <= TOLERANCE

    # The same rows from a bucket into a bucket (`score --input s3://... --output s3://...`): the same answers.
    fs, key = filesystem(parse_location(f"s3://{bucket}/in/rows.parquet", "t"))
    with fs.open_output_stream(key) as out:
        pq.write_table(_table(source.path), out)
    in_bucket = TableSource.model_validate({"format": "parquet", "path": f"s3://{bucket}/in/rows.parquet"})
    remote = score_source(spark, config, version, in_bucket, f"s3://{bucket}/scores", Console(quiet=True))
    storage = delta_storage_options(parse_location(f"s3://{bucket}/scores", "t"))
    scored = DeltaTable(f"s3://{bucket}/scores", storage_options=storage).to_pyarrow_table()
    assert remote.written.rows == scored.num_rows == total and remote.source == f"s3://{bucket}/in/rows.parquet"
    assert set(scored["source_path"].to_pylist()) == {f"s3://{bucket}/in/rows.parquet"}
    assert sorted(scored["prediction"].to_pylist()) == sorted(table["prediction"].to_pylist())

    bad = store / "bad.parquet"
    spark.createDataFrame([("x", 1.0)], "alcohol string, malic_acid double").write.parquet(str(bad))
    bad_source = TableSource(format="parquet", path=bad)
    with pytest.raises(PipelineError) as refused:
        score_source(spark, config, version, bad_source, store / "bad_scores", Console(quiet=True))
    message = str(refused.value)
    assert (
        message.startswith(f"score --input {bad}: ")
        and "column 'alcohol' is string; the model takes double" in message
        and "column 'proline' is missing" in message
    ), message
    assert not (store / "bad_scores").exists()  # refused before anything was written


def test_the_app_promotes_and_rolls_back_by_itself(experiment: Any) -> None:
    """experiment.auto_promote, then auto_rollback, on the evidence the first test left in the log and the
    feedback table; the watcher checks every second. Each move is an MLflow run naming its reason."""
    client, config = experiment["client"], experiment["config"]
    mlflow_client = connect(config.tracking)
    mlflow_client.set_registered_model_alias(config.tracking.registered_model, CHALLENGER, "2")
    assert _champion_version(client) == "1"
    breach: dict[str, Any] = {"auto_rollback": True, "max_p99_ms": 0.001}  # any answer is slower than that
    steps: list[tuple[dict[str, Any], str, str]] = [
        ({"auto_promote": True}, "2", "auto promotion: accuracy: b better by "),
        (breach, "1", "auto rollback: version 2: p99 latency "),
    ]
    for rules, expected, reason in steps:
        watched = config.model_copy(
            update={"experiment": config.experiment.model_copy(update={"check_seconds": 1.0, **rules})}
        )
        deploy(watched, environ={config.serving.token_env: TOKEN}, ready_timeout=300)
        deadline = time.monotonic() + 90
        answers = {_champion_version(client) for _ in range(6)}  # each /models from any ingress replica
        while answers != {expected} and time.monotonic() < deadline:
            time.sleep(1)
            answers = {_champion_version(client) for _ in range(6)}
        history = watcher_history(config.serving.app_name)
        assert answers == {expected}, history
        assert len(history) == 1 and history[0].startswith(reason), history
        assert history[0].endswith(f"@champion -> version {expected}"), history
    found = mlflow_client.get_experiment_by_name(config.tracking.experiment)
    assert found is not None
    moves = mlflow_client.search_runs(
        [found.experiment_id], "tags.kind = 'alias-move'", order_by=["attributes.start_time ASC"]
    )
    automatic = [run.data.params for run in moves if run.data.params["reason"].startswith("auto")]
    assert [params["reason"].split(":")[0] for params in automatic] == ["auto promotion", "auto rollback"]
    assert all(params.get("comparison_run_id") for params in automatic)  # the evidence behind each move
