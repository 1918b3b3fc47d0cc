"""Bad data is a clear error before training starts, and nothing reaches MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline._console import Console
from pipeline.config import PipelineConfig
from pipeline.data import write_delta
from pipeline.errors import DataError
from pipeline.jobs import train_and_register
from pipeline.tracking import list_versions
from tests.conftest import example_config

SCHEMA = "amount double, colour string, empty double, label int"


def config_for(root: Path, table: Path, **sections: Any) -> PipelineConfig:
    data = {"source": {"path": str(table)}, "label": "label", **sections.pop("data", {})}
    return example_config(
        "random_forest",
        root,
        data=data,
        model={"algorithm": "random_forest", "hyperparameters": {"numTrees": 5}},
        tracking={"uri": f"sqlite:///{root}/mlflow.db"},
        **sections,
    )


def rows(n: int, label: Any = lambda i: i % 2, empty: Any = None) -> list[tuple[Any, ...]]:
    return [(float(i), ["a", "b"][i % 2], empty, label(i)) for i in range(n)]


@pytest.mark.parametrize(
    ("case", "data", "schema", "sections", "message"),
    [
        (
            "missing label",
            rows(50),
            SCHEMA,
            {"data": {"label": "is_fraud"}},
            "data.label = 'is_fraud': no such column",
        ),
        ("one class", rows(50, label=lambda i: 0), SCHEMA, {}, "a single class (0)"),
        ("all-null feature", rows(50), SCHEMA, {}, "column 'empty': every value is null"),
        ("empty table", [], SCHEMA, {}, "has no rows"),
        (
            "string in numeric column",
            [(str(i), "a", 1.0, i % 2) for i in range(50)],
            "amount string, colour string, empty double, label int",
            {"features": {"columns": {"amount": {"type": "numeric"}}}},
            "features.columns.amount: declared numeric but column 'amount' holds string values",
        ),
        (
            "text label",
            [(1.0, "a", 1.0, "yes")] * 10,
            "amount double, colour string, empty double, label string",
            {},
            "needs a numeric label",
        ),
    ],
)
def test_bad_data_fails_before_training_and_registers_nothing(
    spark: Any, tmp_path: Path, case: str, data: list[Any], schema: str, sections: dict[str, Any], message: str
) -> None:
    table = tmp_path / "t"
    write_delta(spark.createDataFrame(data, schema), table)
    config = config_for(tmp_path, table, **sections)
    with pytest.raises(DataError) as caught:
        train_and_register(spark, config, Console(quiet=True))
    assert message in str(caught.value), case
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "mlflow.db").exists()  # MLflow was never opened
    assert list_versions(config.tracking) == []
