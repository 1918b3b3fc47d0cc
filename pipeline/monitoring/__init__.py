"""Monitoring: a Prometheus server scraping the Ray cluster and the serving app (``python -m pipeline
prometheus``)."""

from pipeline.monitoring._prometheus import (
    RAY_DISCOVERY_FILE,
    PrometheusFiles,
    prometheus_command,
    scrape_config,
    write_prometheus_config,
)

__all__ = [
    "RAY_DISCOVERY_FILE",
    "PrometheusFiles",
    "prometheus_command",
    "scrape_config",
    "write_prometheus_config",
]
