"""A Prometheus server for one machine: the scrape configuration of the Ray cluster and the serving app.

Ray's metrics agent on each node exports Ray's and Serve's metrics (replicas, requests, latencies), and
the head writes the nodes' addresses to a service-discovery file that Prometheus re-reads as nodes come
and go. The app's own counters (requests per variant, version, role and status) are on its ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig

# Written by Ray's head (the folder of its default temp dir), listing every node's metrics agent.
RAY_DISCOVERY_FILE = Path("/tmp/ray/prom_metrics_service_discovery.json")


@dataclass(frozen=True)
class PrometheusFiles:
    """Where the server keeps its configuration and its time series (under the project's ``.pipeline``)."""

    config_file: Path
    storage: Path


def scrape_config(
    config: PipelineConfig, ray_targets: Path = RAY_DISCOVERY_FILE, interval_seconds: float = 5.0
) -> dict[str, Any]:
    """Prometheus's configuration: Ray's nodes (file discovery) and the serving app's ``/metrics``."""
    interval = f"{interval_seconds:g}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": "ray", "file_sd_configs": [{"files": [str(ray_targets)], "refresh_interval": interval}]},
            {
                "job_name": "pipeline-app",
                "metrics_path": "/metrics",
                "static_configs": [
                    {
                        "targets": [f"{config.serving.local_host}:{config.serving.port}"],
                        "labels": {"app": config.serving.app_name},
                    }
                ],
            },
        ],
    }


def write_prometheus_config(
    config: PipelineConfig, ray_targets: Path = RAY_DISCOVERY_FILE, interval_seconds: float = 5.0
) -> PrometheusFiles:
    """Write the configuration under ``<root>/.pipeline/prometheus``; the files a server is started with."""
    import yaml

    folder = config.root / ".pipeline" / "prometheus"
    files = PrometheusFiles(config_file=folder / "prometheus.yml", storage=folder / "data")
    files.storage.mkdir(parents=True, exist_ok=True)
    files.config_file.write_text(
        yaml.safe_dump(scrape_config(config, ray_targets, interval_seconds), sort_keys=False)
    )
    return files


def prometheus_command(binary: str, files: PrometheusFiles, listen: str) -> list[str]:
    """The command line of a Prometheus server on these files, listening on ``listen`` (host:port)."""
    return [
        binary,
        f"--config.file={files.config_file}",
        f"--storage.tsdb.path={files.storage}",
        f"--web.listen-address={listen}",
        "--storage.tsdb.retention.time=7d",
    ]
