"""Read Delta (any version), Parquet or CSV into Spark, recording exactly what was read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline.config import TableSource
from pipeline.data._delta import open_delta
from pipeline.data._objects import delta_frame, files_frame
from pipeline.errors import DataError
from pipeline.storage import check_reachable, delta_storage_options, is_object_store, parse_location

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class Snapshot:
    """A DataFrame and its lineage: where it came from and, for Delta, which version."""

    df: DataFrame
    format: str
    path: str
    version: int | None
    files: int
    rows: int | None  # known without a Spark job for Delta (from per-file stats), else None

    def lineage(self) -> dict[str, str]:
        """Flat tags that identify the data, for tracking."""
        tags = {"data.format": self.format, "data.path": self.path}
        if self.version is not None:
            tags["data.delta_version"] = str(self.version)
        if self.rows is not None:
            tags["data.rows"] = str(self.rows)
        return tags


def read_table(spark: SparkSession, source: TableSource, field: str = "data.source.path") -> Snapshot:
    """Read ``source``; Delta reads exactly the files of the requested (or latest) version. An object-store
    location is checked first (bucket, credentials, an endpoint that answers: one line, bounded in time) and
    read through Ray Data (``pipeline.data._objects``)."""
    where = str(source.path)
    remote = is_object_store(where)
    found = check_reachable(parse_location(where, field), field).name if remote else None
    if source.format == "delta":
        return _read_delta(spark, where, source.version, field, remote)
    if found == "NotFound" or (not remote and not Path(where).exists()):
        raise DataError(f"{field} = {where!r}: no {source.format} data there")
    if remote:
        df, files = files_frame(spark, source, field)
    elif source.format == "csv":
        options = {"header": "true", "inferSchema": "true", **source.options}
        df = spark.read.options(**options).csv(where)
        files = len(df.inputFiles())
    else:
        df = spark.read.options(**source.options).parquet(where)
        files = len(df.inputFiles())
    return Snapshot(df=df, format=source.format, path=where, version=None, files=files, rows=None)


def _read_delta(spark: SparkSession, where: str, version: int | None, field: str, remote: bool) -> Snapshot:
    storage = delta_storage_options(parse_location(where, field)) if remote else None
    latest = open_delta(where, storage_options=storage)
    if latest is None:
        raise DataError(
            f"{field} = {where!r}: no Delta table there "
            "(create it with `python -m pipeline ingest --config <file>`)"
        )
    if version is not None and version > latest.version():
        raise DataError(
            f"data.source.version = {version}: the table at {where} has versions 0..{latest.version()}"
        )
    table = latest if version is None else open_delta(where, version, storage_options=storage)
    if table is None:  # pragma: no cover - the table vanished between the two opens
        raise DataError(f"the Delta table at {where} disappeared while being read")
    files = table.file_uris()
    if files and storage is not None:
        df = delta_frame(spark, where, table.version(), storage)
    elif files:
        df = spark.read.option("basePath", where).parquet(*files)
    else:
        from pyspark.sql.pandas.types import from_arrow_schema

        arrow_schema = pa.schema(table.schema().to_arrow())
        df = spark.createDataFrame([], schema=from_arrow_schema(arrow_schema))
    # Keep the table's column order (Spark puts partition columns last).
    df = df.select(*[field.name for field in table.schema().fields])
    actions = table.get_add_actions(flatten=True)
    records = pa.table(actions).column("num_records").to_pylist() if len(files) else []
    rows = sum(records) if all(r is not None for r in records) else None
    return Snapshot(df=df, format="delta", path=where, version=table.version(), files=len(files), rows=rows)
