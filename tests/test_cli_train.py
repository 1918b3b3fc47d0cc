"""The README's main command, `run`, and the registry commands, through the real CLI."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import psutil
import pytest

from pipeline._console import Console
from pipeline.config import load_config
from pipeline.jobs import train_and_register
from tests.conftest import PROJECT_ROOT, run_cli

# Starts engines of its own: left out of the quick loop (`pytest`), run by .ci/run.
pytestmark = pytest.mark.extended


def small_run_env(root: Path) -> dict[str, str]:
    """config/pipeline.yaml as shipped, but rooted in ``root`` with small data and a small forest,
    training once (its tuning section switched off; the sweep is tested in tests/tuning)."""
    return {
        "PIPELINE__ROOT": str(root),
        "PIPELINE__TUNING": "",
        "PIPELINE__RAY__DASHBOARD": "false",
        "PIPELINE__SPARK__EXECUTOR_MEMORY": "1g",
        "PIPELINE__DATA__INGEST__GENERATE__ROWS": "4000",
        "PIPELINE__MODEL__HYPERPARAMETERS__NUMTREES": "10",
    }


# What promote and rollback print without the token: no running app is told to reload.
RELOAD_HINT = (
    "a running app takes the new aliases on POST http://127.0.0.1:8000/admin/reload (with the token of "
    "PIPELINE_SERVE_TOKEN)"
)


def registry_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline ARGS`` for a registry command that starts no engine (promote, rollback,
    models, a compare refused before Spark starts): the CLI's own ``main`` in this process, with ``env``
    as the environment, which spares a Python start-up (~4 s) per call."""
    from pipeline.cli import main

    capsys.readouterr()  # what earlier calls printed
    with monkeypatch.context() as patched:
        for key, value in env.items():
            patched.setenv(key, value)
        patched.chdir(PROJECT_ROOT)
        code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def test_run_then_models_then_promote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    env = small_run_env(tmp_path)
    registry = functools.partial(registry_cli, capsys, monkeypatch, env)
    run = run_cli("run", "--config", "config/pipeline.yaml", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"ingested 4000 rows into {tmp_path}/data/demo/transactions: Delta version 0" in run.stdout
    assert "model:         demo-classifier version 1 alias @champion" in run.stdout
    assert "(Delta version 0), " in run.stdout
    assert "auc_roc" in run.stdout and "Inferred feature spec" in run.stdout
    assert "Fitting random_forest" in run.stderr  # progress

    forest = {key: value for key, value in env.items() if "HYPERPARAMETERS" not in key}
    challenger = {
        **forest,
        "PIPELINE__MODEL__ALGORITHM": "logistic_regression",
        "PIPELINE__MODEL__HYPERPARAMETERS": "{}",
    }
    # The challenger, trained here on the session's Spark: a third Ray and Spark start-up would cost a
    # minute, and what `train` prints is what `run` printed above (`train` runs as a process elsewhere).
    config = load_config(PROJECT_ROOT / "config" / "pipeline.yaml", environ=challenger)
    registered = train_and_register(spark, config, Console(quiet=True)).registration
    assert (registered.model_name, registered.version, registered.alias) == ("demo-classifier", "2", "challenger")
    compared = run_cli("compare", "--config", "config/pipeline.yaml", "--apply", env=env)
    assert compared.returncode == 0, compared.stderr[-3000:]
    lines = compared.stdout.splitlines()
    lines = lines[
        next(i for i, line in enumerate(lines) if line.startswith("a = ")) :
    ]  # after the JVM's own lines
    assert lines[0] == "a = @champion (version 1, random_forest), b = @challenger (version 2, logistic_regression)"
    assert "test rows of" in lines[1] and "(Delta version 0)" in lines[1]
    rows = {line.split()[0]: line for line in lines[3:5]}
    assert "McNemar" in rows["accuracy"] and "paired bootstrap" in rows["auc_roc"]
    assert all(line.endswith(("b better", "a better", "no difference yet")) for line in rows.values())
    # --apply: version 2 replaces the champion only on `b better` for accuracy (the first metric) and on no
    # `a better` elsewhere; which way this data goes is not fixed, so each branch is checked as it comes.
    wins = rows["accuracy"].endswith("b better") and not rows["auc_roc"].endswith("a better")
    decided = [line for line in lines if line.startswith(("promoted: ", "not promoted: "))]
    assert len(decided) == 1, decided
    if wins:
        assert decided[0].startswith("promoted: accuracy: b better by +"), decided
        assert "demo-classifier: @champion -> version 2 (was version 1, now @previous" in compared.stdout
    else:
        assert decided[0].startswith("not promoted: accuracy: "), decided
        promoted = registry("promote", "--config", "config/pipeline.yaml", "--version", "2")
        assert promoted.stdout.splitlines() == [
            "demo-classifier: @champion -> version 2 (was version 1, now @previous: `rollback` restores it)",
            RELOAD_HINT,
        ], promoted.stderr[-2000:]
    rolled = registry("rollback", "--config", "config/pipeline.yaml")
    assert rolled.stdout.splitlines() == [
        "demo-classifier: @champion -> version 1 (rolled back from version 2)",
        RELOAD_HINT,
    ]
    again = registry("rollback", "--config", "config/pipeline.yaml")
    assert again.returncode == 1 and again.stderr.strip() == (
        "error: rollback: 'demo-classifier' has no @previous version (set when a promotion replaces one)"
    )
    not_champion = registry("compare", "--config", "config/pipeline.yaml", "--a", "2", "--b", "1", "--apply")
    assert not_champion.returncode == 1
    assert not_champion.stderr.strip() == "error: --apply: a = 2 is not @champion; promotion replaces the champion"
    store = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = store.get_experiment_by_name("demo")
    assert experiment is not None
    (logged,) = store.search_runs([experiment.experiment_id], "tags.kind = 'comparison'")
    assert logged.data.params["b_version"] == "2" and "auc_roc_p_value" in logged.data.metrics
    assert "comparison.csv" in {item.path for item in store.list_artifacts(logged.info.run_id)}
    unknown = registry("compare", "--config", "config/pipeline.yaml", "--b", "@nope")
    assert unknown.returncode == 1 and unknown.stderr.strip() == (
        "error: @nope: not a version or alias of 'demo-classifier' (versions ['1', '2'], aliases ['@champion'])"
    )

    models = registry("models", "--config", "config/pipeline.yaml")
    assert models.returncode == 0, models.stderr
    assert "v1" in models.stdout and "@champion" in models.stdout and "delta v0" in models.stdout

    promoted = registry("promote", "--config", "config/pipeline.yaml", "--version", "1")
    assert promoted.stdout.splitlines() == ["demo-classifier: @champion -> version 1 (was version 1)", RELOAD_HINT]
    missing = registry("promote", "--config", "config/pipeline.yaml", "--version", "7")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: --version 7: 'demo-classifier' has versions ['1', '2']"


def test_bad_hyperparameter_is_a_config_error_before_any_engine(tmp_path: Path) -> None:
    env = {**small_run_env(tmp_path), "PIPELINE__MODEL__HYPERPARAMETERS__MAXDEPTH": "99"}
    result = run_cli("train", "--config", "config/pipeline.yaml", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "config error: config/pipeline.yaml: model.hyperparameters.maxDepth = 99 "
        "(from env PIPELINE__MODEL__HYPERPARAMETERS__MAXDEPTH): must be <= 30"
    )


def test_mlflow_ui_serves_the_store_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "mlflow-ui",
        "--config",
        "config/pipeline.yaml",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PIPELINE__ROOT": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches every worker
    )
    try:
        status = None
        # Bounds a hang only: with the other test worker starting Ray and Spark on both cores (2026-12-06)
        # the server was not up within 90 s.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    status = response.status
            except OSError:
                time.sleep(1)
        assert status == 200
        assert (tmp_path / "mlruns" / "mlflow.db").exists()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    # Every process of its group (workers, and anything they started, orphaned or not) ends after Ctrl-C.
    # The bound only turns a hang into a failure: a worker outlived 30 s once under the other test worker.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _process_group(process.pid):
        time.sleep(0.5)
    assert _process_group(process.pid) == []


def _process_group(group: int) -> list[str]:
    """The command lines of the live (not zombie) processes of a process group."""
    members = []
    for member in psutil.process_iter(["pid", "status", "cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(member.pid) == group and member.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(" ".join(member.info["cmdline"] or []))
    return members


def test_train_writes_its_outcome_as_json_even_when_it_fails(tmp_path: Path) -> None:
    """`train --result FILE` (what `POST /train` jobs run): a failure is recorded whole, one line, no traceback."""
    import json

    result = tmp_path / "jobs" / "outcome.json"
    env = {**small_run_env(tmp_path), "PIPELINE__SPARK__NUM_EXECUTORS": "-1"}
    failed = run_cli("train", "--config", "config/pipeline.yaml", "--result", str(result), env=env)
    assert failed.returncode == 2, failed.stderr
    outcome = json.loads(result.read_text())
    assert outcome["status"] == "FAILED" and "spark.num_executors = -1" in outcome["error"], outcome
    assert not list(result.parent.glob(".*.partial"))  # written whole, nothing half-written left


def test_spark_that_the_cluster_cannot_hold_ends_within_its_timeout_in_one_line(tmp_path: Path) -> None:
    """16 cores for one executor on a local Ray of this machine's cores: RayDP would wait for its placement
    group for ever; `train` ends after spark.start_timeout_s, naming what was asked and what is free."""
    import json

    result = tmp_path / "outcome.json"
    env = {
        **small_run_env(tmp_path),
        "PIPELINE__SPARK__EXECUTOR_CORES": "16",
        "PIPELINE__SPARK__PLACEMENT_STRATEGY": "PACK",
        "PIPELINE__SPARK__START_TIMEOUT_S": "5",
    }
    started = time.monotonic()
    failed = run_cli("train", "--config", "config/pipeline.yaml", "--result", str(result), env=env, timeout=300)
    elapsed = time.monotonic() - started
    assert failed.returncode == 1, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: spark: no room for 1 executor(s) x 16 core(s), 1g each (placement PACK) "
        "within spark.start_timeout_s = 5 s; the cluster has "
    ), last
    assert " CPU(s) and " in last and "GiB of memory free on 1 node(s)" in last, last
    assert "Traceback" not in failed.stderr
    assert json.loads(result.read_text()) == {"status": "FAILED", "error": last}
    assert elapsed < 240, elapsed  # a bound on the hang, not a speed target: Ray's start and stop included
