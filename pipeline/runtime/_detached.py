"""Ray nodes that outlive the command that started them (`serve --detach`'s head, worker nodes joining a
head), and stopping them again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RayConfig
from pipeline.errors import ClusterError
from pipeline.runtime._ports import free_port
from pipeline.runtime._serve_mode import HIGH_THROUGHPUT_ENVIRONMENT, serve_mode
from pipeline.runtime._session import prepare_process_environment, use_head_auth
from pipeline.runtime.java import find_java

# The head takes Ray's default ports: another node on the same machine needs its own.
_NODE_PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
)


@dataclass(frozen=True)
class DetachedHead:
    address: str
    pid: int
    dashboard_url: str | None
    log: Path
    haproxy_dir: Path | None = None  # Serve's high-throughput mode: where this head's HAProxy lives


def start_detached_head(
    ray_config: RayConfig, log: Path, high_throughput: bool = True, timeout: float = 120.0, attempts: int = 3
) -> DetachedHead:
    """``ray start --head --block`` in its own session; its workers inherit Java 17, this Python and
    Serve's mode (high-throughput unless turned off). Returns once ``ray start`` says the runtime started.

    On a loaded machine ``ray start`` can give up on its own raylet ("The current node timed out during
    startup": Ray waits 30 s for it, a constant, which a slow 2-core machine can exceed): such a start
    is stopped and tried again, at most ``attempts`` times, as KubeRay restarts a head pod."""
    prepare_process_environment(find_java())
    for attempt in range(1, attempts + 1):
        head = _start_head_once(ray_config, log, high_throughput, timeout)
        if head is not None:
            return head
        with log.open("a") as output:
            output.write(f"\n[pipeline] ray start gave up (attempt {attempt} of {attempts})\n")
    raise ClusterError(f"ray start exited before the head was up, {attempts} times; see {log}")


def _start_head_once(
    ray_config: RayConfig, log: Path, high_throughput: bool, timeout: float
) -> DetachedHead | None:
    """One ``ray start --head``: the head once up, None if ``ray start`` exited first (its processes
    stopped); a ClusterError if it is neither up nor gone within ``timeout``."""
    mode = serve_mode(high_throughput)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--dashboard-host",
        ray_config.dashboard_host,
        "--dashboard-port",
        str(ray_config.dashboard_port),
        f"--include-dashboard={str(ray_config.dashboard).lower()}",
        # Free ports for the node's agent: the defaults clash with any other Ray on this machine, and
        # without its agent the head cannot take Ray Jobs ("No available agent to submit job").
        "--dashboard-agent-listen-port",
        str(free_port()),
        "--dashboard-agent-grpc-port",
        str(free_port()),
    ]
    if ray_config.num_cpus is not None:
        command += ["--num-cpus", str(ray_config.num_cpus)]
    log.parent.mkdir(parents=True, exist_ok=True)
    written = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Unbuffered: its "Ray runtime started." reaches the log while it blocks.
            env={**os.environ, **mode.environment, "PYTHONUNBUFFERED": "1"},
        )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with contextlib.suppress(ProcessLookupError):  # what it started before giving up (its group)
                os.killpg(process.pid, signal.SIGKILL)
            forget_current_cluster(address)
            return None
        with log.open("rb") as output:
            output.seek(written)
            started = _STARTED in output.read()
        if started:
            use_head_auth()  # after the start: on a first run, `ray start` writes the token
            dashboard = (
                f"http://{ray_config.dashboard_host}:{ray_config.dashboard_port}" if ray_config.dashboard else None
            )
            return DetachedHead(address, process.pid, dashboard, log, mode.haproxy_dir)
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise ClusterError(f"the Ray head did not start on {address} within {timeout:.0f} s; see {log}")


_STARTED = b"Ray runtime started."


def start_worker_node(
    address: str, log: Path, num_cpus: int | None = None, node_ip_address: str | None = None
) -> subprocess.Popen[bytes]:
    """``ray start --address ADDRESS --block`` in its own session: a worker node joining a head, with Java 17
    for RayDP's executors and Serve's high-throughput mode. Its ports are free ones, so that several nodes
    can share one machine (a local multi-node cluster); each such node then needs an address of its own
    (127.0.0.2, 127.0.0.3, ...): Ray finds a node's raylet by its address, and RayDP's Java driver would
    otherwise attach to whichever node shares the head's. Stop it with ``stop_detached_head(pid)``."""
    prepare_process_environment(find_java())
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--address",
        address,
        "--block",
        *(["--node-ip-address", node_ip_address] if node_ip_address else []),
        *[part for flag in _NODE_PORT_FLAGS for part in (flag, str(free_port()))],
    ]
    if num_cpus is not None:
        command += ["--num-cpus", str(num_cpus)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **HIGH_THROUGHPUT_ENVIRONMENT},
        )


def stop_detached_head(pid: int, timeout: float = 60.0, address: str | None = None) -> bool:
    """Stop a node started by ``start_detached_head`` or ``start_worker_node`` and the Ray processes it
    started. ``ray start`` alone gets the SIGTERM first: it drains the node through the GCS, then ends its
    processes (~3 s). Signalling the whole group at once kills the GCS under it, and Ray then waits 30 s
    for a GCS that is gone before shutting down. Give a head's ``address`` to forget it as this machine's
    current cluster, as ``ray stop`` does."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not _group_gone(pid, timeout / 2):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not _group_gone(pid, timeout / 2):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    if address is not None:
        forget_current_cluster(address)
    return True


# Where `ray start` records its cluster for a later `ray.init()` without an address on this machine.
CURRENT_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")


def forget_current_cluster(address: str) -> None:
    """Remove ``CURRENT_CLUSTER_FILE`` when it names the head at ``address`` (one that is stopped): left
    behind, a later ``ray.init(num_cpus=...)`` on this machine tries to join the stopped head and fails.
    The file is matched by port: ``ray start`` records the machine's own IP there, even for a head told
    ``--node-ip-address 127.0.0.1``, and the head it names is on this machine either way."""
    with contextlib.suppress(OSError):
        if _same_port(CURRENT_CLUSTER_FILE.read_text().strip(), address):
            CURRENT_CLUSTER_FILE.unlink()


def _same_port(recorded: str, address: str) -> bool:
    """Whether two ``host:port`` addresses of this machine's heads name the same port."""
    return recorded.rpartition(":")[2] == address.rpartition(":")[2]


def _group_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child (tests, benchmarks): reap it, or it lingers as a zombie
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False
