"""The parity gate: ONNX only when it answers as Spark does, also on nulls and unseen categories."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pipeline.export._parity as parity
import pipeline.export._recommend as recommend
from pipeline.export import export_onnx, export_scorer
from scoring import OnnxScorer, Recommender
from tests.conftest import example_config


@pytest.fixture(scope="module")
def forest(trainings: Any, lake: Path) -> Any:
    return trainings.train(example_config("random_forest", lake))


def test_a_wrong_graph_is_refused_and_spark_keeps_serving(
    trainings: Any, lake: Path, forest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = trainings.train(example_config("decision_tree", lake))  # same data and inputs, another model
    assert export_scorer(forest).scorer == "onnx"
    # Fault injection: the exporter hands back another model's graph (same inputs, other answers).
    monkeypatch.setattr(parity, "export_onnx", lambda _model, *args: export_onnx(other.model, *args))
    refused = export_scorer(forest)
    assert refused.scorer == "spark" and refused.onnx is None
    assert "differ" in refused.reason and refused.rows_compared > 0


def test_onnx_matches_spark_on_nulls_and_unseen_categories(spark: Any, forest: Any) -> None:
    exported = export_scorer(forest)
    assert exported.onnx is not None
    prepared = forest.prepared
    rows = [row.asDict() for row in prepared.test.select(*prepared.input_columns).limit(6).collect()]
    strings = [f.name for f in exported.spec.inputs if f.kind == "string"]
    numbers = [f.name for f in exported.spec.inputs if f.kind == "number"]
    assert strings and numbers, exported.spec
    for index, row in enumerate(rows):
        if index % 2 == 0:
            row[strings[0]] = f"never-seen-{index}"
        if index % 3 == 0:
            row[numbers[0]] = None
            row[strings[-1]] = None
    frame = spark.createDataFrame(rows, schema=prepared.train.select(*prepared.input_columns).schema)
    expected = forest.model.transform(frame).select("prediction", "probability").collect()
    got = OnnxScorer(exported.onnx, exported.spec).score(rows)
    assert [g["prediction"] for g in got] == [e["prediction"] for e in expected]
    np.testing.assert_allclose(
        [g["probability"] for g in got], [e["probability"].toArray() for e in expected], atol=1e-5
    )


@pytest.fixture(scope="module")
def als(trainings: Any, lake: Path) -> Any:
    return trainings.train(example_config("als", lake))


def test_als_top_k_from_the_factors_equals_spark(spark: Any, als: Any) -> None:
    exported = export_scorer(als)
    assert exported.scorer == "onnx" and exported.factors is not None, exported.reason
    model = als.model.stages[-1]
    users = [row[0] for row in als.prepared.test.select("user_id").distinct().limit(8).collect()]
    frame = spark.createDataFrame([(user,) for user in users], ["user_id"])
    expected = model.recommendForUserSubset(frame, 10).collect()
    recommender = Recommender(exported.factors)
    assert len(expected) == len(users)
    for row in expected:
        items, scores = recommender.top_items(row["user_id"], 10) or ([], [])
        assert items == [entry["item_id"] for entry in row["recommendations"]]
        np.testing.assert_allclose(scores, [entry["rating"] for entry in row["recommendations"]], rtol=1e-5)


def test_wrong_factors_are_refused_for_top_k(als: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault injection: the item factors come back in another order (each id gets a neighbour's vector).
    original = recommend.export_factors

    def shuffled(model: Any) -> bytes:
        with np.load(io.BytesIO(original(model))) as data:
            arrays = dict(data)
        arrays["item_factors"] = np.roll(arrays["item_factors"], 1, axis=0)
        return Recommender.pack(
            arrays["user_ids"], arrays["user_factors"], arrays["item_ids"], arrays["item_factors"]
        )

    monkeypatch.setattr(recommend, "export_factors", shuffled)
    refused = export_scorer(als)
    assert refused.scorer == "spark" and refused.reason.startswith("parity (top-k): user ")
