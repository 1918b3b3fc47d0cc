"""Registry: aliases set and moved, load by alias reproduces predictions, lineage = Delta version read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest

from pipeline._console import Console
from pipeline.config import GeneratedData, TableSource
from pipeline.data import generate, write_delta
from pipeline.jobs import train_and_register
from pipeline.tracking import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    RegistryError,
    list_versions,
    load_spark_model,
    promote,
    rollback,
)
from tests.conftest import example_config


def predictions(model: Any, frame: Any) -> list[tuple[float, ...]]:
    rows = model.transform(frame).select("prediction", "probability").collect()
    return [(row["prediction"], *row["probability"].toArray().tolist()) for row in rows]


def test_aliases_lineage_and_reloading(spark: Any, tmp_path: Path) -> None:
    table = tmp_path / "data" / "t"
    write_delta(generate(spark, GeneratedData(rows=3000, seed=11)), table)
    config = example_config(
        "random_forest",
        tmp_path,
        data={"source": {"path": str(table)}, "label": "label"},
        model={"algorithm": "random_forest", "hyperparameters": {"numTrees": 10, "maxDepth": 5}},
        tracking={"uri": f"sqlite:///{tmp_path}/mlflow.db", "registered_model": "fraud"},
    )
    console = Console(quiet=True)
    first = train_and_register(spark, config, console)
    assert (first.registration.version, first.registration.alias) == ("1", CHAMPION)

    write_delta(generate(spark, GeneratedData(rows=1000, seed=12)), table, mode="append")
    second = train_and_register(spark, config, console)
    assert (second.registration.version, second.registration.alias) == ("2", CHALLENGER)

    pinned = config.model_copy(
        update={"data": config.data.model_copy(update={"source": TableSource(path=table, version=0)})}
    )
    third = train_and_register(spark, pinned, console)
    assert third.registration.alias == CHALLENGER  # moved from version 2 to 3

    versions = {v.version: v for v in list_versions(config.tracking)}
    assert {v: versions[v].tags["data.delta_version"] for v in versions} == {"1": "0", "2": "1", "3": "0"}
    assert {v: versions[v].tags["data.rows"] for v in versions} == {"1": "3000", "2": "4000", "3": "3000"}
    assert versions["1"].aliases == [CHAMPION] and versions["3"].aliases == [CHALLENGER]
    assert versions["2"].aliases == []
    for version in versions.values():
        assert version.tags["config_hash"] and version.tags["data.path"] == str(table)

    test_rows = second.trained.prepared.test
    reloaded = load_spark_model(config.tracking, "1")
    assert predictions(reloaded, test_rows) == predictions(first.trained.model, test_rows)

    moved = promote(config.tracking, "3")
    assert (moved.version, moved.replaced, moved.previous) == ("3", "1", "1")
    versions = {v.version: v for v in list_versions(config.tracking)}
    assert versions["3"].aliases == [CHAMPION]  # the challenger it was is promoted, not kept twice
    assert versions["1"].aliases == [PREVIOUS]  # the champion it replaced, for a rollback
    champion = load_spark_model(config.tracking, "@champion")
    assert predictions(champion, test_rows) == predictions(third.trained.model, test_rows)

    back = rollback(config.tracking)
    assert (back.version, back.replaced) == ("1", "3")
    assert {v.version: v.aliases for v in list_versions(config.tracking)} == {"1": [CHAMPION], "2": [], "3": []}
    with pytest.raises(RegistryError, match=r"rollback: 'fraud' has no @previous version"):
        rollback(config.tracking)
    registry = mlflow.MlflowClient(tracking_uri=config.tracking.uri)
    experiment = registry.get_experiment_by_name(config.tracking.experiment)
    assert experiment is not None
    moves = registry.search_runs(
        [experiment.experiment_id], "tags.kind = 'alias-move'", order_by=["attributes.start_time ASC"]
    )
    assert [
        (run.data.params["action"], run.data.params["from_version"], run.data.params["to_version"])
        for run in moves
    ] == [("promote", "1", "3"), ("rollback", "3", "1")]

    with pytest.raises(RegistryError, match=r"--version 9: 'fraud' has versions \['1', '2', '3'\]"):
        promote(config.tracking, "9")
