"""A command's connection to a Ray that outlives it (`serve --detach` and `serve --stop`): to ``ray.address``,
or to a head this project starts for it, and the stop of that head with its HAProxy. The CLI only calls
these: starting, joining and stopping Ray is this package's job."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline._console import Console
from pipeline.config import RayConfig
from pipeline.runtime._detached import DetachedHead, start_detached_head, stop_detached_head
from pipeline.runtime._serve_mode import stop_haproxy
from pipeline.runtime._session import use_head_auth


@dataclass(frozen=True)
class DetachedCluster:
    """The Ray a detached app runs on: its address, and the head started for it (None: ``ray.address``'s)."""

    address: str
    head: DetachedHead | None


@contextlib.contextmanager
def detached_cluster(
    ray_config: RayConfig, log: Path, high_throughput: bool, console: Console
) -> Iterator[DetachedCluster]:
    """This process connected to ``ray.address``, or to a new Ray head that outlives it (its output in
    ``log``). If the body raises, a head started here is stopped again (with its HAProxy); this process
    disconnects at the end either way."""
    import ray

    head = None
    address = ray_config.address
    if address is None:
        with console.timed("Starting a detached Ray head"):
            head = start_detached_head(ray_config, log, high_throughput)
        address = head.address
    else:  # a cluster from `ray start` asks for its token
        use_head_auth()
    try:
        ray.init(
            address=address, namespace=ray_config.namespace, log_to_driver=False, logging_level=logging.WARNING
        )
        yield DetachedCluster(address, head)
    except BaseException:
        ray.shutdown()
        if head is not None:
            stop_detached_head(head.pid, address=head.address)
            stop_haproxy(head.haproxy_dir)
        raise
    ray.shutdown()


def stop_detached_cluster(
    address: str, head_pid: int | None, haproxy_dir: Path | None, namespace: str, first: Callable[[], object]
) -> bool:
    """Connect to ``address``, run ``first`` there (undeploy the app), disconnect; then stop the head this
    project started (``head_pid``; none for ``ray.address``'s) and its HAProxy, which Ray does not always
    end (a killed proxy actor leaves it running, holding the HTTP port). False: the cluster was gone."""
    import ray

    use_head_auth()  # a cluster from `ray start` asks for its token, whoever started it
    reached = True
    try:
        ray.init(address=address, namespace=namespace, log_to_driver=False, logging_level=logging.WARNING)
        first()
        ray.shutdown()
    except ConnectionError:
        reached = False
    if head_pid:
        stop_detached_head(head_pid, address=address)
    stop_haproxy(haproxy_dir)
    return reached
