"""The Ray Serve app over real HTTP: registry versions, ONNX and Spark-fallback scoring, routing, admin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
import yaml
from deltalake import DeltaTable, write_deltalake

from pipeline.config import PipelineConfig
from pipeline.runtime import CURRENT_CLUSTER_FILE, free_port, haproxy_pids
from pipeline.storage import delta_storage_options
from pipeline.tracking import CHALLENGER, CHAMPION, connect
from serving import deploy, shadow_log
from serving._prediction_log import sticky_key_hash
from serving._requests import Health, PredictResponse, Problem, RecommendResponse
from tests.conftest import example_config, run_cli
from tests.serving._kills import RECOVERY_BOUND_SECONDS, kill_under_streams, logged_once
from tests.serving._live import live_app
from tests.serving._processes import actor_pid
from tests.serving.test_routing import binomial_bound

# Starts engines of its own: left out of the quick loop (`pytest`), run by .ci/run.
pytestmark = pytest.mark.extended

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(
    lake: Path, store: Path, algorithm: str, port: int, features: dict[str, Any] | None = None, **serving: Any
) -> PipelineConfig:
    tracking = {
        "uri": f"sqlite:///{store}/mlflow.db",
        "artifact_location": str(store / "art"),
        "registered_model": "served",
        "experiment": "serving",
    }
    defaults = {
        "port": port,
        "variants": {"champion": {"weight": 0.8}, "challenger": {"weight": 0.2}},
        "sticky_key": "user_id",
        "shadow": "challenger",
        "refresh_seconds": 0.2,
        "max_body_bytes": 8 * 1024 * 1024,
        "prediction_log": {"flush_seconds": 0.5},
    }
    sections = {"features": features} if features else {}
    return example_config(algorithm, lake, tracking=tracking, serving={**defaults, **serving}, **sections)


@pytest.fixture(scope="module")
def served(spark: Any, trainings: Any, lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Versions 1 (random forest, champion), 2 (decision tree, challenger; same data and inputs), 3
    (a random forest with a hashed column: FeatureHasher has no ONNX converter, so it is pinned as a
    weight-0 'fallback' variant scored by Spark) and 4 (ALS on the ratings, pinned as a weight-0 'recs'
    variant for /recommend) behind one app."""
    store = tmp_path_factory.mktemp("serving-store")
    port = free_port()
    trained = {}
    hashed = {"columns": {"merchant_category": {"type": "hashed", "num_features": 32}}}
    for name, algorithm, alias, features in [
        ("random_forest", "random_forest", "auto", {}),
        ("decision_tree", "decision_tree", "auto", {}),
        ("hashed_forest", "random_forest", "none", hashed),
        ("als", "als", "none", {}),
    ]:
        config = _config(lake, store, algorithm, port, features)
        config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"alias": alias})})
        trained[name] = trainings.train_and_register(config)
    config = _config(
        lake,
        store,
        "random_forest",
        port,
        variants={
            "champion": {"weight": 0.8},
            "challenger": {"weight": 0.2},
            "fallback": {"version": 3, "weight": 0.0},
            "recs": {"version": 4, "weight": 0.0},
        },
    )
    shared = {"config": config, "trained": trained, "store": store, "lake": lake, "spark": spark}
    with live_app(config, TOKEN) as client:
        yield {**shared, "client": client}


def _records(served: Any, algorithm: str, rows: int) -> list[dict[str, Any]]:
    prepared = served["trained"][algorithm].trained.prepared
    return [row.asDict() for row in prepared.test.select(*prepared.input_columns).limit(rows).collect()]


def _spark_predictions(served: Any, algorithm: str, records: list[dict[str, Any]]) -> list[float]:
    """What the registered Spark pipeline itself predicts for these records."""
    trained = served["trained"][algorithm].trained
    schema = trained.prepared.train.select(*trained.prepared.input_columns).schema
    frame = served["spark"].createDataFrame(records, schema=schema)
    return [row[0] for row in trained.model.transform(frame).select("prediction").collect()]


def test_health_and_models_describe_every_variant(served: Any) -> None:
    client = served["client"]
    health = client.get("/health")
    assert health.status_code == 200 and Health.model_validate(health.json()).status == "ready"
    models = client.get("/models").json()["variants"]
    assert {name: (v["version"], v["scorer"]) for name, v in models.items()} == {
        "champion": ("1", "onnx"),
        "challenger": ("2", "onnx"),
        "fallback": ("3", "spark"),
        "recs": ("4", "onnx"),
    }
    assert models["champion"]["lineage"]["data.delta_version"] == "0"
    assert models["champion"]["weight"] == 0.8 and models["fallback"]["alias"] is None
    assert "FeatureHasher" in models["fallback"]["scorer_reason"]
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/recommend", "/health", "/models", "/metrics", "/admin/weights", "/admin/reload"} <= set(
        schema["paths"]
    )
    predict = schema["paths"]["/predict"]["post"]["responses"]
    assert set(predict) == {"200", "400", "404", "413", "422", "500", "503"}  # every status it can answer
    assert predict["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/Problem")
    assert {"Problem", "PredictResponse"} <= set(schema["components"]["schemas"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text and "swagger" in docs.text.lower()


def test_predictions_equal_spark_for_both_request_forms(served: Any) -> None:
    client = served["client"]
    records = _records(served, "random_forest", 50)
    answer = client.post("/predict", json={"instances": records, "model_id": "champion"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    PredictResponse.model_validate(body)  # the answer is what /openapi.json documents
    assert (body["variant"], body["version"], body["scorer"]) == ("champion", "1", "onnx")
    assert answer.headers["x-model-version"] == "1"
    assert [p["prediction"] for p in body["predictions"]] == _spark_predictions(served, "random_forest", records)
    inputs = [item["name"] for item in client.get("/models").json()["variants"]["champion"]["inputs"]]
    positional = client.post("/predict", json={"model_id": "1", "features": [records[0][n] for n in inputs]})
    assert positional.status_code == 200, positional.text
    assert positional.json()["predictions"] == body["predictions"][:1]
    assert (
        client.post("/predict", json={"instances": records[:1], "model_id": "@challenger"}).json()["version"]
        == "2"
    )
    missing = client.post("/predict", json={"instances": records[:1], "model_id": "9"})
    assert missing.status_code == 404 and missing.json()["detail"]["field"] == "model_id"


def test_the_spark_fallback_answers_like_spark(served: Any) -> None:
    records = _records(served, "hashed_forest", 20)
    answer = served["client"].post("/predict", json={"instances": records, "model_id": "fallback"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["scorer"] == "spark"
    expected = _spark_predictions(served, "hashed_forest", records)
    assert [p["prediction"] for p in answer.json()["predictions"]] == expected
    # One record with a null category: the frame MLflow builds must still have a string column.
    nulled = [{**records[0], "device": None}]
    alone = served["client"].post("/predict", json={"instances": nulled, "model_id": "fallback"})
    assert alone.status_code == 200, alone.text
    spark_says = _spark_predictions(served, "hashed_forest", nulled)
    assert [p["prediction"] for p in alone.json()["predictions"]] == spark_says
    # MLflow's signature takes no null for an integer input: named as a 422, not a 500.
    holed = [records[0], {**records[1], "account_age_days": None}]
    refused = served["client"].post("/predict", json={"instances": holed, "model_id": "fallback"})
    assert refused.status_code == 422 and refused.json()["detail"]["field"] == "instances[1].account_age_days"


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A table row as a client sends it in JSON (times as ISO strings)."""
    return {name: value.isoformat() if hasattr(value, "isoformat") else value for name, value in row.items()}


def test_a_row_of_the_training_table_is_answered_like_its_inputs_and_a_misspelling_is_named(served: Any) -> None:
    """A client may send the rows of the table the model was trained on: the columns the model does not
    use (the label, the id, the constant and dropped ones) are accepted and ignored, on the ONNX path and
    the Spark fallback alike; a name the table never had is still refused, naming it."""
    client = served["client"]
    variants = client.get("/models").json()["variants"]
    for algorithm, variant in (("random_forest", "champion"), ("hashed_forest", "fallback")):
        prepared = served["trained"][algorithm].trained.prepared
        rows = [_json_row(row.asDict()) for row in prepared.snapshot.df.limit(5).collect()]
        inputs = [{name: row[name] for name in prepared.input_columns} for row in rows]
        ignored = variants[variant]["ignored_inputs"]
        assert set(ignored) == set(rows[0]) - set(prepared.input_columns) and "label" in ignored, ignored
        assert "transaction_id" in ignored  # an id-like column inference dropped
        whole = client.post("/predict", json={"instances": rows, "model_id": variant})
        alone = client.post("/predict", json={"instances": inputs, "model_id": variant})
        assert whole.status_code == alone.status_code == 200, (whole.text, alone.text)
        assert whole.json()["predictions"] == alone.json()["predictions"]
    misspelled = client.post("/predict", json={"instances": [{**inputs[0], "lable": 1}], "model_id": "champion"})
    assert misspelled.status_code == 422, misspelled.text
    detail = misspelled.json()["detail"]
    assert detail["field"] == "instances[0].lable" and "unknown field" in detail["reason"], detail
    routed = client.post("/predict", json={"instances": [{**inputs[0], "label": 1}]})  # champion or challenger
    assert routed.status_code == 200, routed.text


def test_recommendations_equal_spark_for_known_users(served: Any) -> None:
    client = served["client"]
    trained = served["trained"]["als"].trained
    als = trained.model.stages[-1]
    users = [row[0] for row in trained.prepared.test.select("user_id").distinct().limit(5).collect()]
    frame = served["spark"].createDataFrame([(user,) for user in users], ["user_id"])
    spark_top = {
        row["user_id"]: [(r["item_id"], r["rating"]) for r in row["recommendations"]]
        for row in als.recommendForUserSubset(frame, 5).collect()
    }
    answer = client.post("/recommend", json={"users": [*users, 987654321], "k": 5, "model_id": "recs"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    RecommendResponse.model_validate(body)
    assert (body["variant"], body["version"], body["scorer"]) == ("recs", "4", "onnx")
    *known, unknown = body["recommendations"]
    assert unknown == {"user": 987654321, "known": False, "items": []}  # cold start: nothing to rank
    for entry in known:
        assert entry["known"] and [i["item"] for i in entry["items"]] == [i for i, _ in spark_top[entry["user"]]]
        np.testing.assert_allclose(
            [i["score"] for i in entry["items"]], [r for _, r in spark_top[entry["user"]]], rtol=1e-5
        )
    one = client.post("/recommend", json={"user": users[0], "k": 5, "model_id": "recs"}).json()
    assert one["recommendations"] == known[:1]
    cases = [
        ({"users": ["abc"], "model_id": "recs"}, 422, "users[0]"),
        ({"user": 1.5, "model_id": "recs"}, 422, "user"),
        ({"user": 1, "k": 0, "model_id": "recs"}, 422, "k"),
        ({"users": [], "model_id": "recs"}, 422, "users"),
        ({"k": 3, "model_id": "recs"}, 422, "body"),
        ({"user": 1, "model_id": "champion"}, 422, "model_id"),  # a classifier has no top-k
    ]
    for payload, status, where in cases:
        refused = client.post("/recommend", json=payload)
        assert (refused.status_code, refused.json()["detail"]["field"]) == (status, where), (payload, refused.text)
    assert "ALS" in client.post("/recommend", json={"user": 1, "model_id": "1"}).json()["detail"]["reason"]


def _requests_total(text: str, role: str) -> int:
    """Requests counted in /metrics for one role (routed, direct or shadow), all variants and statuses."""
    return sum(
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("pipeline_requests_total") and f'role="{role}"' in line
    )


def test_weighted_split_shadow_and_metrics_counts(served: Any) -> None:
    client = served["client"]
    record = _records(served, "random_forest", 1)[0]
    before = client.get("/metrics").text
    shadow_before = _requests_total(before, "shadow")
    variants: Counter[str] = Counter()
    direct = client.post("/predict", json={"instances": [record], "model_id": "champion"}).json()["predictions"]
    for _ in range(2000):
        answer = client.post("/predict", json={"instances": [record]})
        assert answer.status_code == 200
        body = answer.json()
        variants[body["variant"]] += 1
        if body["variant"] == "champion":  # the shadow (challenger) never changes what the champion says
            assert body["predictions"] == direct
    low, high = binomial_bound(2000, 0.2)
    assert low <= variants["challenger"] <= high, variants
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        after = client.get("/metrics").text
        if _requests_total(after, "shadow") - shadow_before >= variants["champion"]:
            break
        time.sleep(0.5)
    assert _requests_total(after, "routed") - _requests_total(before, "routed") == 2000
    assert _requests_total(after, "shadow") - shadow_before == variants["champion"]
    logged = shadow_log(served["config"].serving.app_name)
    assert logged and {entry["variant"] for entry in logged} == {"challenger"}


def _logged(path: Path, request_ids: set[str]) -> list[dict[str, Any]]:
    """The prediction log's rows of these requests (the whole table read: it is small here)."""
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return [row for row in rows if row["request_id"] in request_ids]


def test_the_prediction_log_holds_every_answered_record_once_with_its_lineage(served: Any) -> None:
    client, config = served["client"], served["config"]
    records = _records(served, "random_forest", 3)
    answers = {}
    for index in range(40):
        request_id = f"log-test-{index}"
        body = {"instances": records, "user_id": f"u{index}"}
        answer = client.post("/predict", json=body, headers={"x-request-id": request_id})
        assert answer.status_code == 200 and answer.json()["request_id"] == request_id
        answers[request_id] = answer.json()
    routed_to_champion = sum(1 for body in answers.values() if body["variant"] == "champion")
    expected = 3 * (len(answers) + routed_to_champion)  # the challenger shadows what the champion answered
    deadline = time.monotonic() + 30  # the replicas commit every 0.5 s
    rows = _logged(config.serving.prediction_log.path, set(answers))
    while len(rows) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = _logged(config.serving.prediction_log.path, set(answers))
    keys = Counter((row["request_id"], row["row"], row["role"]) for row in rows)
    assert len(rows) == expected and max(keys.values()) == 1, (len(rows), expected, keys.most_common(2))
    variants = client.get("/models").json()["variants"]
    lineage = {name: variant["lineage"]["data.delta_version"] for name, variant in variants.items()}
    for row in rows:
        body = answers[row["request_id"]]
        assert json.loads(row["input"]) == records[row["row"]]
        assert row["sticky_key_hash"] == sticky_key_hash(f"u{row['request_id'].rsplit('-', 1)[1]}")
        assert row["model"] == "served" and row["route"] == "predict" and row["scorer"] == "onnx"
        assert str(row["trained_on_delta_version"]) == lineage[row["variant"]]
        if row["role"] == "routed":
            assert (row["variant"], row["version"]) == (body["variant"], body["version"])
            assert json.loads(row["output"]) == body["predictions"][row["row"]]
        else:
            assert row["role"] == "shadow" and row["variant"] == "challenger" and body["variant"] == "champion"
    written = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith('pipeline_prediction_log_rows_total{outcome="written"}')
    ]
    assert written and int(written[0].rsplit(" ", 1)[1]) >= expected, written


def test_feedback_needs_the_token_names_a_bad_outcome_and_is_counted(served: Any) -> None:
    client, config = served["client"], served["config"]
    answer = client.post(
        "/predict",
        json={"instances": _records(served, "random_forest", 2)},
        headers={"x-request-id": "feedback-test"},
    )
    assert answer.status_code == 200
    body = {"outcomes": [{"request_id": "feedback-test", "row": 1, "outcome": 1}]}
    assert client.post("/feedback", json=body).status_code == 401
    wrong = client.post("/feedback", json={"request_id": "feedback-test", "outcome": "churned"}, headers=AUTH)
    assert wrong.status_code == 422 and wrong.json()["detail"] == {
        "field": "outcome",
        "reason": 'expected a finite number, got "churned"',
    }
    posted = client.post("/feedback", json=body, headers=AUTH)
    assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
    rows = DeltaTable(str(config.serving.feedback.path)).to_pyarrow_table().to_pylist()
    assert ("feedback-test", 1, 1.0) in {(row["request_id"], row["row"], row["outcome"]) for row in rows}
    counted = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith('pipeline_feedback_rows_total{outcome="accepted"}')
    ]
    assert counted and int(counted[0].rsplit(" ", 1)[1]) >= 1, counted


def test_sticky_keys_always_reach_the_same_variant(served: Any) -> None:
    client = served["client"]
    record = _records(served, "random_forest", 1)[0]
    seen: dict[str, set[str]] = {}
    for user in range(60):
        for _ in range(3):
            answer = client.post("/predict", json={"user_id": f"u{user}", "instances": [record]})
            seen.setdefault(f"u{user}", set()).add(answer.json()["variant"])
        inside = client.post("/predict", json={"instances": [{**record, "user_id": f"u{user}"}]})
        seen[f"u{user}"].add(inside.json()["variant"])
    assert all(len(variants) == 1 for variants in seen.values()), seen
    assert {v for variants in seen.values() for v in variants} == {"champion", "challenger"}


def test_bad_input_gets_a_named_4xx_and_the_server_stays_up(served: Any) -> None:
    client = served["client"]
    record = _records(served, "random_forest", 1)[0]
    field = next(name for name, value in record.items() if isinstance(value, float))
    cases = [
        ({"instances": [{k: v for k, v in record.items() if k != field}]}, 422, f"instances[0].{field}"),
        ({"instances": [{**record, field: "abc"}]}, 422, f"instances[0].{field}"),
        ({"instances": [record] * 10_001}, 413, "instances"),
        ({"instances": []}, 422, "instances"),
        ({"features": [1.0]}, 422, "features"),
        ({"nothing": 1}, 422, "nothing"),  # an unknown top-level field, named
        ({}, 422, "body"),
    ]
    for payload, status, where in cases:
        answer = client.post("/predict", json=payload)
        assert answer.status_code == status, (payload if len(str(payload)) < 300 else where, answer.text)
        assert Problem.model_validate(answer.json()).detail.field == where
    non_finite = json.dumps({"instances": [record]}).replace(json.dumps(record[field]), "NaN", 1)
    answer = client.post("/predict", content=non_finite, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "finite" in answer.json()["detail"]["reason"]
    assert client.post("/predict", content=b"{not json").status_code == 400
    assert client.post("/predict", content=b'{"instances": [{"a": "\xff"}]}').status_code == 400  # not UTF-8
    assert client.post("/predict", content=b" " * (9 * 1024 * 1024)).status_code == 413
    assert client.post("/predict", json={"instances": [record]}).status_code == 200


def test_admin_routes_refuse_missing_or_wrong_tokens(served: Any) -> None:
    client = served["client"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert client.post("/admin/weights", json={"weights": {"champion": 1}}, headers=headers).status_code == 401
        assert client.post("/admin/reload", headers=headers).status_code == 401
    bad = client.post("/admin/weights", json={"weights": {"champion": -1}}, headers=AUTH)
    assert bad.status_code == 422 and "weights.champion = -1" in bad.json()["detail"]["reason"]
    assert client.get("/models").json()["variants"]["champion"]["weight"] == 0.8


def test_hot_weight_change_and_alias_reload_fail_no_request(served: Any) -> None:
    client = served["client"]
    record = _records(served, "random_forest", 1)[0]
    statuses: Counter[int] = Counter()
    answered: list[tuple[str, str]] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
            while not stop.is_set():
                answer = own.post("/predict", json={"instances": [record]})
                statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    answered.append((answer.json()["variant"], answer.json()["version"]))

    worker = threading.Thread(target=stream)
    worker.start()
    try:
        time.sleep(1.0)
        changed = client.post("/admin/weights", json={"weights": {"champion": 0, "challenger": 1}}, headers=AUTH)
        assert changed.status_code == 200 and changed.json()["weights"]["challenger"] == 1.0
        time.sleep(1.0)
        mark = len(answered)
        time.sleep(1.0)
        assert answered[mark:] and {variant for variant, _ in answered[mark:]} == {"challenger"}
        # Swap the aliases in the registry, then reload: the variants now serve the other versions.
        registry = connect(served["config"].tracking)
        registry.set_registered_model_alias("served", CHAMPION, "2")
        registry.set_registered_model_alias("served", CHALLENGER, "1")
        reloaded = client.post("/admin/reload", headers=AUTH)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["versions"] == {"champion": "2", "challenger": "1", "fallback": "3", "recs": "4"}
        time.sleep(0.3)  # requests scored before the reload returned may still be arriving
        mark = len(answered)
        time.sleep(1.0)
        assert answered[mark:] and set(answered[mark:]) == {("challenger", "1")}
    finally:
        stop.set()
        worker.join()
        registry = connect(served["config"].tracking)
        registry.set_registered_model_alias("served", CHAMPION, "1")
        registry.set_registered_model_alias("served", CHALLENGER, "2")
        client.post("/admin/reload", headers=AUTH)
        client.post("/admin/weights", json={"weights": {"champion": 0.8, "challenger": 0.2}}, headers=AUTH)
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 50


SPARK_RECOVERY_BOUND = 2 * RECOVERY_BOUND_SECONDS


def test_a_killed_spark_variant_replica_fails_its_requests_fast_stalls_no_other_and_loses_no_answer(
    served: Any,
) -> None:
    """Issue 28's soak, its CI-sized part for the one process the fault tests (test_serve_faults.py) do not
    kill: the Spark-scored variant's replica, SIGKILLed under two streams, one to it and one routed to the
    ONNX variants. The routed stream never fails (the replicas' refresh asks a lost variant for 5 s at most);
    the variant's requests fail with the app's 503 (never a 500, a hang or a dropped connection), each
    within ``serving.variant_timeout_s``; it answers 200 again once its replacement has started its JVM and
    loaded the model (40 s measured with the routed stream loading both cores: the bound here is twice the
    other kills', against a hang); and every request answered 200, of both streams, is in the prediction
    log once."""
    client = served["client"]
    config = served["config"]
    fallback = {"instances": _records(served, "hashed_forest", 1), "model_id": "fallback"}
    routed = {"instances": _records(served, "random_forest", 1)}
    timeout = config.serving.variant_timeout_s
    streams, killed_at = kill_under_streams(
        str(client.base_url),
        [fallback, routed],
        lambda: actor_pid("ServeReplica:pipeline:variant-fallback"),
        timeout=timeout + 10,
        recovery_bound=SPARK_RECOVERY_BOUND,
    )
    to_variant, to_routed = streams
    recovery = to_variant.recovery(killed_at)
    held = to_variant.slowest_failure()
    print(
        f"Spark-scored variant: 200 again {recovery:.2f} s after the kill; {dict(to_variant.statuses)}, "
        f"the slowest failure held {held:.1f} s; routed: {dict(to_routed.statuses)}"
    )
    assert set(to_routed.statuses) == {"200"} and to_routed.statuses["200"] > 50, to_routed.statuses
    assert set(to_variant.statuses) <= {"200", "503"}, to_variant.statuses
    assert held <= timeout + 5, held
    assert recovery <= SPARK_RECOVERY_BOUND and to_variant.statuses["503"] >= 1, to_variant.statuses
    logged_once(config.serving.prediction_log.path, to_variant.answered_ids + to_routed.answered_ids)
    deadline = time.monotonic() + SPARK_RECOVERY_BOUND  # the variant listed again, for the tests after
    while not client.get("/health").json()["variants"]["fallback"]["ready"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.get("/health").json()["variants"]["fallback"]["ready"]


# 413 is the answer to more rows than a request may carry (the schema's maxItems): a rejection, as
# schemathesis's own list has it for 400, 422 and the others.
SCHEMATHESIS_CONFIG = """[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""


CONFIGURED_WEIGHTS = {"champion": 0.8, "challenger": 0.2}


def _schemathesis(base: str, folder: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    """``schemathesis run`` with every check (positive and negative data, status codes, response schemas,
    auth, stateful phase) against the live app's own /openapi.json; each weights change it makes is undone
    after its answer is checked (tests/serving/_schemathesis_hooks.py)."""
    config = folder / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    # 15 examples per operation (was 40): the whole test took 74 s so on a slow machine; CI time is short.
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "-H",
        f"Authorization: Bearer {TOKEN}",
        "--max-examples",
        "15",
        "--seed",
        "20261127",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        *selection,
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("_schemathesis_hooks.py")),
        "PIPELINE_TEST_APP": base,
        "PIPELINE_TEST_TOKEN": TOKEN,
        "PIPELINE_TEST_UNDONE": str(folder / "undone"),
        "PIPELINE_TEST_WEIGHTS": json.dumps(CONFIGURED_WEIGHTS),
    }
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=folder, env=env)


def _report(text: str) -> str:
    """Schemathesis's whole report with each line cut to 400 characters: a reproduction's curl line holds the
    request body (megabytes for a batch at its limit), which buried the error's own lines (seen in CI)."""
    lines = text.splitlines()
    return "\n".join(line if len(line) <= 400 else f"{line[:400]} ...({len(line)} chars)" for line in lines)


def test_schemathesis_finds_the_live_app_true_to_its_openapi_document(served: Any, tmp_path: Path) -> None:
    """The document of this moment (4 variants: 2 ONNX classifiers routed, a Spark-scored one with
    MLflow's integer rules, ALS for /recommend), every route in one pass but POST /train: each accepted
    body is a real Ray Job training a model (minutes of Spark), and this app has no dashboard to take one;
    the detach test below drives it."""
    client = served["client"]
    document = client.get("/openapi.json").json()
    try:
        routes = _schemathesis(str(client.base_url).rstrip("/"), tmp_path, "--exclude-path-regex", "^/train")
        assert routes.returncode == 0, _report(routes.stdout)
    finally:
        assert client.post("/admin/weights", json={"weights": CONFIGURED_WEIGHTS}, headers=AUTH).status_code == 200
    assert {"/recommend", "/admin/weights", "/admin/reload", "/feedback"} <= set(document["paths"])  # all there
    assert "No issues found" in routes.stdout and "Unmatched filters" not in routes.stdout, routes.stdout[-3000:]
    operations = [(path, method) for path, item in document["paths"].items() for method in item]
    tested = len([path for path, _ in operations if not path.startswith("/train")])
    assert f"Selected: {tested}/{len(operations)}" in routes.stdout and f"Tested: {tested}" in routes.stdout
    # Weights schemathesis set, each answered 200 and undone before the next call.
    undone = (tmp_path / "undone").read_text().splitlines()
    assert len(undone) >= 5 and all("weights" in json.loads(line) for line in undone), undone[:5]


def test_without_a_token_the_admin_routes_do_not_exist(served: Any) -> None:
    config = served["config"]
    deploy(config, environ={}, ready_timeout=300)  # redeploys the app in place, without a token
    client = served["client"]
    assert client.post("/admin/weights", json={"weights": {"champion": 1}}, headers=AUTH).status_code == 404
    assert client.post("/train", json={"algorithm": "kmeans", "data_path": "x"}, headers=AUTH).status_code == 404
    assert "/admin/reload" not in client.get("/openapi.json").json()["paths"]
    record = _records(served, "random_forest", 1)[0]
    assert client.post("/predict", json={"instances": [record]}).status_code == 200


# A second Ray head and a Ray Job: about 7 minutes on a slow machine (2026-12-05).
def test_cli_serve_detach_train_job_and_stop(served: Any, tmp_path: Path, bucket: str) -> None:
    """`serve --detach` on a Ray head of its own (a second cluster, another port), `POST /train` as a
    Ray Job on it, on the brief's bucket path (`"data_path": "s3://<bucket>/data/..."`), then `serve --stop`."""
    config = served["config"]
    port, dashboard_port = free_port(), free_port()
    lake = served["lake"]
    # The demo table, copied into the bucket by delta-rs: the job reads it from there (its head, and so its
    # driver, have the environment's keys and endpoint, as a user's shell gives them).
    in_bucket = f"s3://{bucket}/data/demo/transactions"
    demo = DeltaTable(str(lake / "data" / "demo" / "transactions")).to_pyarrow_table()
    write_deltalake(in_bucket, demo, storage_options=delta_storage_options(in_bucket))
    raw = {
        "root": str(tmp_path),
        "ray": {"num_cpus": 2, "dashboard": True, "dashboard_port": dashboard_port},
        "spark": {"executor_memory": "1g", "configs": {"spark.sql.shuffle.partitions": 2}},
        "data": {"source": {"path": str(lake / "data" / "demo" / "transactions")}, "label": "label"},
        "model": {"algorithm": "logistic_regression"},
        "tracking": {
            "uri": config.tracking.uri,
            "registered_model": "served",
            "experiment": "serving",
            "alias": "none",
        },
        # Commits only when the app stops: what the test finds in the log was written by `serve --stop`.
        "serving": {
            "port": port,
            "data_roots": [str(lake / "data"), f"s3://{bucket}/data"],
            "prediction_log": {"flush_seconds": 3600},
        },
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {"PIPELINE_SERVE_TOKEN": TOKEN}
    base = f"http://127.0.0.1:{port}"
    started = run_cli("serve", "--config", str(path), "--detach", env=env, timeout=300)
    try:
        assert started.returncode == 0, started.stderr
        record = json.loads((tmp_path / ".pipeline" / "serve-pipeline.json").read_text())
        head = record["head_pid"]
        # What `ray start` records: the head's port, behind the machine's IP (not the 127.0.0.1 it listens on).
        head_port = record["address"].rpartition(":")[2]
        assert CURRENT_CLUSTER_FILE.read_text().strip().endswith(f":{head_port}")
        running = session_processes(head)
        assert any("haproxy" in line for line in running) and any("raylet" in line for line in running), running
        assert f"{base}/docs" in started.stdout and "champion" in started.stdout
        assert httpx.get(f"{base}/health", timeout=30).status_code == 200
        records = _records(served, "random_forest", 2)
        for index in range(5):  # answers still in a replica's buffer (commits every hour here)
            fed = httpx.post(
                f"{base}/predict",
                json={"instances": records},
                timeout=30,
                headers={"x-request-id": f"fed-{index}"},
            )
            assert fed.status_code == 200, fed.text
        outcomes = [
            {"request_id": f"fed-{index}", "row": row, "outcome": 1} for index in range(5) for row in (0, 1)
        ]
        # /feedback finds them unknown in the table, has every replica commit its buffer, and finds them.
        unknown = {"request_id": "never-served", "outcome": 0}
        posted = httpx.post(f"{base}/feedback", headers=AUTH, timeout=60, json={"outcomes": [*outcomes, unknown]})
        assert posted.status_code == 200, posted.text
        assert posted.json() == {
            "accepted": 10,
            "unknown": 1,
            "unknown_outcomes": [{"request_id": "never-served", "row": 0}],
        }
        answered = set()
        for index in range(30):  # a bounded stream, each answer to be found in the log after the stop
            answer = httpx.post(
                f"{base}/predict",
                json={"instances": records},
                timeout=30,
                headers={"x-request-id": f"before-stop-{index}"},
            )
            assert answer.status_code == 200, answer.text
            answered.add(answer.json()["request_id"])
        status_command = [
            str(Path(sys.executable).with_name("serve")),
            "status",
            "--address",
            f"http://127.0.0.1:{dashboard_port}",
        ]
        serve_status = subprocess.run(status_command, capture_output=True, text=True, timeout=60, check=False)
        assert "pipeline:" in serve_status.stdout and "RUNNING" in serve_status.stdout, serve_status
        outside = httpx.post(
            f"{base}/train",
            json={"algorithm": "logistic_regression", "data_path": "../../etc"},
            headers=AUTH,
            timeout=30,
        )
        assert outside.status_code == 403 and "outside the data roots" in outside.json()["detail"]["reason"]
        beside = {"algorithm": "decision_tree", "data_path": f"s3://{bucket}/data-other/transactions"}
        refused = httpx.post(f"{base}/train", json=beside, headers=AUTH, timeout=30)
        assert refused.status_code == 403 and "outside the data roots" in refused.json()["detail"]["reason"]
        body = {"algorithm": "decision_tree", "data_path": in_bucket}  # quick to fit
        unauthorised = httpx.post(f"{base}/train", json=body)
        assert unauthorised.status_code == 401
        submitted = httpx.post(f"{base}/train", json=body, headers=AUTH, timeout=60)
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()["id"]
        deadline = time.monotonic() + 400
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = httpx.get(f"{base}/train/{job}", headers=AUTH, timeout=30).json()
            if status["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
                break
            time.sleep(3)
        assert status["status"] == "SUCCEEDED", status
        assert (
            status["model"] == "served" and int(status["version"]) > 4 and status["algorithm"] == "decision_tree"
        )
        trained_on = connect(config.tracking).get_model_version("served", status["version"]).tags
        assert trained_on["data.path"] == in_bucket and trained_on["data.delta_version"] == "0", trained_on
        assert httpx.get(f"{base}/train/train-nope", headers=AUTH, timeout=30).status_code == 404
    finally:
        saved = json.loads((tmp_path / ".pipeline" / "serve-pipeline.json").read_text())
        stopped = run_cli("serve", "--config", str(path), "--stop", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=5)
    assert saved["haproxy_dir"] and not haproxy_pids(Path(saved["haproxy_dir"]))
    assert_no_process_left(int(saved["head_pid"]))
    # The stopped head is not this machine's current cluster any more (a later ray.init() would join it).
    recorded = CURRENT_CLUSTER_FILE.read_text().strip() if CURRENT_CLUSTER_FILE.exists() else ""
    assert not recorded.endswith(f":{head_port}"), recorded
    feedback = DeltaTable(str(tmp_path / "feedback")).to_pyarrow_table().to_pylist()
    assert sorted((row["request_id"], row["row"], row["outcome"]) for row in feedback) == sorted(
        (item["request_id"], item["row"], 1.0) for item in outcomes
    )
    logged = Counter(row["request_id"] for row in _logged(tmp_path / "prediction_log", answered))
    assert logged == dict.fromkeys(answered, 2), logged  # both records of every answer, once: none lost
    traced = run_cli("trace", "--config", str(path), "before-stop-0", timeout=120)
    assert traced.returncode == 0, traced.stderr[-2000:]
    lines = traced.stdout.splitlines()
    assert lines[0].startswith("request before-stop-0: predict at ") and " answered in " in lines[0], lines
    assert lines[1].startswith("routed answer by variant ") and " served version " in lines[1], lines
    assert lines[2].startswith("  MLflow run ") and config.tracking.uri in lines[2], lines
    assert lines[3].startswith("  trained on ") and "transactions at Delta version 0 (" in lines[3], lines
    assert [line.split(":")[0] for line in lines[4:]] == ["  row 0", "  row 1"], lines


def session_processes(session: int) -> list[str]:
    """The command lines of the live processes in a session (a head started with start_new_session).

    Zombies are left out: they have exited and hold no port, memory or file, and whether one is
    reaped at once depends on the machine's init (CI's PID 1 reaps late), not on the app.
    """
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if os.getsid(process.pid) == session and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(" ".join(process.info["cmdline"] or [])[:120] or f"pid {process.pid}")
        except (ProcessLookupError, PermissionError):
            continue
    return found


def assert_no_process_left(session: int, grace_seconds: float = 10.0) -> None:
    """Nothing of a stopped head is left: no process of its session (Ray, HAProxy, Java) within a grace."""
    deadline = time.monotonic() + grace_seconds
    left = session_processes(session)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = session_processes(session)
    assert not left, left
