"""Tables in a bucket on a real S3 API (moto's server on 127.0.0.1), read into the session's Spark through Ray
Data: Delta with time travel, Parquet and CSV, and a one-line error for each thing that can be missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from pipeline.config import ConfigError, GeneratedData, StoreURI, TableSource, config_from_dict
from pipeline.data import generate, ingest, read_columns, read_table, source_format, write_delta
from pipeline.errors import DataError, SchemaMismatchError
from pipeline.storage import delta_storage_options, filesystem, parse_location

ROWS = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "amount": pa.array([10.5, None, 7.25, 3.0], pa.float64()),
        "country": pa.array(["fr", "de", None, "fr"], pa.string()),
        "label": pa.array([1, 0, 0, 1], pa.int32()),
    }
)


def _source(path: str, **fields: Any) -> TableSource:
    return TableSource.model_validate({"path": path, **fields})  # as a config file gives it


def _rows(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in df.collect())


def _expected(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted(tuple(row.values()) for row in table.to_pylist())


def test_a_delta_table_in_a_bucket_is_read_at_each_version_with_its_partitions(spark: Any, bucket: str) -> None:
    uri = f"s3://{bucket}/lake/tx"
    storage = delta_storage_options(parse_location(uri, "t"))
    write_deltalake(uri, ROWS.slice(0, 2), partition_by=["country"], storage_options=storage)
    write_deltalake(uri, ROWS.slice(2), mode="append", partition_by=["country"], storage_options=storage)

    latest = read_table(spark, _source(uri))
    assert (latest.version, latest.rows, latest.format, latest.path) == (1, 4, "delta", uri)
    assert latest.df.columns == ROWS.column_names  # the table's order, the partition column in place
    assert _rows(latest.df) == _expected(ROWS)  # a null partition value comes back as null
    first = read_table(spark, _source(uri, version=0))
    assert (first.version, first.rows) == (0, 2) and _rows(first.df) == _expected(ROWS.slice(0, 2))
    assert first.lineage()["data.delta_version"] == "0" and first.lineage()["data.path"] == uri

    with pytest.raises(DataError) as raised:
        read_table(spark, _source(uri, version=5))
    assert str(raised.value) == f"data.source.version = 5: the table at {uri} has versions 0..1"


def _parquet_keys(bucket: str, prefix: str) -> set[str]:
    import pyarrow.fs as pafs

    fs, root = filesystem(parse_location(f"s3://{bucket}/{prefix}", "t"))
    found = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return {info.path for info in found if info.path.endswith(".parquet")}


def test_spark_rows_are_committed_to_a_bucket_and_a_failed_or_refused_write_leaves_nothing(
    spark: Any, bucket: str
) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    uri = f"s3://{bucket}/lake/generated"
    rows = generate(spark, GeneratedData(generator="classification", rows=500, seed=5)).cache()
    # A partition column with a null value: Delta's null partition, as Spark writes it locally.
    partitioned = rows.withColumn("shard", F.when(F.col("amount") > 100, F.lit("big")).otherwise(F.lit(None)))
    first = write_delta(partitioned.limit(200), uri, mode="overwrite", partition_by=["shard"])
    second = write_delta(partitioned.limit(300), uri, mode="append")
    assert (first.version, first.rows, second.version, second.rows, second.path) == (0, 200, 1, 300, uri)
    latest = read_table(spark, _source(uri))
    assert latest.rows == 500 and latest.df.count() == 500 and latest.df.columns == partitioned.columns
    expected = sorted(tuple(row) for row in partitioned.limit(200).collect())
    assert _rows(read_table(spark, _source(uri, version=0)).df) == expected  # the null partition included
    keys = _parquet_keys(bucket, "lake/generated")
    assert any("shard=__HIVE_DEFAULT_PARTITION__/" in key for key in keys) and any(
        "shard=big/" in key for key in keys
    )

    @F.udf(DoubleType())
    def explode_late(value: float) -> float:
        if value > 500:  # some rows are written, then a task fails midway through the write
            raise ValueError("poisoned row")
        return value

    poisoned = partitioned.repartition(4).withColumn("amount", explode_late("amount"))
    with pytest.raises(Exception, match="poisoned row"):
        write_delta(poisoned, uri, mode="append")
    with pytest.raises(SchemaMismatchError) as refused:
        write_delta(rows, uri, mode="append")  # no `shard` column
    assert "missing column 'shard'" in str(refused.value) and "Nothing was written" in str(refused.value)
    assert _parquet_keys(bucket, "lake/generated") == keys  # neither left a file behind
    assert read_table(spark, _source(uri)).version == 1


def test_parquet_and_csv_files_in_a_bucket_are_read_like_local_ones(spark: Any, bucket: str) -> None:
    fs, root = filesystem(parse_location(f"s3://{bucket}/raw", "t"))
    with fs.open_output_stream(f"{root}/tx.parquet") as out:
        pq.write_table(ROWS, out)
    for part, rows in (("a", ROWS.slice(0, 2)), ("b", ROWS.slice(2))):  # a prefix of two CSV files
        with fs.open_output_stream(f"{root}/csv/{part}.csv") as out:
            pacsv.write_csv(rows, out, pacsv.WriteOptions(delimiter=";"))

    parquet = read_table(spark, _source(f"s3://{bucket}/raw/tx.parquet", format="parquet"))
    assert (parquet.files, parquet.version, parquet.rows) == (1, None, None)
    assert _rows(parquet.df) == _expected(ROWS)
    csv = read_table(spark, _source(f"s3://{bucket}/raw/csv", format="csv", options={"sep": ";"}))
    assert csv.files == 2 and csv.df.columns == ROWS.column_names
    # pyarrow's CSV reader infers the same values (its integers are 64-bit, as Spark's inferSchema makes int)
    assert [(r[0], r[1], r[2], r[3]) for r in _rows(csv.df)] == [(r[0], r[1], r[2], r[3]) for r in _expected(ROWS)]

    # `ingest` from the CSV files in the bucket into a Delta table in the same bucket, as a config says it.
    raw = {
        "data": {
            "source": {"path": f"s3://{bucket}/lake/from-csv"},
            "label": "label",
            "ingest": {"input": {"path": f"s3://{bucket}/raw/csv", "format": "csv", "options": {"sep": ";"}}},
        }
    }
    data = config_from_dict(raw, base_dir=Path("/nonexistent"), environ={}).data
    written = ingest(spark, data)
    assert (written.path, written.version, written.rows) == (f"s3://{bucket}/lake/from-csv", 0, 4)
    assert _rows(read_table(spark, data.source).df) == _rows(csv.df)

    with pytest.raises(DataError) as raised:
        read_table(spark, _source(f"s3://{bucket}/raw/csv", format="csv", options={"quote": "'"}))
    assert str(raised.value) == (
        "data.source.options = {'quote': \"'\"}: ['quote'] not supported for CSV in an object store "
        "(supported: header, sep, delimiter, inferSchema)"
    )


def test_what_is_missing_in_a_bucket_is_one_line(spark: Any, bucket: str) -> None:
    cases = {
        f"s3://{bucket}/lake/none": f"data.source.path = 's3://{bucket}/lake/none': no Delta table there ",
        "s3://no-such-bucket-here/tx": (
            "data.source.path = 's3://no-such-bucket-here/tx': no such bucket (S3 bucket"
        ),
    }
    for uri, start in cases.items():
        with pytest.raises(DataError) as raised:
            read_table(spark, _source(uri))
        assert str(raised.value).startswith(start) and "\n" not in str(raised.value), raised.value
    with pytest.raises(DataError) as raised:  # and `ingest` into a bucket that is not there: the same line
        write_delta(spark.range(3), "s3://no-such-bucket-here/tx")
    assert str(raised.value).startswith(cases["s3://no-such-bucket-here/tx"]), raised.value
    with pytest.raises(DataError) as raised:
        read_table(spark, _source(f"s3://{bucket}/raw/none.parquet", format="parquet"))
    assert str(raised.value) == f"data.source.path = 's3://{bucket}/raw/none.parquet': no parquet data there"


def test_the_config_takes_a_bucket_uri_as_written_and_refuses_a_bad_one(tmp_path: Path) -> None:
    raw: dict[str, Any] = {"data": {"source": {"path": "s3://lake-bucket/tx/"}, "label": "label"}}
    config = config_from_dict(raw, base_dir=tmp_path, environ={})
    assert config.data.source.path == "s3://lake-bucket/tx" and isinstance(config.data.source.path, StoreURI)
    raw["data"]["source"]["path"] = "data/tx"  # a local path still resolves against the project root
    assert config_from_dict(raw, base_dir=tmp_path, environ={}).data.source.path == tmp_path / "data" / "tx"
    raw["data"]["source"]["path"] = "s3://lake-bucket/a/../tx"
    with pytest.raises(ConfigError) as raised:
        config_from_dict(raw, base_dir=tmp_path, environ={})
    assert str(raised.value).endswith(
        "data.source.path = 's3://lake-bucket/a/../tx': '.' and '..' are not allowed in an object key"
    ), raised.value


def test_a_side_table_in_a_bucket_is_read_without_spark(bucket: str) -> None:
    """`feedback --from` and `score --input` find a source's format and read its columns with pyarrow alone."""
    uri = f"s3://{bucket}/side"
    storage = delta_storage_options(parse_location(f"{uri}/delta", "t"))
    write_deltalake(f"{uri}/delta", ROWS, storage_options=storage)
    fs, root = filesystem(parse_location(uri, "t"))
    with fs.open_output_stream(f"{root}/csv/part.csv") as out:
        pacsv.write_csv(ROWS, out)
    with fs.open_output_stream(f"{root}/rows.parquet") as out:
        pq.write_table(ROWS, out)

    kinds = {name: source_format(f"{uri}/{name}") for name in ("delta", "csv", "rows.parquet")}
    assert kinds == {"delta": "delta", "csv": "csv", "rows.parquet": "parquet"}
    for name, kind in kinds.items():
        read = read_columns(f"{uri}/{name}", ["id", "label"], kind)
        assert sorted(read["id"].to_pylist()) == [1, 2, 3, 4], name
    with pytest.raises(DataError) as raised:
        read_columns(f"{uri}/rows.parquet", ["outcome"], "parquet")
    assert str(raised.value).startswith(f"--from {uri}/rows.parquet: no column 'outcome'; the parquet source has ")
    with pytest.raises(DataError) as raised:
        read_columns("s3://no-such-bucket-here/x", ["id"], "parquet")
    assert str(raised.value).startswith("--from = 's3://no-such-bucket-here/x': no such bucket"), raised.value
