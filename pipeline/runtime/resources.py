"""What a Ray cluster has free, in the words of the config: for the one-line errors of bounded waits.

A public module of its own, importing nothing of ours and Ray only when called: ``serving`` names what is
free too when a deploy does not become ready, and imports this module alone (the rest of
``pipeline.runtime`` reaches RayDP)."""

from __future__ import annotations

_GIB = 1024**3


def free_resources() -> str:
    """What the connected cluster has free now (CPUs, memory, live nodes)."""
    import ray

    free = ray.available_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return (
        f"{free.get('CPU', 0.0):g} CPU(s) and {free.get('memory', 0.0) / _GIB:.1f} GiB of memory free "
        f"on {nodes} node(s)"
    )
