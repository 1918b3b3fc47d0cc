"""Read a few columns of a Delta, Parquet or CSV source into Arrow, without Spark: for small side tables
(outcomes loaded as feedback) where starting a JVM would take longer than the read. A source may be a local
path or an object-store URI (pyarrow's filesystem, delta-rs's storage options)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipeline.data._delta import open_delta
from pipeline.errors import DataError
from pipeline.storage import check_reachable, filesystem, parse_location


def source_format(path: str | Path, field: str = "--from") -> str:
    """delta for a folder with a ``_delta_log``, csv for a ``.csv`` file or a folder of them, else parquet."""
    fs, where = _filesystem_of(path, field)
    if fs.get_file_info(f"{where}/_delta_log").type == pafs.FileType.Directory:
        return "delta"
    if where.lower().endswith(".csv"):
        return "csv"
    info = fs.get_file_info(where)
    if info.type == pafs.FileType.Directory:
        below = fs.get_file_info(pafs.FileSelector(where, recursive=False))
        if any(item.path.lower().endswith(".csv") for item in below):
            return "csv"
    return "parquet"


def read_columns(
    path: str | Path, columns: list[str], format: str | None = None, field: str = "--from"
) -> pa.Table:
    """``columns`` of the source at ``path`` (latest version for Delta); DataError naming a missing column."""
    kind = format or source_format(path, field)
    if kind == "delta":
        table = open_delta(path)
        if table is None:
            raise DataError(f"{field} {path}: no Delta table there")
        dataset = table.to_pyarrow_dataset()
    else:
        fs, where = _filesystem_of(path, field)
        if fs.get_file_info(where).type == pafs.FileType.NotFound:
            raise DataError(f"{field} {path}: no {kind} data there")
        dataset = ds.dataset(where, format=kind, filesystem=fs)
    missing = [name for name in columns if name not in dataset.schema.names]
    if missing:
        raise DataError(f"{field} {path}: no column {missing[0]!r}; the {kind} source has {dataset.schema.names}")
    return dataset.to_table(columns=columns)


def _filesystem_of(path: str | Path, field: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for ``path`` and the path within it; a bucket is checked first (one line)."""
    location = parse_location(path, field)
    if not location.is_local:
        check_reachable(location, field)
    return filesystem(location)
