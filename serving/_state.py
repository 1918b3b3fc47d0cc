"""The app's shared state: live weights, request metrics summed over every ingress replica, recent shadow
results. Held by one detached actor and written through to Ray's GCS key-value store, so that a killed
state actor comes back (Ray restarts it) with the weights last set and the counts so far."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import ray

from serving._metrics import MetricsTable, RequestRecord
from serving._settings import STATE_NAMESPACE, state_actor_name

SHADOW_LOG_SIZE = 1000
_KV_NAMESPACE = b"pipeline-serve"


def _kv_get(key: str) -> bytes | None:
    from ray.experimental.internal_kv import _internal_kv_get

    value = _internal_kv_get(key.encode(), namespace=_KV_NAMESPACE)
    return None if value is None else bytes(value)


def _kv_put(key: str, value: bytes) -> None:
    from ray.experimental.internal_kv import _internal_kv_put

    _internal_kv_put(key.encode(), value, overwrite=True, namespace=_KV_NAMESPACE)


def _kv_delete(key: str) -> None:
    from ray.experimental.internal_kv import _internal_kv_del

    _internal_kv_del(key.encode(), namespace=_KV_NAMESPACE)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ServeState:
    """One per app. Every change is stored before it is acknowledged; a restarted actor reads it back."""

    def __init__(self, app_name: str, weights: dict[str, float]) -> None:
        self._key = app_name
        stored_weights, stored_metrics = _kv_get(f"{app_name}/weights"), _kv_get(f"{app_name}/metrics")
        self.weights = json.loads(stored_weights) if stored_weights is not None else weights
        self.metrics = MetricsTable.from_json(stored_metrics.decode()) if stored_metrics else MetricsTable()
        self.shadow_results: deque[dict[str, Any]] = deque(maxlen=SHADOW_LOG_SIZE)

    def get_weights(self) -> dict[str, float]:
        return self.weights

    def set_weights(self, weights: dict[str, float]) -> dict[str, float]:
        _kv_put(f"{self._key}/weights", json.dumps(weights).encode())
        self.weights = weights
        return weights

    def record_many(self, records: list[RequestRecord], log: dict[str, int] | None = None) -> None:
        """Requests an ingress replica answered since its last flush, and what its prediction log did."""
        self.metrics.add(records, log)
        _kv_put(f"{self._key}/metrics", self.metrics.to_json().encode())

    def record_shadow(self, entry: dict[str, Any]) -> None:
        self.shadow_results.append(entry)

    def shadow_log(self) -> list[dict[str, Any]]:
        return list(self.shadow_results)

    def render_metrics(self) -> str:
        return self.metrics.render()


def start_state(app_name: str, weights: dict[str, float], timeout: float | None = None) -> Any:
    """The app's state actor (created if absent), its weights reset to ``weights``: a deploy starts from the
    config's weights; the request counts carry on. Waits at most ``timeout`` seconds for the actor to answer
    (a new one needs a worker process, which a loaded node can take a minute to start): then GetTimeoutError."""
    state = ServeState.options(  # type: ignore[attr-defined]
        name=state_actor_name(app_name), namespace=STATE_NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote(app_name, weights)
    ray.get(state.set_weights.remote(weights), timeout=timeout)
    return state


def state_handle(app_name: str) -> Any:
    return ray.get_actor(state_actor_name(app_name), namespace=STATE_NAMESPACE)


def shadow_log(app_name: str) -> list[dict[str, Any]]:
    """The recent shadow results of a running app (newest last)."""
    return list(ray.get(state_handle(app_name).shadow_log.remote()))


def kill_state(app_name: str) -> bool:
    """End the state actor for good and forget what it stored (the app is being deleted)."""
    for key in ("weights", "metrics"):
        _kv_delete(f"{app_name}/{key}")
    try:
        ray.kill(state_handle(app_name), no_restart=True)
    except ValueError:
        return False
    return True
