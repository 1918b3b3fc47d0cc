"""`compare` offline for the tasks without a label to count right answers: two registered clusterings by
the silhouette (paired bootstrap), two registered recommenders by per-user NDCG@k (paired t-test); real
Spark, MLflow (sqlite) and the session's demo Delta tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline._console import Console
from pipeline.jobs import compare_versions, train_and_register
from pipeline.tracking import find_version
from tests.conftest import example_config


@pytest.mark.parametrize(
    ("example", "weak", "strong", "metric"),
    [
        ("kmeans", {"k": 2, "maxIter": 5}, {"k": 4, "maxIter": 20}, "silhouette"),  # 4 true clusters
        (
            "als",
            {"rank": 1, "maxIter": 1, "regParam": 5.0, "coldStartStrategy": "drop"},
            {"rank": 4, "maxIter": 10, "regParam": 0.05, "coldStartStrategy": "drop"},
            "ndcg_at_10",
        ),
    ],
)
def test_the_stronger_version_wins_on_the_tasks_own_metric(
    spark: Any, lake: Path, tmp_path: Path, example: str, weak: dict[str, Any], strong: dict[str, Any], metric: str
) -> None:
    tracking = {
        "uri": f"sqlite:///{tmp_path}/mlflow.db",
        "artifact_location": str(tmp_path / "art"),
        "registered_model": f"compared-{example}",
        "experiment": "compare",
    }
    for hyperparameters in (weak, strong):
        config = example_config(example, lake, tracking=tracking, model={"hyperparameters": hyperparameters})
        train_and_register(spark, config, Console(quiet=True))
    versions = [(reference, find_version(config.tracking, reference)) for reference in ("1", "2")]
    run = compare_versions(spark, config, versions, Console(quiet=True))
    (found,) = run.comparisons
    assert found.metric == metric and found.verdict == "b better", found
    assert found.interval[0] > 0 and found.b > found.a and run.rows == found.samples > 1
