"""The README's main command, `run`, and the registry commands, through the real CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.conftest import PROJECT_ROOT, run_cli


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


def test_run_then_models_then_promote(tmp_path: Path) -> None:
    env = small_run_env(tmp_path)
    run = run_cli("run", "--config", "config/pipeline.yaml", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"ingested 4000 rows into {tmp_path}/data/demo/transactions: Delta version 0" in run.stdout
    assert "model:         demo-classifier version 1 alias @champion" in run.stdout
    assert "(Delta version 0), " in run.stdout
    assert "auc_roc" in run.stdout and "Inferred feature spec" in run.stdout
    assert "Fitting random_forest" in run.stderr  # progress

    models = run_cli("models", "--config", "config/pipeline.yaml", env=env)
    assert models.returncode == 0, models.stderr
    assert "v1" in models.stdout and "@champion" in models.stdout and "delta v0" in models.stdout

    promoted = run_cli("promote", "--config", "config/pipeline.yaml", "--version", "1", env=env)
    assert promoted.stdout.strip() == "demo-classifier: @champion -> version 1 (was version 1)"
    missing = run_cli("promote", "--config", "config/pipeline.yaml", "--version", "7", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: --version 7: 'demo-classifier' has versions ['1']"


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
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    status = response.status
            except OSError:
                time.sleep(1)
        assert status == 200
        assert (tmp_path / "mlruns" / "mlflow.db").exists()
        workers = psutil.Process(process.pid).children(recursive=True)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == []
