"""Where data lives: a local path or an object-store URI (``s3://bucket/key``), resolved in one place.

``locations`` is pure (parsing, the allowed-roots rule); the filesystem adapter gives pyarrow's filesystem
for a location, delta-rs's storage options, a one-line description for ``info`` and a bounded check that
the location can be reached. Credentials and endpoints come from the environment as AWS tools take them.
"""

from pipeline.storage._filesystems import (
    DEFAULT_TIMEOUT_S,
    S3Endpoint,
    StorageError,
    check_reachable,
    delta_storage_options,
    describe,
    filesystem,
    s3_endpoint,
    table_location,
)
from pipeline.storage.locations import (
    OBJECT_STORE_SCHEMES,
    Location,
    LocationError,
    confine_location,
    is_object_store,
    parse_location,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "OBJECT_STORE_SCHEMES",
    "Location",
    "LocationError",
    "S3Endpoint",
    "StorageError",
    "check_reachable",
    "confine_location",
    "delta_storage_options",
    "describe",
    "filesystem",
    "is_object_store",
    "parse_location",
    "s3_endpoint",
    "table_location",
]
