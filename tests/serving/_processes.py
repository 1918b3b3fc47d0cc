"""The processes of the Ray this process started, by role: what the fault tests and the soak SIGKILL."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from pipeline.runtime import haproxy_pids


def own_ray_processes() -> list[psutil.Process]:
    """The processes this session's own Ray started (its raylet's descendants: workers, actors, HAProxy).
    Another Ray on the machine (a parallel test worker's, a cluster's) is left alone."""
    from ray._private import worker  # the node this process started; no public call names its raylet

    node = worker._global_node
    assert node is not None, "no Ray started by this process"
    raylets = [psutil.Process(info.process.pid) for info in node.all_processes["raylet"]]
    return [child for raylet in raylets for child in raylet.children(recursive=True)]


def process_title(process: psutil.Process) -> str:
    try:
        return (process.cmdline() or [""])[0]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def actor_pid(class_name: str) -> int:
    """The process of a live actor, by the title Ray gives it (``ray::<class>``; no dashboard needed)."""
    title = f"ray::{class_name}"
    found = [process.pid for process in own_ray_processes() if process_title(process).startswith(title)]
    assert found, f"no live actor of class {class_name}"
    return max(found)


def haproxy_pid() -> int:
    """The newest HAProxy of this Ray (after a reload the old one only drains)."""
    folder = Path(os.environ["RAY_SERVE_HAPROXY_SOCKET_PATH"]).parent
    pids = haproxy_pids(folder)
    assert pids, f"no HAProxy of this cluster ({folder})"
    return max(pids)
