"""Deploy, wait for and tear down the Serve app on a running Ray cluster."""

from __future__ import annotations

import dataclasses
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
from serving._app import INGRESS_NAME
from serving._assembly import build_application, variant_deployment
from serving._experiment import experiment_rules
from serving._prediction_log import write_ahead_folder
from serving._registry import ModelSource, needs_spark
from serving._settings import AppSettings, VariantSettings, WatchSettings
from serving._state import kill_state


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
        variant_timeout_s=serving.variant_timeout_s,
        ingress_replicas=serving.ingress_replicas,
        ingress_autoscaling=serving.ingress_autoscaling.model_dump() if serving.ingress_autoscaling else None,
        max_replicas_per_node=serving.max_replicas_per_node,
        scorer_threads=serving.scorer_threads or os.cpu_count() or 1,
        max_ongoing_requests=serving.max_ongoing_requests,
        data_roots=tuple(str(root) for root in serving.data_roots),
        config_file=str(Path(config_file).resolve()) if config_file else None,
        dashboard_url=dashboard_url,
        jobs_dir=str(config.root / ".pipeline" / "jobs"),
        algorithms=tuple(ALGORITHMS),
        prediction_log=str(serving.prediction_log.path) if serving.prediction_log.enabled else None,
        log_flush_seconds=serving.prediction_log.flush_seconds,
        feedback=str(serving.feedback.path) if serving.prediction_log.enabled else None,
        feedback_lookback_days=serving.feedback.lookback_days,
        watch=_watch_settings(config),
        log_max_buffer_rows=serving.prediction_log.max_buffer_rows,
        log_wait_for_disk=serving.prediction_log.wait_for_disk,
        log_write_ahead=str(
            serving.prediction_log.write_ahead_path or write_ahead_folder(serving.prediction_log.path, config.root)
        ),
    )


def place_variants(settings: AppSettings) -> AppSettings:
    """Variants whose version is scored by Spark now get a deployment of their own; the rest score inside
    the ingress replicas (an alias that does not exist yet is taken to be ONNX-scored)."""
    variants = {
        name: dataclasses.replace(variant, remote=needs_spark(variant.source))
        for name, variant in settings.variants.items()
    }
    return dataclasses.replace(settings, variants=variants)


def app_from_args(args: dict[str, Any]) -> Any:
    """Ray Serve's application builder for a declarative deployment (KubeRay's ``serveConfigV2``, rendered by
    ``python -m pipeline k8s render``): ``args.config`` is the pipeline config itself, ``args.config_file``
    where the same file is mounted. The token comes from the pod's environment; ``POST /train`` stays off
    (it submits Ray Jobs through a dashboard address, which a cluster's app is not given)."""
    from pipeline.config import config_from_dict

    raw = args.get("config")
    if not isinstance(raw, dict):
        raise ServingError(f"serveConfigV2: args.config = {raw!r}: must be the pipeline config (a mapping)")
    config = config_from_dict(raw, base_dir=Path("/"), origin="serveConfigV2 args.config")
    return build_application(place_variants(app_settings(config, config_file=args.get("config_file"))))


def endpoints(config: PipelineConfig, admin: bool) -> Endpoints:
    base = f"http://{config.serving.local_host}:{config.serving.port}"
    return Endpoints(api=base, docs=f"{base}/docs", health=f"{base}/health", admin=admin)


def deploy(
    config: PipelineConfig,
    environ: dict[str, str] | None = None,
    ready_timeout: float | None = None,
    config_file: str | None = None,
    dashboard_url: str | None = None,
) -> Endpoints:
    """Start Serve's HTTP proxy on the configured host/port, deploy the app, wait until every replica runs
    and /health is ready, within ``ready_timeout`` (default ``serving.ready_timeout_s``). A new app that does
    not get there is deleted again; one deployed over a running app leaves Serve serving the old replicas.
    ``config_file`` and ``dashboard_url`` enable ``POST /train`` (Ray Jobs need the dashboard)."""
    from ray import serve

    timeout = config.serving.ready_timeout_s if ready_timeout is None else ready_timeout
    deadline = time.monotonic() + timeout
    settings = place_variants(app_settings(config, environ, config_file, dashboard_url))
    serve.start(
        proxy_location=config.serving.proxy_location,
        http_options={"host": config.serving.host, "port": config.serving.port},
    )
    was_running = settings.app_name in serve.status().applications
    application = _build_within(settings, timeout, deadline, was_running)
    # Not serve.run: it waits for the app to run with no bound (for ever, when a replica cannot be placed).
    target = serve.RunTarget(application, name=settings.app_name, route_prefix="/")
    serve.run_many([target], wait_for_applications_running=False)
    urls = endpoints(config, admin=settings.token_sha256 is not None)
    try:
        _wait_running(settings, timeout, deadline)
        health = wait_ready(urls.health, max(deadline - time.monotonic(), 1.0))
    except ServingError:
        if not was_running:  # deleted in the background: the one line comes at the timeout, not after a drain
            undeploy(settings.app_name, wait=False)
        raise
    return Endpoints(urls.api, urls.docs, urls.health, urls.admin, health.get("variants", {}))


def _build_within(settings: AppSettings, timeout: float, deadline: float, was_running: bool) -> Any:
    """The application, its state actor started within what is left of the deadline: a new actor needs a
    worker process, and a loaded node has taken a minute to start one (CI, 2026-12-07)."""
    from ray.exceptions import GetTimeoutError

    from pipeline.runtime.resources import free_resources

    try:
        return build_application(settings, state_timeout=max(deadline - time.monotonic(), 0.0))
    except GetTimeoutError:
        if not was_running:  # its creation is cancelled: a deploy that never ran leaves no actor behind
            kill_state(settings.app_name)
        raise ServingError(
            f"the app was not running after serving.ready_timeout_s = {timeout:g} s: its state actor had not "
            f"started yet (Ray starts a worker process for it; the cluster has {free_resources()})"
        ) from None


def _wait_running(settings: AppSettings, timeout: float, deadline: float) -> None:
    """Until Serve reports the app RUNNING (every replica placed and started); a failed deploy or the
    deadline ends it with one line naming the deployments short of replicas, what each asks and what is free."""
    from ray import serve

    from pipeline.runtime.resources import free_resources

    while True:
        app = serve.status().applications.get(settings.app_name)
        status = str(getattr(app, "status", "NOT_STARTED"))
        if status.endswith("RUNNING"):
            return
        if status.endswith("DEPLOY_FAILED"):
            raise ServingError(f"deploying {settings.app_name!r} failed: {getattr(app, 'message', '')}")
        if time.monotonic() >= deadline:
            raise ServingError(
                f"the app was not running after serving.ready_timeout_s = {timeout:g} s: "
                f"{_short_of_replicas(settings, app)}; the cluster has {free_resources()}"
            )
        time.sleep(0.5)


def _short_of_replicas(settings: AppSettings, app: Any) -> str:
    """Each deployment that is not HEALTHY: replicas running of those asked, and the CPUs each asks."""
    asked = _asked_replicas(settings)
    short = []
    for name, deployment in sorted(getattr(app, "deployments", {}).items()):
        if str(deployment.status).rsplit(".", 1)[-1] == "HEALTHY":
            continue
        states = {str(state).rsplit(".", 1)[-1]: count for state, count in deployment.replica_states.items()}
        waiting = ", ".join(
            f"{count} {state.lower()}" for state, count in sorted(states.items()) if state != "RUNNING"
        )
        replicas, cpus = asked.get(name, (0, 0.0))
        # Serve's own word, when it has one (after 30 s: a replica not scheduled, or slow to start).
        said = " ".join(str(deployment.message).split())[:300]
        short.append(
            f"{name} has {states.get('RUNNING', 0)} of {replicas} replica(s) running "
            f"({waiting or 'none started yet'}), each asking {cpus:g} CPU(s)"
            + (f" (Serve: {said})" if said else "")
        )
    if settings.max_replicas_per_node is not None:
        short.append(f"serving.max_replicas_per_node = {settings.max_replicas_per_node} per deployment and node")
    return "; ".join(short) or "the app has no deployments yet"


def _asked_replicas(settings: AppSettings) -> dict[str, tuple[int, float]]:
    """Each deployment's replicas (the autoscaling minimum, if any) and CPUs per replica, by Serve's name."""

    def count(autoscaling: dict[str, Any] | None, replicas: int) -> int:
        return int(autoscaling.get("min_replicas", 1)) if autoscaling is not None else replicas

    asked = {INGRESS_NAME: (count(settings.ingress_autoscaling, settings.ingress_replicas), 0.0)}
    for name, variant in settings.variants.items():
        if variant.remote:
            asked[variant_deployment(name)] = (count(variant.autoscaling, variant.replicas), variant.cpus)
    return asked


def wait_ready(health_url: str, timeout: float) -> dict[str, Any]:
    """Poll /health until it answers 200 (every variant with a registered model loaded; an alias the
    registry does not have yet is reported, not fatal); on timeout, say which variant is not ready and why."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health_url, timeout=10) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            if error.code == 503:
                last = json.loads(error.read() or b"{}")
                variants = last.get("variants", {})
                if variants and all(info.get("ready") or info.get("missing") for info in variants.values()):
                    missing = sorted(name for name, info in variants.items() if info.get("missing"))
                    raise ServingError(
                        f"nothing to route to: no variant with a weight above 0 has a model ({missing} not in "
                        "the registry yet); train one first (python -m pipeline train --config ...)"
                    ) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    waiting = {
        name: info.get("error") or ("not in the registry" if info.get("missing") else "loading")
        for name, info in last.get("variants", {}).items()
        if not info.get("ready")
    }
    raise ServingError(f"the app was not ready after {timeout:.0f} s; variants not ready: {waiting or 'unknown'}")


def _watch_settings(config: PipelineConfig) -> WatchSettings | None:
    """The experiment watcher's settings, when the config lets the app act by itself (and it logs)."""
    experiment, serving = config.experiment, config.serving
    if not (experiment.auto_promote or experiment.auto_rollback) or not serving.prediction_log.enabled:
        return None
    return WatchSettings(
        serving.app_name,
        config.tracking,
        str(serving.prediction_log.path),
        str(serving.feedback.path),
        experiment_rules(experiment),
        experiment.auto_promote,
        experiment.auto_rollback,
        experiment.check_seconds,
        {name: variant.weight for name, variant in serving.variants.items()},
    )


def undeploy(app_name: str, wait: bool = True) -> bool:
    """Delete the app, its state actor and its experiment watcher; False when there was no such app.
    ``wait=False`` returns once Serve has the deletion in hand (its replicas drain and stop after)."""
    from ray import serve

    from serving._watch import stop_watcher

    known = app_name in serve.status().applications
    if known:
        serve.delete(app_name, _blocking=wait)
    kill_state(app_name)
    stop_watcher(app_name)
    return known
