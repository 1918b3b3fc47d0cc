"""A real Prometheus server (Debian's package) on the configuration `python -m pipeline prometheus` writes,
scraping a running app and the session's Ray: its query API returns the app's request counters per variant
and Serve's replica metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from ray import serve

from pipeline.monitoring import prometheus_command, write_prometheus_config
from pipeline.runtime import free_port
from serving import deploy, undeploy
from tests.conftest import example_config, stop_process_group


def _ray_targets(folder: Path) -> Path:
    """The session cluster's nodes in the format of Ray's own discovery file (which other Ray clusters
    started on this machine by other tests overwrite)."""
    nodes = [f"{node['NodeManagerAddress']}:{node['MetricsExportPort']}" for node in ray.nodes() if node["Alive"]]
    path = folder / "ray-targets.json"
    path.write_text(json.dumps([{"labels": {"job": "ray"}, "targets": nodes}]))
    return path


def _wait_for(query: Callable[[], list[dict[str, Any]]], ready: Callable[[list[dict[str, Any]]], bool]) -> Any:
    deadline = time.monotonic() + 90
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = query()
        if ready(found):
            return found
        time.sleep(1)
    raise AssertionError(f"not in Prometheus after 90 s: {found}")


@pytest.mark.extended  # a served app and a Prometheus server
def test_prometheus_scrapes_the_apps_counters_per_variant_and_serves_replica_metrics(
    trainings: Any, lake: Path, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is needed (.ci/run installs it)"
    tracking = {
        "uri": f"sqlite:///{tmp_path}/mlflow.db",
        "artifact_location": str(tmp_path / "art"),
        "registered_model": "watched",
        "experiment": "watched",
    }
    serving = {
        "port": free_port(),
        "app_name": "watched",
        "ingress_replicas": 1,
        "variants": {"champion": {"weight": 0.5}, "challenger": {"weight": 0.5}},
    }
    config = example_config("logistic_regression", lake, tracking=tracking, serving=serving)
    for _ in range(2):  # @champion, then @challenger
        trainings.train_and_register(config)
    urls = deploy(config, environ={}, ready_timeout=300)
    listen = f"127.0.0.1:{free_port()}"
    files = write_prometheus_config(config, ray_targets=_ray_targets(tmp_path), interval_seconds=1)
    log = (tmp_path / "prometheus.log").open("w")
    server = subprocess.Popen(
        prometheus_command(binary, files, listen), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        health = httpx.get(urls.health, timeout=30).json()
        record = {item["name"]: None for item in health["variants"]["champion"]["inputs"]}
        answered = [httpx.post(f"{urls.api}/predict", json={"instances": [record]}, timeout=30) for _ in range(40)]
        assert all(answer.status_code == 200 for answer in answered), answered[0].text
        routed = {
            variant: sum(a.json()["variant"] == variant for a in answered)
            for variant in ("champion", "challenger")
        }

        def query(expression: str) -> list[dict[str, Any]]:
            try:
                body = httpx.get(f"http://{listen}/api/v1/query", params={"query": expression}, timeout=10).json()
            except httpx.HTTPError:
                return []
            return list(body.get("data", {}).get("result", []))

        per_variant = _wait_for(
            lambda: query('sum by (variant) (pipeline_requests_total{job="pipeline-app", role="routed"})'),
            lambda found: {r["metric"]["variant"]: int(float(r["value"][1])) for r in found} == routed,
        )
        assert {result["metric"]["variant"] for result in per_variant} == {"champion", "challenger"}
        replicas = _wait_for(
            lambda: query('ray_serve_deployment_replica_healthy{application="watched"}'),
            lambda found: bool(found),
        )
        assert all(result["metric"].get("replica") for result in replicas), replicas
        assert {result["metric"]["job"] for result in replicas} == {"ray"}
    finally:
        stop_process_group(server)
        log.close()
        undeploy(config.serving.app_name)
        serve.shutdown()  # the next app's HTTP port is taken only by a new Serve instance


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_scrape_configuration_names_rays_discovery_file_and_the_apps_metrics(
    host: str, tmp_path: Path
) -> None:
    from pipeline.monitoring import RAY_DISCOVERY_FILE, scrape_config
    from tests.conftest import make_config

    config = make_config(tmp_path, serving={"host": host, "port": 8123})
    scraped = scrape_config(config, interval_seconds=2)
    ray_job, app_job = scraped["scrape_configs"]
    assert ray_job["file_sd_configs"][0]["files"] == [str(RAY_DISCOVERY_FILE)]
    assert app_job["static_configs"][0]["targets"] == ["127.0.0.1:8123"]  # 0.0.0.0 is reached on loopback
    assert scraped["global"]["scrape_interval"] == "2s"
