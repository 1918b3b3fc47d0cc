"""Delta tables without the Delta jars: Spark writes Parquet, delta-rs commits the transaction.

Spark writes each batch into its own staging folder (``<table>/_staging/<id>``), so the files of
one write are exactly the Parquet files under that folder and a concurrent writer's files are never
mistaken for ours. They are then moved (a rename on the same filesystem) to the usual layout
(``<table>/k=v/part-...parquet``, Spark's names are unique per job) and committed by delta-rs. A write
that fails anywhere before the commit removes its files, so the table is left as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from pipeline.data._objects import files_of_write, write_object_files
from pipeline.errors import DataError, SchemaMismatchError
from pipeline.storage import (
    Location,
    check_reachable,
    delta_storage_options,
    filesystem,
    is_object_store,
    parse_location,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

WriteMode = Literal["append", "overwrite"]
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_STAGING = "_staging"  # underscore: ignored by Spark's and delta-rs' listings
# Longer strings would need truncated bounds; leaving them out keeps data skipping correct.
_MAX_STATS_STRING = 32


@dataclass(frozen=True)
class DeltaWrite:
    """What a write committed: the new table version and how much data it added."""

    path: str
    version: int
    mode: WriteMode
    rows: int
    files: int


def open_delta(
    path: str | Path, version: int | None = None, storage_options: dict[str, str] | None = None
) -> DeltaTable | None:
    """The Delta table at ``path`` (at ``version``), or None when there is no table there. An object-store
    table is opened with ``delta_storage_options`` unless ``storage_options`` are given."""
    remote = is_object_store(str(path))
    if storage_options is None and remote:
        storage_options = delta_storage_options(parse_location(str(path), "data.source.path"))
    try:
        return DeltaTable(str(path), version=version, storage_options=storage_options)
    except TableNotFoundError:
        return None
    except OSError:
        if remote:  # delta-rs says "Generic S3 error": a missing bucket, refused keys or a silent endpoint say why
            check_reachable(parse_location(str(path), "data.source.path"), "data.source.path")
        raise


def arrow_schema_of(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)


def schema_differences(expected: DeltaSchema, actual: DeltaSchema) -> list[str]:
    """Human-readable differences between a table's schema and the rows' (nullability ignored)."""
    want = {field.name: _type_name(field.type) for field in expected.fields}
    have = {field.name: _type_name(field.type) for field in actual.fields}
    problems = [f"missing column {name!r} ({kind})" for name, kind in want.items() if name not in have]
    problems += [f"unexpected column {name!r} ({kind})" for name, kind in have.items() if name not in want]
    problems += [
        f"column {name!r} is {have[name]}, table has {kind}"
        for name, kind in want.items()
        if name in have and have[name] != kind
    ]
    return problems


def _type_name(delta_type: Any) -> str:
    return getattr(delta_type, "type", None) or str(delta_type)


def write_delta(
    df: DataFrame,
    path: str | Path,
    mode: WriteMode = "append",
    partition_by: Sequence[str] = (),
) -> DeltaWrite:
    """Write ``df`` to the Delta table at ``path`` (a local path or an object-store URI) and commit it as one
    new version.

    A new table is created on first write. The rows' schema must equal the table's (for append and
    overwrite alike); a mismatch raises :class:`SchemaMismatchError` before any file is written.
    """
    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
    schema = DeltaSchema.from_arrow(arrow_schema_of(df))
    partitions = list(partition_by)
    missing = [name for name in partitions if name not in df.columns]
    if missing:
        raise DataError(f"partition column(s) {missing} are not in the data (columns: {df.columns})")
    if is_object_store(str(path)):
        return _write_to_store(df, parse_location(str(path), "data.source.path"), mode, partitions, schema)
    root = Path(path).resolve()
    table = open_delta(root)
    if table is not None:
        partitions = _check_compatible(table, schema, partitions, str(root))

    staging = root / _STAGING / _write_id()
    placed: list[Path] = []
    try:
        writer = df.write.mode("errorifexists")
        if partitions:
            writer = writer.partitionBy(*partitions)
        writer.parquet(str(staging))
        for file in sorted(staging.rglob("*.parquet")):
            target = root / file.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            file.rename(target)
            placed.append(target)
        actions = [_add_action(root, file, partitions) for file in placed]
        _commit(str(root), table, actions, mode, schema, partitions)
    except BaseException:
        for file in placed:
            file.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _written(str(root), mode, actions)


def _write_to_store(
    df: DataFrame, location: Location, mode: WriteMode, partitions: list[str], schema: DeltaSchema
) -> DeltaWrite:
    """The object-store path: the files are written in place under names of this write's own (a store has no
    rename), through Ray Data; a failure before the commit deletes them again."""
    storage = delta_storage_options(location)
    table = open_delta(location.uri, storage_options=storage)
    if table is not None:
        partitions = _check_compatible(table, schema, partitions, location.uri)
    fs, root = filesystem(location)
    write_id = _write_id()
    try:
        written = write_object_files(df, location, partitions, write_id)
        actions = [_store_add_action(fs, root, info, partitions) for info in written]
        _commit(location.uri, table, actions, mode, schema, partitions, storage)
    except BaseException:
        with contextlib.suppress(OSError):  # every file of this write, those of tasks that failed midway too
            for info in files_of_write(location, write_id):
                fs.delete_file(info.path)
        raise
    return _written(location.uri, mode, actions, storage)


def _write_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"


def _written(
    where: str, mode: WriteMode, actions: list[AddAction], storage: dict[str, str] | None = None
) -> DeltaWrite:
    committed = DeltaTable(where, storage_options=storage)
    return DeltaWrite(
        path=where,
        version=committed.version(),
        mode=mode,
        rows=sum(json.loads(action.stats)["numRecords"] for action in actions),
        files=len(actions),
    )


def _check_compatible(table: DeltaTable, schema: DeltaSchema, partitions: list[str], root: str) -> list[str]:
    problems = schema_differences(table.schema(), schema)
    if problems:
        raise SchemaMismatchError(
            f"rows do not match the Delta table at {root} (version {table.version()}): "
            + "; ".join(problems)
            + ". Nothing was written; write to a new path or fix the columns."
        )
    table_partitions = list(table.metadata().partition_columns)
    if partitions and partitions != table_partitions:
        raise SchemaMismatchError(
            f"partition_by={partitions} differs from the table's partition columns {table_partitions} "
            f"at {root}. Nothing was written."
        )
    return table_partitions


def _commit(
    root: str,
    table: DeltaTable | None,
    actions: list[AddAction],
    mode: WriteMode,
    schema: DeltaSchema,
    partitions: list[str],
    storage: dict[str, str] | None = None,
) -> None:
    if table is None:
        try:
            create_table_with_add_actions(
                root, schema, actions, mode="error", partition_by=partitions or None, storage_options=storage
            )
            return
        except Exception:
            # Another writer may have created the table meanwhile: then commit to it like any write.
            table = open_delta(root, storage_options=storage)
            if table is None:
                raise
            _check_compatible(table, schema, partitions, root)
    file_actions: list[AddAction | RemoveAction] = [*actions]
    table.create_write_transaction(file_actions, mode=mode, schema=schema, partition_by=partitions or None)


def _partition_values(folders: PurePosixPath, partitions: list[str]) -> dict[str, str | None]:
    """The partition values a file's Hive folders (``k=v``, percent-encoded) give it."""
    values: dict[str, str | None] = {}
    for part in folders.parts:
        key, sep, value = part.partition("=")
        if sep and key in partitions:
            text = unquote(value)
            values[key] = None if text == _NULL_PARTITION else text
    return values


def _add_action(root: Path, file: Path, partitions: list[str]) -> AddAction:
    relative = PurePosixPath(file.relative_to(root).as_posix())
    info = file.stat()
    return AddAction(
        path=str(relative),
        size=info.st_size,
        partition_values=_partition_values(relative.parent, partitions),
        modification_time=int(info.st_mtime * 1000),
        data_change=True,
        stats=json.dumps(parquet_file_stats(file)),
    )


def _store_add_action(fs: Any, root: str, info: Any, partitions: list[str]) -> AddAction:
    """As ``_add_action``, for a file in an object store (its footer read with ranged requests)."""
    relative = PurePosixPath(info.path).relative_to(root)
    with fs.open_input_file(info.path) as handle:
        stats = parquet_file_stats(handle)
    return AddAction(
        path=str(relative),
        size=info.size,
        partition_values=_partition_values(relative.parent, partitions),
        modification_time=info.mtime_ns // 1_000_000 if info.mtime_ns is not None else 0,
        data_change=True,
        stats=json.dumps(stats),
    )


def parquet_file_stats(file: Path | Any) -> dict[str, Any]:
    """Delta per-file statistics (numRecords, minValues, maxValues, nullCount) from a Parquet footer."""
    metadata = pq.ParquetFile(file).metadata
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    unusable: set[str] = set()
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        for column_index in range(group.num_columns):
            column = group.column(column_index)
            name = column.path_in_schema
            if "." in name:  # nested field: no top-level statistics
                continue
            stats = column.statistics
            if stats is None:
                unusable.add(name)
                continue
            if stats.has_null_count:
                nulls[name] = nulls.get(name, 0) + stats.null_count
            if not stats.has_min_max:
                if stats.has_null_count and stats.null_count == group.num_rows:
                    continue  # an all-null chunk bounds nothing
                unusable.add(name)
                continue
            low, high = _stat_value(stats.min), _stat_value(stats.max)
            if low is None or high is None:
                unusable.add(name)
                continue
            minimum[name] = low if name not in minimum else min(minimum[name], low)
            maximum[name] = high if name not in maximum else max(maximum[name], high)
    return {
        "numRecords": metadata.num_rows,
        "minValues": {k: _json_value(v) for k, v in minimum.items() if k not in unusable},
        "maxValues": {k: _json_value(v) for k, v in maximum.items() if k not in unusable},
        "nullCount": nulls,
    }


def _stat_value(value: Any) -> Any:
    """A statistic Delta can use, or None (NaN, binary, long strings, decimals)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and len(value) > _MAX_STATS_STRING:
        return None
    if isinstance(value, bytes | Decimal):
        return None
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
