"""What the deployed app is told: plain frozen dataclasses, built from the config by ``serving.deploy``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import TrackingConfig
from serving._experiment import ExperimentRules
from serving._registry import ModelSource

STATE_NAMESPACE = "pipeline-serve"


@dataclass(frozen=True)
class VariantSettings:
    source: ModelSource
    weight: float
    replicas: int = 1
    autoscaling: dict[str, Any] | None = None
    cpus: float = 0.0
    # Scored by Spark (no ONNX graph passed the parity gate): a deployment of its own, reached through a
    # handle, so that no ingress replica starts a JVM. Every other variant scores inside the ingress.
    remote: bool = False


@dataclass(frozen=True)
class WatchSettings:
    """The app acting on its experiment by itself: where the evidence is, how to judge it, what it may do."""

    app_name: str
    tracking: TrackingConfig
    log_path: str
    feedback_path: str
    rules: ExperimentRules
    auto_promote: bool
    auto_rollback: bool
    check_seconds: float
    weights: dict[str, float] = field(default_factory=dict)  # the variants' configured weights: the split's check


@dataclass(frozen=True)
class AppSettings:
    """Everything the ingress needs."""

    app_name: str
    model_name: str
    variants: dict[str, VariantSettings]
    sticky_key: str | None = None
    shadow: str | None = None
    token_sha256: str | None = None  # the admin routes exist only when a token is configured
    max_batch_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    refresh_seconds: float = 1.0
    variant_timeout_s: float = 30.0  # a request's wait for a Spark-scored variant
    ingress_replicas: int = 2
    ingress_autoscaling: dict[str, Any] | None = None
    max_replicas_per_node: int | None = None
    max_ongoing_requests: int = 64
    scorer_threads: int = 1
    data_roots: tuple[str, ...] = ()
    config_file: str | None = None  # the YAML `POST /train` jobs start from
    dashboard_url: str | None = None  # Ray Jobs are submitted through the dashboard
    jobs_dir: str | None = None  # where training jobs write their outcome (JSON)
    python: str = sys.executable
    algorithms: tuple[str, ...] = ()
    prediction_log: str | None = None  # the Delta table of answered predictions; None: not logged
    log_flush_seconds: float = 5.0
    log_max_buffer_rows: int = 100_000
    log_wait_for_disk: bool = False
    log_write_ahead: str | None = None  # the replicas' local write-ahead folder (None: the local log's _wal)
    feedback: str | None = None  # the Delta table of outcomes (POST /feedback); None: no prediction log
    feedback_lookback_days: int = 30
    watch: WatchSettings | None = None  # experiment.auto_promote or auto_rollback

    @property
    def state_name(self) -> str:
        return state_actor_name(self.app_name)

    @property
    def initial_weights(self) -> dict[str, float]:
        return {name: variant.weight for name, variant in self.variants.items()}


def state_actor_name(app_name: str) -> str:
    """The name of the app's ServeState actor (in STATE_NAMESPACE)."""
    return f"{app_name}-state"
