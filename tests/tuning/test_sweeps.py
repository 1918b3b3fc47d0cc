"""Ray Tune sweeps through the real CLI: each in a fresh process with its own Ray, one Spark app per sweep."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import pyarrow.fs as pafs
import pytest

from pipeline.storage import filesystem, parse_location
from tests.conftest import PROJECT_ROOT, S3_SECRET, cli_environment, run_cli

# Starts engines of its own: left out of the quick loop (`pytest`), run by .ci/run.
pytestmark = pytest.mark.extended

BASE = """\
root: .
ray: {{dashboard: false, num_cpus: 3}}
spark: {{executor_memory: 1g, configs: {{spark.sql.shuffle.partitions: 4, spark.ui.showConsoleProgress: false}}}}
data:
  source: {{path: data/t}}
  label: label
  ingest: {{generate: {{generator: classification, rows: 3000, seed: 3}}}}
model: {{algorithm: {algorithm}, hyperparameters: {hyperparameters}}}
tracking: {{uri: "sqlite:///mlruns/mlflow.db", experiment: sweeps, registered_model: swept}}
tuning:
{tuning}
"""


def write_config(root: Path, tuning: str, algorithm: str = "random_forest", hyperparameters: str = "{}") -> Path:
    path = root / "job.yaml"
    tuning += "  name: sweeps-sweep\n"
    path.write_text(BASE.format(tuning=tuning, algorithm=algorithm, hyperparameters=hyperparameters))
    return path


def recorded_finished(fs: pafs.FileSystem, experiment: str) -> set[str]:
    """Ids of the trials Tune's saved experiment state (in ``experiment`` on ``fs``: a folder or a bucket
    prefix) records as TERMINATED (empty while none is, or while the file is being rewritten)."""
    with contextlib.suppress(OSError):
        for info in fs.get_file_info(pafs.FileSelector(experiment, allow_not_found=True)):
            if not (info.base_name.startswith("experiment_state-") and info.base_name.endswith(".json")):
                continue
            with contextlib.suppress(OSError, ValueError, KeyError, IndexError, TypeError):
                state = json.loads(fs.open_input_stream(info.path).read())
                trials = [json.loads(item[0]) for item in state["trial_data"]]
                return {trial["trial_id"] for trial in trials if trial["status"] == "TERMINATED"}
    return set()


def trial_results(fs: pafs.FileSystem, experiment: str) -> dict[str, bytes]:
    """Each trial folder's result.json, by folder name."""
    results = {}
    for info in fs.get_file_info(pafs.FileSelector(experiment, allow_not_found=True)):
        result = f"{info.path}/result.json"
        if info.type == pafs.FileType.Directory and fs.get_file_info(result).type == pafs.FileType.File:
            results[info.base_name] = fs.open_input_stream(result).read()
    return results


def child_runs(root: Path) -> list[Any]:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("sweeps")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    return [run for run in runs if run.data.tags.get("trial_id")]


# A grid sweep's concurrency, its one Spark app, its MLflow records and plots and the refit best are
# asserted on the sweep tests/test_api.py runs through the notebook (the CLI's `tune` is a thin caller of
# the same `run_sweep`); the sweeps here exercise the CLI's own paths: `run` on a missing table, random
# search with ASHA, resume, failures.


# About 7 minutes on a slow machine (2026-12-05).
def test_random_model_selection_on_three_classes_ranks_by_f1_honours_samples_and_bounds(tmp_path: Path) -> None:
    # Wine's three classes: the sweep is judged by F1, and an AUC is refused before any trial. Forests of
    # one split cannot name all three cultivars, so logistic regression wins and its multinomial refit
    # (the path that differs from the binary one) is the one run.
    config = write_config(
        tmp_path,
        "  search: random\n  num_samples: 5\n  max_concurrent_trials: 2\n"
        "  early_stopping: {rungs: 2, reduction_factor: 2, algorithm_budgets: {random_forest: iterations}}\n"
        "  algorithms:\n"
        "    logistic_regression: {regParam: {loguniform: [0.0001, 0.1]}, maxIter: {randint: [5, 20]}}\n"
        "    random_forest: {numTrees: {randint: [2, 8]}, maxDepth: {choice: [1]}}\n",
        # As in config/pipeline.yaml: the configured model's hyperparameters are not the first
        # algorithm's (they once reached logistic regression and stopped the sweep: KeyError numTrees).
        hyperparameters="{numTrees: 5, maxDepth: 3}",
    )
    config.write_text(config.read_text().replace("generator: classification, rows: 3000", "generator: wine"))
    refused = run_cli("run", "--config", str(config), env={"PIPELINE__TUNING__METRIC": "auc_roc"})
    assert refused.returncode == 2, refused.stderr[-4000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("config error: tuning.metric = 'auc_roc': the label 'label' has 3 classes"), last
    assert "Traceback" not in refused.stderr and not (tmp_path / "ray_results" / "sweeps-sweep").exists()
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "model:         swept version 1 alias @champion" in result.stdout
    trials = child_runs(tmp_path)
    assert len(trials) == 5
    assert all("f1" in r.data.metrics and "auc_roc" not in r.data.metrics for r in trials)
    algorithms = {r.data.params["algorithm"] for r in trials}
    assert algorithms == {"logistic_regression", "random_forest"}
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert client.get_run(trials[0].data.tags["mlflow.parentRunId"]).data.params["metric"] == "f1"
    (version,) = client.search_model_versions("name = 'swept'")
    assert client.get_run(str(version.run_id)).data.params["algorithm"] == "logistic_regression"
    # ASHA: each trial reports once per rung: logistic regression on half the training frame, then all
    # of it (the default data budget); the forest with half its trees, then all of them.
    results = [
        json.loads(line)
        for path in (tmp_path / "ray_results" / "sweeps-sweep").glob("*/result.json")
        for line in path.read_text().splitlines()
    ]
    assert {r["training_iteration"] for r in results} == {1, 2}
    budgets: dict[str, set[float]] = {}
    for report in results:
        budgets.setdefault(report["config"]["algorithm"], set()).add(report["budget"])
    assert budgets["logistic_regression"] == {0.5, 1.0}, budgets
    assert all(budget >= 1 and budget == int(budget) for budget in budgets["random_forest"]), budgets
    for run in trials:
        params = run.data.params
        if params["algorithm"] == "logistic_regression":
            assert 0.0001 <= float(params["hp.regParam"]) <= 0.1 and 5 <= int(params["hp.maxIter"]) < 20
        else:
            assert 2 <= int(params["hp.numTrees"]) < 8 and params["hp.maxDepth"] == "1"


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # MLlib rejects the binomial family with the identity link; the grid's points are not pre-screened.
    config = write_config(
        tmp_path,
        "  search: grid\n  space: {family: [gaussian, binomial], link: [identity]}\n",
        algorithm="glm",
    )
    text = config.read_text().replace("generator: classification", "generator: regression")
    config.write_text(text + "evaluation: {cv_folds: 2}\n")  # trials judged over 2 folds
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 0, result.stderr[-4000:]
    trials = {r.data.params["hp.family"]: r for r in child_runs(tmp_path)}
    assert trials["binomial"].info.status == "FAILED"
    assert "identity" in trials["binomial"].data.tags["error"]
    # MLlib's refusal is not retried (tuning.max_failures, 3 by default, is for lost workers and nodes): the
    # trial ran once, reported its error once, and Tune has no failure of it to retry.
    failed_id = trials["binomial"].data.tags["trial_id"]
    (failed_trial,) = (tmp_path / "ray_results" / "sweeps-sweep").glob(f"*{failed_id}*")
    reports = [json.loads(line) for line in (failed_trial / "result.json").read_text().splitlines()]
    assert [report.get("trial_error") for report in reports] == [trials["binomial"].data.tags["error"]], reports
    assert not (failed_trial / "error.txt").exists()
    assert trials["gaussian"].info.status == "FINISHED" and "rmse" in trials["gaussian"].data.metrics
    # The refit logs the winner's CV from its trial (the same folds), not from fitting them again.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (version,) = client.search_model_versions("name = 'swept'")
    refit = client.get_run(str(version.run_id)).data.metrics
    winner = trials["gaussian"].data.metrics
    assert refit["cv_rmse_mean"] == winner["rmse"] and refit["cv_rmse_std"] == winner["rmse_std"], (refit, winner)
    assert "model:         swept version 1" in result.stdout
    assert "failed" in result.stdout  # the leaderboard shows it
    assert "Traceback" not in result.stderr  # the failure is told in lines, not with Ray's traceback
    # No max_concurrent_trials: one trial per executor core (the config's one executor has one).
    assert "1 trial(s) at a time: one per executor core Spark has" in result.stderr
    assert "ingested 3000 rows into" in result.stdout  # by the sweep's own Spark actor


def test_a_sweep_where_every_trial_fails_ends_with_one_line_naming_the_trial(tmp_path: Path) -> None:
    # The symptom was `error: TuneError: Traceback ...`: the user must get MLlib's reason instead.
    config = write_config(tmp_path, "  search: grid\n  space: {family: [binomial], link: [identity]}\n", "glm")
    config.write_text(config.read_text().replace("generator: classification", "generator: regression"))
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 1, result.stderr[-4000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no trial of 'sweeps-sweep' succeeded: trial "), last
    point = '(glm, {"family": "binomial", "link": "identity"}) failed: IllegalArgumentException: '
    assert point in last and "identity link" in last.partition(point)[2], last  # MLlib's own reason
    assert "Traceback" not in result.stderr and "TuneError" not in last
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert client.search_model_versions("name = 'swept'") == []  # nothing registered
    (trial,) = child_runs(tmp_path)
    assert trial.info.status == "FAILED" and trial.data.tags["error"] in last


# Two CLI processes: about 6 minutes on a slow machine (2026-12-05).
def test_resume_from_a_bucket_finishes_only_unfinished_trials(tmp_path: Path, bucket: str) -> None:
    """Tune's state in a bucket (tuning.storage: s3://..., on moto's S3 API): the driver killed mid-sweep,
    ``tune --resume`` finds the sweep there and runs only what was not finished. (Local storage differs only in
    the filesystem: tests/tuning/test_storage runs both through the same calls; every other sweep is local.)"""
    config = write_config(
        tmp_path,
        f"  search: grid\n  space: {{numTrees: [2, 3, 4, 5]}}\n  max_concurrent_trials: 1\n"
        f"  storage: s3://{bucket}/tune\n",
    )
    fs, experiment = filesystem(parse_location(f"s3://{bucket}/tune/sweeps-sweep", "tuning.storage"))
    said = tmp_path / "run-stderr.txt"
    with said.open("w") as stderr:
        process = subprocess.Popen(  # `run`: its Spark actor ingests the missing table first
            [sys.executable, "-m", "pipeline", "run", "--config", str(config)],
            cwd=PROJECT_ROOT,
            env=cli_environment(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        # The bound only turns a hang into a failure (run_cli's own): on a slow machine with the other worker
        # busy, starting Ray and Spark and ingesting the table took over the 300 s this once allowed.
        deadline = time.monotonic() + 900
        finished: set[str] = set()
        while time.monotonic() < deadline and not finished and process.poll() is None:
            time.sleep(0.5)
            finished = recorded_finished(fs, experiment)
        finished = finished or recorded_finished(fs, experiment)  # saved just before the process ended
        assert finished, f"no trial recorded finished (exit code {process.poll()}): {said.read_text()[-3000:]}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the driver dies (with its local Ray) mid-sweep
        process.wait(timeout=60)
    assert not (tmp_path / "ray_results").exists()  # Tune's state went to the bucket only
    # What a resume must keep: the trials Tune's saved state records as finished at the kill (the sweep
    # saves it every few seconds; killed between two saves, a trial that had just finished is run again).
    finished |= recorded_finished(fs, experiment)  # saved again before the kill (or being rewritten: as before)
    done_before = {
        name: text
        for name, text in trial_results(fs, experiment).items()
        if any(trial_id in name for trial_id in finished)
    }
    assert len(done_before) == len(finished), (finished, done_before)

    resumed = run_cli("tune", "--config", str(config), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "4 trials" in resumed.stdout and f"s3://{bucket}/tune/sweeps-sweep" in resumed.stdout
    after = trial_results(fs, experiment)
    for trial_dir, text in done_before.items():
        assert after[trial_dir] == text  # not rerun
    assert len(child_runs(tmp_path)) == 4
    # The bucket's keys came from the environment: in no output, log or MLflow record of either run.
    store = (tmp_path / "mlruns" / "mlflow.db").read_bytes().decode("latin-1")
    assert not [text for text in (said.read_text(), resumed.stdout, resumed.stderr, store) if S3_SECRET in text]


def test_bad_data_stops_the_sweep_with_one_clear_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "  search: grid\n  space: {numTrees: [3]}\n")
    # `run` ingests the missing table in the sweep's Spark actor, which then finds no such label.
    result = run_cli("run", "--config", str(config), env={"PIPELINE__DATA__LABEL": "is_fraud"})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data.label = 'is_fraud': no such column"), last
    assert "Traceback" not in result.stderr
