"""Delta tables written by Spark + delta-rs and read back by version, on real engines."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pipeline.config import GeneratedData, TableSource
from pipeline.data import generate, read_table, write_delta
from pipeline.errors import DataError, SchemaMismatchError


def rows_of(spark: Any, path: Path, version: int | None = None) -> list[tuple[Any, ...]]:
    snapshot = read_table(spark, TableSource(path=path, version=version))
    return sorted(tuple(row) for row in snapshot.df.collect())


def parquet_files(path: Path) -> set[Path]:
    return {file for file in path.rglob("*.parquet") if "_delta_log" not in file.parts}


@pytest.fixture(scope="module")
def transactions(spark: Any) -> Any:
    """2,000 generated transactions, cached: the same rows for every test in this module."""
    return generate(spark, GeneratedData(generator="classification", rows=2000, seed=7)).cache()


def test_write_append_overwrite_and_time_travel(spark: Any, tmp_path: Path, transactions: Any) -> None:
    table = tmp_path / "t"
    first = transactions.limit(500)
    second = transactions.subtract(first).limit(300)

    created = write_delta(first, table, mode="overwrite")
    appended = write_delta(second, table, mode="append")
    replaced = write_delta(second, table, mode="overwrite")

    assert (created.version, appended.version, replaced.version) == (0, 1, 2)
    assert (created.rows, appended.rows, replaced.rows) == (500, 300, 300)
    v0, v1, v2 = (rows_of(spark, table, v) for v in (0, 1, 2))
    assert v0 == sorted(tuple(r) for r in first.collect())
    assert v1 == sorted(v0 + sorted(tuple(r) for r in second.collect()))
    assert v2 == sorted(tuple(r) for r in second.collect())
    latest = read_table(spark, TableSource(path=table))
    assert (latest.version, latest.rows) == (2, 300)
    assert latest.lineage()["data.delta_version"] == "2"
    assert latest.df.columns == transactions.columns


def test_delta_rs_reads_what_spark_wrote_with_stats(spark: Any, tmp_path: Path, transactions: Any) -> None:
    table = tmp_path / "t"
    write_delta(transactions, table)
    arrow = DeltaTable(str(table)).to_pyarrow_table()
    assert arrow.num_rows == 2000
    assert arrow.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    actions = pa.table(DeltaTable(str(table)).get_add_actions(flatten=True)).to_pylist()
    assert sum(a["num_records"] for a in actions) == 2000
    bounds = transactions.selectExpr("min(amount)", "max(amount)").first()
    assert min(a["min.amount"] for a in actions) == bounds[0]
    assert max(a["max.amount"] for a in actions) == bounds[1]
    assert sum(a["null_count.customer_age"] for a in actions) == transactions.where("customer_age is null").count()


def test_partitioned_table_keeps_partition_values_including_null(
    spark: Any, tmp_path: Path, transactions: Any
) -> None:
    table = tmp_path / "t"
    write_delta(transactions, table, partition_by=["device"])
    delta = DeltaTable(str(table))
    assert delta.metadata().partition_columns == ["device"]
    values = {a["partition.device"] for a in pa.table(delta.get_add_actions(flatten=True)).to_pylist()}
    assert values == {"mobile", "desktop", "tablet", None}
    assert rows_of(spark, table) == sorted(tuple(r) for r in transactions.collect())
    # Appending without naming the partitions keeps the table's partitioning.
    write_delta(transactions.limit(10), table, mode="append")
    assert read_table(spark, TableSource(path=table)).rows == 2010
    pruned = delta.file_uris(partition_filters=[("device", "=", "tablet")])
    assert pruned and all("device=tablet" in uri for uri in pruned)


def test_schema_mismatch_leaves_table_untouched(spark: Any, tmp_path: Path, transactions: Any) -> None:
    table = tmp_path / "t"
    write_delta(transactions.limit(100), table)
    files_before = parquet_files(table)
    wrong = [
        transactions.limit(5).withColumnRenamed("amount", "amount_usd"),
        transactions.limit(5).withColumn("hour", transactions["hour"].cast("string")),
        transactions.limit(5).drop("label"),
    ]
    messages = []
    modes: list[Literal["append", "overwrite"]] = ["append", "overwrite", "append"]
    for frame, mode in zip(wrong, modes, strict=True):
        with pytest.raises(SchemaMismatchError) as caught:
            write_delta(frame, table, mode=mode)
        messages.append(str(caught.value))
    assert all("Nothing was written" in message for message in messages)
    assert "missing column 'amount' (double); unexpected column 'amount_usd' (double)" in messages[0]
    assert "column 'hour' is string, table has integer" in messages[1]
    assert "missing column 'label' (integer)" in messages[2]
    assert DeltaTable(str(table)).version() == 0
    assert parquet_files(table) == files_before
    assert read_table(spark, TableSource(path=table)).rows == 100


def test_partition_mismatch_is_refused(spark: Any, tmp_path: Path, transactions: Any) -> None:
    table = tmp_path / "t"
    write_delta(transactions.limit(50), table, partition_by=["device"])
    with pytest.raises(SchemaMismatchError, match="partition columns"):
        write_delta(transactions.limit(50), table, mode="append", partition_by=["country"])
    with pytest.raises(DataError, match="not in the data"):
        write_delta(transactions.limit(50), tmp_path / "other", partition_by=["nope"])


def test_concurrent_appends_lose_no_rows(spark: Any, tmp_path: Path, transactions: Any) -> None:
    table = tmp_path / "t"
    write_delta(transactions.limit(100), table)
    errors: list[BaseException] = []

    def append(offset: int) -> None:
        try:
            for _ in range(3):
                write_delta(transactions.limit(offset), table, mode="append")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=append, args=(n,)) for n in (10, 20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert DeltaTable(str(table)).version() == 6
    assert read_table(spark, TableSource(path=table)).df.count() == 100 + 3 * 10 + 3 * 20


def test_failing_write_commits_nothing(spark: Any, tmp_path: Path, transactions: Any) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    table = tmp_path / "t"
    write_delta(transactions.limit(100), table)
    files_before = parquet_files(table)

    @F.udf(DoubleType())
    def explode_late(value: float) -> float:
        if value > 500:  # some rows pass, then the task fails midway through the write
            raise ValueError("poisoned row")
        return value

    poisoned = transactions.repartition(4).withColumn("amount", explode_late("amount"))
    with pytest.raises(Exception, match="poisoned row"):
        write_delta(poisoned, table, mode="append")
    assert DeltaTable(str(table)).version() == 0
    assert parquet_files(table) == files_before
    staging = table / "_staging"
    assert not staging.exists() or not any(staging.iterdir())
    assert read_table(spark, TableSource(path=table)).df.count() == 100


def test_empty_table_reads_as_empty_frame_with_schema(spark: Any, tmp_path: Path, transactions: Any) -> None:
    table = tmp_path / "t"
    write_delta(transactions.limit(0), table)
    snapshot = read_table(spark, TableSource(path=table))
    assert snapshot.df.count() == 0
    assert snapshot.df.columns == transactions.columns
    assert snapshot.version == 0


def test_read_errors_name_the_problem(spark: Any, tmp_path: Path, transactions: Any) -> None:
    with pytest.raises(DataError, match="no Delta table there"):
        read_table(spark, TableSource(path=tmp_path / "missing"))
    write_delta(transactions.limit(5), tmp_path / "t")
    with pytest.raises(DataError, match=r"version = 4: the table at .* has versions 0..0"):
        read_table(spark, TableSource(path=tmp_path / "t", version=4))
    with pytest.raises(DataError, match="no csv data there"):
        read_table(spark, TableSource(path=tmp_path / "nope.csv", format="csv"))


def test_parquet_and_csv_sources(spark: Any, tmp_path: Path) -> None:
    frame = spark.createDataFrame([(1, "a", 0.5), (2, "b", 1.5)], "id int, name string, score double")
    frame.write.parquet(str(tmp_path / "p"))
    frame.write.option("header", "true").csv(str(tmp_path / "c"))
    parquet = read_table(spark, TableSource(path=tmp_path / "p", format="parquet"))
    csv = read_table(spark, TableSource(path=tmp_path / "c", format="csv"))
    assert parquet.version is None and csv.version is None
    assert sorted(tuple(r) for r in parquet.df.collect()) == [(1, "a", 0.5), (2, "b", 1.5)]
    assert sorted(tuple(r) for r in csv.df.collect()) == [(1, "a", 0.5), (2, "b", 1.5)]
    assert dict(csv.df.dtypes) == {"id": "int", "name": "string", "score": "double"}
