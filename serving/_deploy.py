"""Deploy, wait for and tear down the Serve app on a running Ray cluster."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from serving._app import AppSettings, VariantSettings, build_application, kill_state
from serving._registry import ModelSource


class ServingError(PipelineError):
    """The app could not be deployed or did not become ready; the message says what to do."""


@dataclass(frozen=True)
class Endpoints:
    api: str
    docs: str
    health: str
    admin: bool
    variants: dict[str, Any] = field(default_factory=dict)  # /health's per-variant status after deploying


def app_settings(
    config: PipelineConfig,
    environ: dict[str, str] | None = None,
    config_file: str | None = None,
    dashboard_url: str | None = None,
) -> AppSettings:
    """The app's settings from the config; the admin token is read from ``serving.token_env``."""
    from pipeline.algorithms import ALGORITHMS

    serving = config.serving
    token = (environ if environ is not None else os.environ).get(serving.token_env, "")
    variants = {}
    for name, variant in serving.variants.items():
        alias = None if variant.version is not None else (variant.alias or name)
        source = ModelSource(
            tracking_uri=config.tracking.uri,
            model_name=config.tracking.registered_model,
            alias=alias,
            version=str(variant.version) if variant.version is not None else None,
        )
        autoscaling = variant.autoscaling.model_dump() if variant.autoscaling is not None else None
        variants[name] = VariantSettings(source, variant.weight, variant.replicas, autoscaling, variant.cpus)
    return AppSettings(
        app_name=serving.app_name,
        model_name=config.tracking.registered_model,
        variants=variants,
        sticky_key=serving.sticky_key,
        shadow=serving.shadow,
        token_sha256=hashlib.sha256(token.encode()).hexdigest() if token else None,
        max_batch_rows=serving.max_batch_rows,
        max_body_bytes=serving.max_body_bytes,
        refresh_seconds=serving.refresh_seconds,
        ingress_replicas=serving.ingress_replicas,
        max_ongoing_requests=serving.max_ongoing_requests,
        data_roots=tuple(str(root) for root in serving.data_roots),
        config_file=str(Path(config_file).resolve()) if config_file else None,
        dashboard_url=dashboard_url,
        algorithms=tuple(ALGORITHMS),
    )


def endpoints(config: PipelineConfig, admin: bool) -> Endpoints:
    host = config.serving.host if config.serving.host not in ("0.0.0.0", "::") else "127.0.0.1"
    base = f"http://{host}:{config.serving.port}"
    return Endpoints(api=base, docs=f"{base}/docs", health=f"{base}/health", admin=admin)


def deploy(
    config: PipelineConfig,
    environ: dict[str, str] | None = None,
    ready_timeout: float = 180.0,
    config_file: str | None = None,
    dashboard_url: str | None = None,
) -> Endpoints:
    """Start Serve's HTTP proxy on the configured host/port, deploy the app, wait until /health is ready.
    ``config_file`` and ``dashboard_url`` enable ``POST /train`` (Ray Jobs need the dashboard)."""
    from ray import serve

    settings = app_settings(config, environ, config_file, dashboard_url)
    serve.start(http_options={"host": config.serving.host, "port": config.serving.port})
    serve.run(build_application(settings), name=settings.app_name, route_prefix="/", blocking=False)
    urls = endpoints(config, admin=settings.token_sha256 is not None)
    health = wait_ready(urls.health, ready_timeout)
    return Endpoints(urls.api, urls.docs, urls.health, urls.admin, health.get("variants", {}))


def wait_ready(health_url: str, timeout: float) -> dict[str, Any]:
    """Poll /health until every variant has loaded its model, or is waiting for an alias the registry
    does not have yet (reported, not fatal); on timeout, say which variant is not ready and why."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health_url, timeout=10) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            if error.code == 503:
                last = json.loads(error.read() or b"{}")
                variants = last.get("variants", {}).values()
                if variants and all(info.get("ready") or info.get("missing") for info in variants):
                    return last
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    waiting = {name: info.get("error") or "loading" for name, info in last.get("variants", {}).items()
               if not info.get("ready")}  # fmt: skip
    raise ServingError(f"the app was not ready after {timeout:.0f} s; variants not ready: {waiting or 'unknown'}")


def undeploy(app_name: str) -> bool:
    """Delete the app and its state actor; False when there was no such app."""
    from ray import serve

    known = app_name in serve.status().applications
    if known:
        serve.delete(app_name)
    kill_state(app_name)
    return known
