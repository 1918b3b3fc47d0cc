"""A real multi-node Ray cluster on this machine: a head from `ray start --head` and worker nodes from
`ray start --address`, each its own raylet with its own CPUs. A worker node can be killed (SIGKILL to
its raylet, agents and workers) and another one added in its place."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline.config import RayConfig
from pipeline.runtime import (
    find_java,
    free_port,
    prepare_process_environment,
    start_detached_head,
    start_worker_node,
    stop_detached_head,
    stop_haproxy,
)

NODE_CPUS = 2
RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class LocalCluster:
    address: str
    dashboard: str
    head_pid: int
    haproxy_dir: Path | None
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_worker(self, timeout: float = 120, attempts: int = 8) -> str:
        """Start a worker node (`ray start --address ... --block`, own session) and return its node id.
        A node whose raylet gives up while the machine is busy (its agent reports its ports too late, a
        fatal check in Ray; or Ray's fixed 30 s for a raylet to register, which about half the attempts
        missed while the other test worker loaded both cores, 2026-12-06) is started again, as KubeRay
        restarts a pod: at most ``attempts`` times."""
        before = {node["node_id"] for node in self.alive_nodes()}
        for _ in range(attempts):
            log = self.logs / f"worker-{len(self.workers)}.log"
            # An address of its own on the loopback network: see start_worker_node.
            address = f"127.0.0.{len(self.workers) + 2}"
            self.workers.append(start_worker_node(self.address, log, num_cpus=NODE_CPUS, node_ip_address=address))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.workers[-1].poll() is None:
                added = {node["node_id"] for node in self.alive_nodes()} - before
                if added:
                    return added.pop()
                time.sleep(1)
            if self.workers[-1].poll() is None:
                break  # still starting after the timeout: not a crash, give up
        raise AssertionError(f"no worker node joined within {timeout} s x {attempts}; see {self.logs}")

    def kill_worker(self, node_id: str, timeout: float = 60) -> None:
        """SIGKILL every process of the worker node (raylet, agents, workers, Java executors), then wait
        until the head marks the node dead."""
        (worker,) = [w for w in self.workers if w.poll() is None and node_id in _node_ids_of(w.pid)]
        processes = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and node_id in {n["node_id"] for n in self.alive_nodes()}:
            time.sleep(0.5)
        assert node_id not in {n["node_id"] for n in self.alive_nodes()}, "the head still lists the node alive"

    def worker_nodes_running(self, *titles: str) -> set[str]:
        """Node ids of the live worker nodes with a process whose title (Ray names a worker process after
        its actor: `ray::ImplicitFunc...`) holds one of ``titles``: read from each node's process tree, not
        the state API (which, loaded by a sweep on two cores, missed a trial's actor in CI)."""
        found = set()
        for worker in (w for w in self.workers if w.poll() is None):
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(worker.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        command = " ".join(child.cmdline())
                        if any(title in command for title in titles):
                            found.add(_node_ids_of(worker.pid))
                            break
        return found - {""}

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [node for node in self.state("nodes") if node["state"] == "ALIVE"]

    def head_node_id(self) -> str:
        (head,) = [node["node_id"] for node in self.alive_nodes() if node["is_head_node"]]
        return str(head)

    def state(self, kind: str, *filters: str) -> list[dict[str, Any]]:
        """`ray list KIND` from the CLI, as JSON (the state API, read through the head's dashboard)."""
        command = [
            RAY,
            "list",
            kind,
            "--address",
            self.dashboard,
            "--format",
            "json",
            "--limit",
            "10000",
            "--detail",
            *[part for f in filters for part in ("--filter", f)],
        ]
        listed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert listed.returncode == 0, listed.stderr[-2000:]
        if listed.stdout.strip().startswith("No resource"):  # what it prints instead of an empty JSON list
            return []
        return list(json.loads(listed.stdout))

    def actor_nodes(self, class_name: str) -> dict[str, str]:
        """Actor id -> node id of every actor (alive or dead) of this class."""
        actors = self.state("actors", f"class_name={class_name}")
        return {actor["actor_id"]: actor["node_id"] for actor in actors}


def _node_ids_of(pid: int) -> str:
    """The node id a `ray start` process's raylet was started with (its command line holds it)."""
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            command = " ".join(child.cmdline())
            if "raylet" in command and "--node_id=" in command:
                return command.split("--node_id=")[1].split()[0]
    return ""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A head (2 CPUs, dashboard on, Serve's high-throughput mode) and one worker node (2 CPUs)."""
    saved = dict(os.environ)
    logs = tmp_path_factory.mktemp("cluster-logs")
    prepare_process_environment(find_java())
    dashboard_port = free_port()
    ray_config = RayConfig(dashboard=True, dashboard_port=dashboard_port, num_cpus=NODE_CPUS)
    head = start_detached_head(ray_config, logs / "head.log", high_throughput=True)
    started = LocalCluster(head.address, f"http://127.0.0.1:{dashboard_port}", head.pid, head.haproxy_dir, logs)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the dashboard (state API) comes up after the GCS
            with contextlib.suppress(AssertionError):
                if started.alive_nodes():
                    break
            time.sleep(1)
        started.add_worker()
        yield started
    finally:
        for worker in started.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
        stop_detached_head(head.pid, address=head.address)
        stop_haproxy(head.haproxy_dir)
        os.environ.clear()
        os.environ.update(saved)
