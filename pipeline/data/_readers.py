"""Read Delta (any version), Parquet or CSV into Spark, recording exactly what was read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline.config import TableSource
from pipeline.data._delta import open_delta
from pipeline.errors import DataError

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


def read_table(spark: SparkSession, source: TableSource) -> Snapshot:
    """Read ``source``; Delta reads exactly the files of the requested (or latest) version."""
    path = Path(source.path)
    if source.format == "delta":
        return _read_delta(spark, path, source.version)
    if not path.exists():
        raise DataError(f"data.source.path = {str(path)!r}: no {source.format} data there")
    if source.format == "csv":
        options = {"header": "true", "inferSchema": "true", **source.options}
        df = spark.read.options(**options).csv(str(path))
    else:
        df = spark.read.options(**source.options).parquet(str(path))
    files = len(df.inputFiles())
    return Snapshot(df=df, format=source.format, path=str(path), version=None, files=files, rows=None)


def _read_delta(spark: SparkSession, path: Path, version: int | None) -> Snapshot:
    latest = open_delta(path)
    if latest is None:
        raise DataError(
            f"data.source.path = {str(path)!r}: no Delta table there "
            "(create it with `python -m pipeline ingest --config <file>`)"
        )
    if version is not None and version > latest.version():
        raise DataError(f"data.source.version = {version}: the table at {path} has versions 0..{latest.version()}")
    table = latest if version is None else open_delta(path, version)
    if table is None:  # pragma: no cover - the table vanished between the two opens
        raise DataError(f"the Delta table at {path} disappeared while being read")
    files = table.file_uris()
    if files:
        df = spark.read.option("basePath", str(path)).parquet(*files)
        # Keep the table's column order (Spark puts partition columns last).
        df = df.select(*[field.name for field in table.schema().fields])
    else:
        from pyspark.sql.pandas.types import from_arrow_schema

        arrow_schema = pa.schema(table.schema().to_arrow())
        df = spark.createDataFrame([], schema=from_arrow_schema(arrow_schema))
    actions = table.get_add_actions(flatten=True)
    records = pa.table(actions).column("num_records").to_pylist() if len(files) else []
    rows = sum(records) if all(r is not None for r in records) else None
    return Snapshot(df=df, format="delta", path=str(path), version=table.version(), files=len(files), rows=rows)
