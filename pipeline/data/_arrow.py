"""Read a few columns of a Delta, Parquet or CSV source into Arrow, without Spark: for small side tables
(outcomes loaded as feedback) where starting a JVM would take longer than the read."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.data._delta import open_delta
from pipeline.errors import DataError


def source_format(path: str | Path) -> str:
    """delta for a folder with a ``_delta_log``, csv for a ``.csv`` file or a folder of them, else parquet."""
    location = Path(path)
    if (location / "_delta_log").is_dir():
        return "delta"
    if location.suffix.lower() == ".csv" or (location.is_dir() and any(location.glob("*.csv"))):
        return "csv"
    return "parquet"


def read_columns(path: str | Path, columns: list[str], format: str | None = None) -> pa.Table:
    """``columns`` of the source at ``path`` (latest version for Delta); DataError naming a missing column."""
    location = Path(path)
    kind = format or source_format(location)
    if kind == "delta":
        table = open_delta(location)
        if table is None:
            raise DataError(f"--from {path}: no Delta table there")
        dataset = table.to_pyarrow_dataset()
    elif not location.exists():
        raise DataError(f"--from {path}: no {kind} data there")
    else:
        dataset = ds.dataset(str(location), format=kind)
    missing = [name for name in columns if name not in dataset.schema.names]
    if missing:
        raise DataError(f"--from {path}: no column {missing[0]!r}; the {kind} source has {dataset.schema.names}")
    return dataset.to_table(columns=columns)
