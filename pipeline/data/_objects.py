"""Tables in an object store, read into Spark through Ray Data. Spark has no S3 connector here (Hadoop's S3
jars cannot be downloaded, at build or at run time), so pyarrow reads the files in Ray tasks and RayDP hands
the blocks to Spark's executors through Ray's object store: the driver never holds the table, and Ray spills
blocks to disk when the object store fills. Credentials and the endpoint come from each process's environment
(``pipeline.storage``): the workers of a local Ray inherit the driver's."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from pipeline.config import TableSource
from pipeline.errors import DataError
from pipeline.storage import Location, filesystem, parse_location

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Spark's CSV reader options that pyarrow's CSV reader does the same with; any other is refused by name.
_CSV_OPTIONS = ("header", "sep", "delimiter", "inferSchema")


def delta_frame(spark: SparkSession, uri: str, version: int, storage_options: dict[str, str]) -> DataFrame:
    """Version ``version`` of the Delta table at ``uri`` (its partition columns typed as the table has them)."""
    import ray.data

    dataset = ray.data.read_delta(uri, version=version, storage_options=storage_options)
    return dataset.to_spark(spark)


def files_frame(spark: SparkSession, source: TableSource, field: str) -> tuple[DataFrame, int]:
    """The Parquet or CSV files at ``source.path`` (a file or every file below a prefix), and how many."""
    import ray.data

    fs, path = filesystem(parse_location(str(source.path), field))
    if source.format == "csv":
        dataset = ray.data.read_csv(path, filesystem=fs, **_csv_arguments(source.options, field))
    else:
        if source.options:
            raise DataError(
                f"{field.rpartition('.')[0]}.options = {source.options}: Parquet in an object store takes none"
            )
        # Ray Data's first reader (datasource v1): v2's footer-reading actors failed to start after a write in
        # the same session (Ray 2.60: "Expected str or bytes, got NoneType" loading their class from the GCS).
        ray.data.DataContext.get_current().use_datasource_v2 = False
        dataset = ray.data.read_parquet(path, filesystem=fs)
    return dataset.to_spark(spark), _count_files(fs, path, source.format)


def _count_files(fs: Any, path: str, extension: str) -> int:
    """The files Ray Data reads at ``path``: it, or those below it ending in ``.<extension>``."""
    import pyarrow.fs as pafs

    if fs.get_file_info(path).type == pafs.FileType.File:
        return 1
    below = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sum(1 for info in below if info.type == pafs.FileType.File and info.path.endswith(f".{extension}"))


def _csv_arguments(options: dict[str, str], field: str) -> dict[str, Any]:
    """Spark's CSV options as pyarrow's: a header line (the default) and a delimiter; types are inferred."""
    import pyarrow.csv as pacsv

    unknown = sorted(set(options) - set(_CSV_OPTIONS))
    if unknown:
        raise DataError(
            f"{field.rpartition('.')[0]}.options = {options}: {unknown} not supported for CSV in an object store "
            f"(supported: {', '.join(_CSV_OPTIONS)})"
        )
    header = options.get("header", "true").lower() != "false"
    delimiter = options.get("sep") or options.get("delimiter") or ","
    return {
        "read_options": pacsv.ReadOptions(autogenerate_column_names=not header),
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": pacsv.ConvertOptions(strings_can_be_null=True),  # an empty field is null, as in Spark
    }


def write_object_files(df: DataFrame, location: Location, partitions: list[str], write_id: str) -> list[Any]:
    """Write ``df`` as Parquet files below ``location``, in Hive folders (``k=v``) for ``partitions``, each
    file's name starting with ``write_id``; the written files' infos (pyarrow's), found by that prefix. The
    rows go from Spark's executors to Ray's object store (``ray.data.from_spark``) and from Ray tasks to the
    store: no rename (an object store has none), no file through the driver."""
    import ray.data
    from ray.data.datasource import FilenameProvider

    fs, root = filesystem(location)
    # Hive folders, as Spark writes them (`k=v`, a null as __HIVE_DEFAULT_PARTITION__); the flavour may only be
    # named with partition columns.
    hive: dict[str, Any] = {"partition_cols": partitions, "partitioning_flavor": "hive"} if partitions else {}
    names = FilenameProvider(dataset_uuid=write_id, file_format="parquet")
    with warnings.catch_warnings():  # RayDP reads `df.sql_ctx`, which PySpark warns about on every call
        warnings.filterwarnings("ignore", message="DataFrame.sql_ctx is an internal property")
        dataset = ray.data.from_spark(df)
    dataset.write_parquet(root, filesystem=fs, filename_provider=names, **hive)
    return files_of_write(location, write_id)


def files_of_write(location: Location, write_id: str) -> list[Any]:
    """The files below ``location`` whose names start with ``write_id``: one write's, finished or not."""
    import pyarrow.fs as pafs

    fs, root = filesystem(location)
    below = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return [info for info in below if info.type == pafs.FileType.File and info.base_name.startswith(write_id)]
