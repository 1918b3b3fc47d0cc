"""The application builder a KubeRay RayService names in its serveConfigV2 (`serving:app_from_args`), run by
Ray Serve for real: given the pipeline config as its args, the app it builds loads the registry's version
and answers over HTTP. (What Serve does with serveConfigV2 on a cluster: import the path, call it with the
args, run the application; the manifests themselves are checked in tests/k8s.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.runtime import free_port
from serving import app_from_args, undeploy, wait_ready
from tests.conftest import example_config

# Starts engines of its own: left out of the quick loop (`pytest`), run by .ci/run.
pytestmark = pytest.mark.extended


def test_serve_runs_the_app_that_app_from_args_builds_from_a_config_mapping(
    trainings: Any, lake: Path, tmp_path: Path
) -> None:
    from ray import serve

    port = free_port()
    tracking = {
        "uri": f"sqlite:///{tmp_path}/mlflow.db",
        "artifact_location": str(tmp_path / "art"),
        "registered_model": "built",
        "experiment": "built",
    }
    serving = {"port": port, "app_name": "built", "ingress_replicas": 1, "variants": {"champion": {"weight": 1.0}}}
    config = example_config("logistic_regression", lake, tracking=tracking, serving=serving)
    registered = trainings.train_and_register(config).registration
    # The mapping a serveConfigV2 carries: the config as plain data (paths absolute, as in config/k8s.yaml).
    raw = config.model_dump(mode="json", exclude_none=True)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(app_from_args({"config": raw}), name="built", route_prefix="/", blocking=False)
    try:
        health = wait_ready(f"http://127.0.0.1:{port}/health", timeout=180)
        assert health["variants"]["champion"]["version"] == registered.version
        record = {item["name"]: None for item in health["variants"]["champion"]["inputs"]}
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"instances": [record]}, timeout=30)
        assert answer.status_code == 200 and answer.json()["version"] == registered.version, answer.text
    finally:
        undeploy("built")
        serve.shutdown()  # the next app's HTTP port is taken only by a new Serve instance
