"""Data: Delta (via delta-rs), Parquet and CSV readers with lineage, a Delta writer, demo data sets."""

from pipeline.data._arrow import read_columns, source_format
from pipeline.data._delta import DeltaWrite, open_delta, parquet_file_stats, schema_differences, write_delta
from pipeline.data._demo import generate
from pipeline.data._ingest import ingest
from pipeline.data._readers import Snapshot, read_table

__all__ = [
    "DeltaWrite",
    "Snapshot",
    "generate",
    "ingest",
    "open_delta",
    "parquet_file_stats",
    "read_columns",
    "read_table",
    "schema_differences",
    "source_format",
    "write_delta",
]
