"""Ray Serve's high-throughput mode (HAProxy ingress, gRPC between replicas) for a local Ray head.

Serve reads its mode from the environment of the cluster's processes, so the variables must be in place
before the head starts. Each head gets its own HAProxy folder and stats/metrics ports: by default every
HAProxy on a machine shares ``/tmp/haproxy-serve`` and ports 8404/9101, and two clusters (a test run next
to a detached app) would take each other's admin socket. The folder also names our HAProxy processes, so
that a stop finds and ends them even when Ray did not (a proxy actor killed with SIGKILL leaves its
HAProxy child running, holding the HTTP port).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.runtime._ports import free_port

_MODE_VARIABLES = ("RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_THROUGHPUT_OPTIMIZED")
# The mode on every node of a cluster (locally and in the Kubernetes manifests). Nothing restarts a dead
# HAProxy but the controller's health check of its proxy actor (3 failed checks in a row): every 10 s by
# default, so the app was down for over 30 s. Every second: ~4 s. A check may take Ray's default 10 s
# and a new proxy 30 s to report ready (default 5 s): on a busy node (2 cores under two Ray clusters'
# start-up) shorter bounds failed proxies that were only slow, and Serve replaced them in a
# loop until a deploy gave up with ActorDiedError. A dead HAProxy fails its check at once: still ~4 s.
# A stopping ingress replica stays open for Serve's minimum drain period (30 s by default, meant for an
# external load balancer's deregistration) before it stops: every redeploy, `serve --stop` and alias
# rollout waited that long. Here HAProxy is that balancer; it drops the replica within a second or two of
# the controller's update and retries refused connections: 5 s covers it.
HIGH_THROUGHPUT_ENVIRONMENT = {
    **dict.fromkeys(_MODE_VARIABLES, "1"),
    "RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S": "1",
    "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "10",
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "30",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "5",
}


@dataclass(frozen=True)
class ServeMode:
    """The environment a Ray head is started with, and the folder its HAProxy lives in (fast mode only)."""

    environment: dict[str, str]
    haproxy_dir: Path | None = None


def serve_mode(high_throughput: bool) -> ServeMode:
    """Variables for a new local head: Serve's high-throughput mode, or explicitly the default mode."""
    if not high_throughput:
        return ServeMode(dict.fromkeys(_MODE_VARIABLES, "0"))
    # Short on purpose: Ray adds a 56-character folder inside, and HAProxy takes socket paths of at most 97.
    # Named, not created: Ray creates it when Serve starts HAProxy, so a run that never serves (or a process
    # killed before its clean-up) leaves nothing behind.
    folder = Path("/tmp") / f"hap-{secrets.token_hex(8)}"
    environment = {
        **HIGH_THROUGHPUT_ENVIRONMENT,
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
    }
    return ServeMode(environment, folder)


def apply_serve_mode(mode: ServeMode) -> None:
    """Put the mode into this process's environment (inherited by a local head started from here)."""
    os.environ.update(mode.environment)


def haproxy_pids(folder: Path) -> list[int]:
    """HAProxy processes started with a config inside ``folder`` (read from /proc: Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\x00")
        except OSError:
            continue
        if command and command[0].endswith(b"haproxy") and any(str(folder).encode() in part for part in command):
            found.append(int(entry.name))
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def stop_haproxy(folder: Path | None, timeout: float = 10.0) -> int:
    """End every HAProxy of this head (TERM, then KILL) and remove its folder; how many were running."""
    if folder is None:
        return 0
    pids = haproxy_pids(folder)
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while haproxy_pids(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_all(haproxy_pids(folder), signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)
    return len(pids)
