"""`ingest`: generate (or load) rows and commit them to the configured Delta table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.config import DataConfig
from pipeline.data._delta import DeltaWrite, write_delta
from pipeline.data._demo import generate
from pipeline.data._readers import read_table
from pipeline.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def ingest(spark: SparkSession, data: DataConfig) -> DeltaWrite:
    """Write ``data.ingest``'s rows to ``data.source`` (a Delta table) with its mode and partitioning."""
    if data.source.format != "delta":
        raise DataError(f"data.source.format = {data.source.format!r}: ingest writes Delta tables only")
    plan = data.ingest
    if plan.input is not None:
        if plan.input.path == data.source.path:
            raise DataError(f"data.ingest.input.path = {str(plan.input.path)!r}: it is the target table itself")
        df = read_table(spark, plan.input).df
    else:
        assert plan.generate is not None  # the config guarantees one origin
        df = generate(spark, plan.generate)
    return write_delta(df, data.source.path, mode=plan.mode, partition_by=plan.partition_by)
