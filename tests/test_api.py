"""The Python API (``from pipeline import load_config, ingest, run_sweep, train``).

The config part runs without an engine; the sweep part executes notebooks/model_exploration.ipynb on a
real Jupyter kernel, which starts its own Ray, Spark (RayDP) and sqlite MLflow, as a user's would.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import nbformat
import pytest
from nbclient import NotebookClient

import pipeline
from tests.conftest import PROJECT_ROOT, RAY_SESSION_VARIABLES

CONFIG = PROJECT_ROOT / "config" / "pipeline.yaml"


def test_importing_pipeline_loads_no_engine() -> None:
    probe = "import sys, pipeline; print(sorted(m for m in ('ray', 'pyspark', 'mlflow') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert json.loads(loaded.replace("'", '"')) == []
    assert {"load_config", "ingest", "run_sweep", "train", "SweepResult", "TrainResult"} <= set(pipeline.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        pipeline.nothing  # noqa: B018


def test_overrides_merge_into_a_section_and_a_dotted_key_replaces_it() -> None:
    config = pipeline.load_config(
        CONFIG,
        overrides={
            "spark": {"num_executors": 2},
            "tuning.algorithms": {"logistic_regression": {"regParam": [0.1, 1.0]}},
            "model.hyperparameters": {"numTrees": 5},
        },
        environ={},
    )
    assert config.spark.num_executors == 2
    assert config.spark.executor_memory == "2g"  # the rest of the section is the file's
    assert config.tuning is not None and list(config.tuning.algorithms or {}) == ["logistic_regression"]
    assert config.model.hyperparameters == {"numTrees": 5}  # replaced whole: no maxDepth from the file


def test_overrides_win_over_the_environment_and_the_file_is_untouched() -> None:
    before = CONFIG.read_text()
    config = pipeline.load_config(
        CONFIG, overrides={"spark.num_executors": 3}, environ={"PIPELINE__SPARK__NUM_EXECUTORS": "2"}
    )
    assert config.spark.num_executors == 3
    assert CONFIG.read_text() == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"spark.num_executors": "many"},
            "pipeline.yaml: spark.num_executors = 'many' (from overrides): Input should",
        ),
        ({"spark": {"executors": 2}}, "spark.executors = 2 (from overrides): unknown key; allowed keys: app_name"),
        ({"tuning.metric": "accuracy_of_doom"}, "tuning.metric = 'accuracy_of_doom' (from overrides)"),
        ({"model.algorithm": "svm"}, "model.algorithm = 'svm' (from overrides)"),
        ({"": 1}, "overrides key '': must be a field name such as 'spark.num_executors'"),
    ],
)
def test_a_bad_override_is_a_one_line_config_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(pipeline.ConfigError) as raised:
        pipeline.load_config(CONFIG, overrides=overrides, environ={})
    assert len(raised.value.problems) == 1 and "\n" not in raised.value.problems[0]
    assert message in raised.value.problems[0]


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [output["data"][kind] for output in cell.get("outputs", []) if kind in output.get("data", {})]


@pytest.mark.extended  # a kernel with its own Ray and Spark
def test_the_exploration_notebook_runs_a_sweep_shows_its_leaderboard_and_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A project of its own: the notebook reads ../config/pipeline.yaml, whose root is the project.
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "config").mkdir()
    shutil.copy(PROJECT_ROOT / "notebooks" / "model_exploration.ipynb", tmp_path / "notebooks")
    shutil.copy(CONFIG, tmp_path / "config")
    for name in RAY_SESSION_VARIABLES:  # the kernel gets a user's environment, not this session's Ray's
        monkeypatch.delenv(name, raising=False)
    # Small and quiet for CI, through the environment the kernel inherits (the notebook sets no size).
    for key, value in {
        "DATA__INGEST__GENERATE__ROWS": "4000",
        "RAY__DASHBOARD": "false",
        "SPARK__EXECUTOR_MEMORY": "1g",
    }.items():
        monkeypatch.setenv(f"PIPELINE__{key}", value)
    notebook = nbformat.read(tmp_path / "notebooks" / "model_exploration.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "saved with outputs"
    )

    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path / "notebooks")}}
    ).execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    leaderboard = next(cell for cell in code if cell.source.strip() == "result.leaderboard")
    table = "".join(_outputs(leaderboard, "text/html"))
    assert table.count("<tr>") == 1 + 5, table  # the header and five trials
    assert "logistic_regression" in table and "random_forest" in table and "hp.regParam" in table
    images = [image for cell in code for image in _outputs(cell, "image/png")]
    assert len(images) == 2 and all(len(image) > 5000 for image in images)  # base64 PNGs of the two plots

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("demo")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    sweeps = [run for run in runs if run.data.tags.get("kind") == "sweep"]
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    parent = sweeps[0].info.run_id
    plots = {artifact.path: artifact.file_size for artifact in client.list_artifacts(parent, "plots")}
    assert set(plots) == {"plots/trials.png", "plots/hyperparameters.png"} and all(
        (size or 0) > 5000 for size in plots.values()
    )
    assert sweeps[0].data.tags["data.delta_version"] == "0"
    assert sweeps[0].data.metrics["trials"] == 5 and sweeps[0].data.metrics["failed_trials"] == 0
    # Where the time went, on the parent run. The search runs from the first features' start (before Tune
    # starts: they overlap its start-up by design; how much is a benchmark's question) to the last trial.
    metrics = sweeps[0].data.metrics
    seconds = {key: metrics[f"{key}_seconds"] for key in ("startup", "features", "trials", "search")}
    assert all(value > 0 for value in seconds.values()), seconds
    assert seconds["trials"] <= seconds["search"] < seconds["trials"] + 120, seconds
    assert {"leaderboard.csv", "best_config.yaml"} <= {item.path for item in client.list_artifacts(parent)}
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent]
    trials = [run for run in children if "trial_id" in run.data.tags]
    assert len(trials) == 5
    assert all(run.info.status == "FINISHED" and "auc_roc" in run.data.metrics for run in trials)
    params = [run.data.params for run in trials]
    points = {(param["algorithm"], param.get("hp.regParam", param.get("hp.maxDepth"))) for param in params}
    assert points == {
        ("logistic_regression", "0.001"),
        ("logistic_regression", "0.01"),
        ("logistic_regression", "0.1"),
        ("random_forest", "4"),
        ("random_forest", "8"),
    }
    assert len({run.data.tags["spark_app"] for run in trials}) == 1  # every trial served by one Spark app
    # Two at a time: some trials' lifetimes (from Tune's own records) overlap.
    results = [
        json.loads(line)
        for path in (tmp_path / "ray_results").glob("*/*/result.json")
        for line in path.read_text().splitlines()
    ]
    windows = sorted((r["timestamp"] - r["time_total_s"], r["timestamp"]) for r in results)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(windows))
    (refit,) = [run for run in children if "trial_id" not in run.data.tags]
    assert refit.data.tags["data.delta_version"] == "0" and "test_auc_roc" in refit.data.metrics
    assert [str(version.version) for version in client.search_model_versions("name = 'demo-classifier'")] == ["1"]
    printed = "".join(output.get("text", "") for cell in code for output in cell.get("outputs", []))
    assert "registered demo-classifier version 1" in printed and parent in printed
    assert "wrote 4000 rows to" in printed  # the missing table, ingested by the sweep's own Spark
