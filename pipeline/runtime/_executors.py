"""Spark's executors on Ray, reserved and awaited with an end.

RayDP waits without limit for the placement group of its executors, and Spark for executors to register:
on a cluster that cannot hold them, `Starting Spark in Ray ...` never ended. Here each wait has a bound
(``spark.start_timeout_s``) and ends in one line naming what was asked and what the cluster has free.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipeline.config import SparkConfig
from pipeline.errors import PipelineError
from pipeline.runtime.resources import free_resources

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from ray.util.placement_group import PlacementGroup

# Groups reserved here are handed to RayDP, which removes only the groups it made itself.
_RESERVED: list[PlacementGroup] = []


class SparkStartError(PipelineError):
    """Spark's executors could not be had within ``spark.start_timeout_s``."""


def executor_bundles(spark: SparkConfig) -> list[dict[str, float]]:
    """One Ray resource bundle per executor, as RayDP reserves them (cores and JVM memory)."""
    from raydp.utils import parse_memory_size

    memory = float(parse_memory_size(spark.executor_memory))
    return [{"CPU": float(spark.executor_cores), "memory": memory} for _ in range(spark.num_executors)]


def asked(spark: SparkConfig) -> str:
    """The executors a config asks for, as the error lines name them."""
    return f"{spark.num_executors} executor(s) x {spark.executor_cores} core(s), {spark.executor_memory} each"


def reserve_executors(spark: SparkConfig) -> PlacementGroup | None:
    """The executors' placement group, placed within the bound (None without ``placement_strategy``)."""
    if spark.placement_strategy is None:
        return None
    import ray

    group = ray.util.placement_group(executor_bundles(spark), strategy=spark.placement_strategy)
    if group.wait(spark.start_timeout_s):
        _RESERVED.append(group)
        return group
    ray.util.remove_placement_group(group)
    raise SparkStartError(
        f"spark: no room for {asked(spark)} (placement {spark.placement_strategy}) within "
        f"spark.start_timeout_s = {spark.start_timeout_s:g} s; the cluster has {free_resources()}"
    )


def release_executors() -> None:
    """Remove the placement groups reserved for this process's Spark application."""
    import ray

    while _RESERVED:
        ray.util.remove_placement_group(_RESERVED.pop())


def await_executors(session: SparkSession, spark: SparkConfig, configs: dict[str, str]) -> None:
    """Return once every executor has registered with the driver; SparkStartError after the bound.
    (Under dynamic allocation Spark starts them on demand: nothing to wait for.)"""
    if configs.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return
    context: Any = session.sparkContext
    deadline = time.monotonic() + spark.start_timeout_s
    while True:
        registered = len(context._jsc.sc().statusTracker().getExecutorInfos()) - 1  # less the driver
        if registered >= spark.num_executors:
            return
        if time.monotonic() >= deadline:
            raise SparkStartError(
                f"spark: {registered} of {asked(spark)} registered within spark.start_timeout_s = "
                f"{spark.start_timeout_s:g} s; the cluster has {free_resources()}"
            )
        time.sleep(0.2)
