"""A Ray head that outlives the command that started it (``serve --detach``), and stopping it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RayConfig
from pipeline.errors import PipelineError
from pipeline.runtime._java import find_java
from pipeline.runtime._ports import free_port
from pipeline.runtime._serve_mode import serve_mode
from pipeline.runtime._session import prepare_process_environment


class ClusterError(PipelineError):
    """The detached Ray head did not start or stop."""


@dataclass(frozen=True)
class DetachedHead:
    address: str
    pid: int
    dashboard_url: str | None
    log: Path
    haproxy_dir: Path | None = None  # Serve's high-throughput mode: where this head's HAProxy lives


def use_head_auth() -> None:
    """Token authentication, as ``ray start`` runs the head (Ray 2.60), unless the user chose otherwise.

    A client sends the token (``~/.ray/auth_token``) only when it is in token mode itself, and Ray reads
    the mode once, when it is imported: without this, ``ray.init(address=...)`` to the detached head
    fails with "InvalidAuthToken". Ray's own switch (what a local ``ray.init`` does) sets the variable
    for this process and its children and refreshes Ray's cached config.
    """
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def start_detached_head(
    ray_config: RayConfig, log: Path, high_throughput: bool = True, timeout: float = 60.0
) -> DetachedHead:
    """``ray start --head --block`` in its own session; its workers inherit Java 17, this Python and
    Serve's mode (high-throughput unless turned off)."""
    prepare_process_environment(find_java())
    mode = serve_mode(high_throughput)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--dashboard-host", ray_config.dashboard_host, "--dashboard-port", str(ray_config.dashboard_port),
        f"--include-dashboard={str(ray_config.dashboard).lower()}",
        # Free ports for the node's agent: the defaults clash with any other Ray on this machine, and
        # without its agent the head cannot take Ray Jobs ("No available agent to submit job").
        "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
    ]  # fmt: skip
    if ray_config.num_cpus is not None:
        command += ["--num-cpus", str(ray_config.num_cpus)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **mode.environment},
        )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"ray start exited with code {process.returncode}; see {log}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                use_head_auth()  # after the start: on a first run, `ray start` writes the token
                dashboard = (
                    f"http://{ray_config.dashboard_host}:{ray_config.dashboard_port}"
                    if ray_config.dashboard
                    else None
                )
                return DetachedHead(address, process.pid, dashboard, log, mode.haproxy_dir)
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise ClusterError(f"the Ray head did not answer on {address} within {timeout:.0f} s; see {log}")


def stop_detached_head(pid: int, timeout: float = 60.0) -> bool:
    """Stop a head started by ``start_detached_head`` (and the Ray processes it started)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    os.killpg(pid, signal.SIGKILL)
    return True
