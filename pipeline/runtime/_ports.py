"""Free local ports for the servers this project starts.

A port is taken from below the kernel's ephemeral range and above Ray's worker ports (10002-19999 by
default). A port from the ephemeral range (what binding port 0 gives) is only free for a moment: every
outgoing connection on the machine (Ray's gRPC channels, Spark, a database client) takes its local port
from that range, and Ray picks its own random ports above it. A port chosen when a Ray head starts and
bound much later (HAProxy's stats port, bound at every Serve start of a 40-minute test session) was
seen taken by then: "cannot bind socket (Address already in use)".
"""

from __future__ import annotations

import contextlib
import fcntl
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_LOWEST = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_ATTEMPTS = 200


def _first_ephemeral_port() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    # On every interface, as HAProxy binds its stats port; no SO_REUSEADDR, so a port that any local
    # socket (listening or connected) holds counts as taken.
    with socket.socket() as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (bound as aiohttp and Ray's dashboard bind it: with
    SO_REUSEADDR, so a connection closing on that port does not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def port_turn(port: int, wait_s: float = 120.0) -> Iterator[None]:
    """Held while a job of ours checks whether ``port`` is free and starts the server that binds it: two jobs
    starting at the same moment on one machine take turns, so the second finds the port taken instead of
    both finding it free. A machine-wide file lock (released if the holder dies); after ``wait_s`` the job
    goes on without its turn rather than wait for a stuck holder."""
    path = Path(tempfile.gettempdir()) / f"pipeline-port-{port}.lock"
    with path.open("a") as handle:
        deadline = time.monotonic() + wait_s
        locked = False
        while not locked:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def free_port() -> int:
    """A TCP port that no local socket holds right now, outside the range the kernel and Ray hand out."""
    highest = _first_ephemeral_port() - 1
    if highest > _LOWEST:
        for _ in range(_ATTEMPTS):
            port = random.randint(_LOWEST, highest)
            if _bindable(port):
                return port
    with socket.socket() as probe:  # a machine with an unusual port range: let the kernel choose
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
