"""The parity gate: ONNX only when it answers as Spark does, also on nulls and unseen categories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pipeline.export._parity as parity
from pipeline.export import export_onnx, export_scorer
from pipeline.training import train
from serving.scoring import OnnxScorer
from tests.conftest import example_config


@pytest.fixture(scope="module")
def forest(spark: Any, lake: Path) -> Any:
    return train(spark, example_config("random_forest", lake))


def test_a_wrong_graph_is_refused_and_spark_keeps_serving(
    spark: Any, lake: Path, forest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = train(spark, example_config("decision_tree", lake))  # same data and inputs, another model
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
    np.testing.assert_allclose([g["probability"] for g in got], [e["probability"].toArray() for e in expected],
                               atol=1e-5)  # fmt: skip
