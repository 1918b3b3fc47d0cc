"""A location's filesystem and how each engine reaches it: pyarrow's filesystems for files, delta-rs's storage
options for Delta commits. Credentials and endpoints come from the environment, as AWS tools take them
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` for an S3-compatible server): never from a config file, so
that no secret reaches a config, an MLflow param or a log (the storage options hold no secret either:
delta-rs reads the keys from the same environment)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.errors import DataError
from pipeline.storage.locations import Location, parse_location

if TYPE_CHECKING:  # imported where used: the config, which checks locations, loads without pyarrow
    import pyarrow.fs as pafs

DEFAULT_REGION = "us-east-1"
# A store that does not answer ends the check after this long (connect and each request), with one retry:
# a wrong endpoint is told in seconds, not after the SDK's default of minutes.
DEFAULT_TIMEOUT_S = 10.0


class StorageError(DataError):
    """A location that cannot be reached or used as asked: one line naming the setting, the value and why."""


@dataclass(frozen=True)
class S3Endpoint:
    """Where S3 requests go: ``url`` None is AWS itself; ``credentials`` says where the keys come from
    (never the keys)."""

    url: str | None
    region: str
    credentials: str


def s3_endpoint(environ: Mapping[str, str] | None = None) -> S3Endpoint:
    """The S3 endpoint, region and credential source ``environ`` (default: this process's, which pyarrow and
    delta-rs read too) names, by the AWS CLI's own variables."""
    env = os.environ if environ is None else environ
    url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    if env.get("AWS_ACCESS_KEY_ID"):
        credentials = "AWS_ACCESS_KEY_ID"
    elif env.get("AWS_PROFILE"):
        credentials = f"profile {env['AWS_PROFILE']}"
    else:
        credentials = "the default chain (~/.aws, instance role)"
    return S3Endpoint(url, region, credentials)


def filesystem(location: Location, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for ``location`` and the path within it."""
    import pyarrow.fs as pafs

    if location.is_local:
        return pafs.LocalFileSystem(), location.key
    if location.scheme != "s3":  # gs://, abfs://: pyarrow's own resolution of the URI (untested here)
        resolved, path = pafs.FileSystem.from_uri(location.uri)
        return resolved, path
    endpoint = s3_endpoint()
    options: dict[str, object] = {
        "region": endpoint.region,
        "connect_timeout": timeout,
        "request_timeout": timeout,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2),
    }
    if endpoint.url is not None:
        parts = urlsplit(endpoint.url)
        options.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
    return pafs.S3FileSystem(**options), f"{location.bucket}/{location.key}".rstrip("/")


def delta_storage_options(location: Location | str | Path) -> dict[str, str]:
    """delta-rs's ``storage_options`` for a table at ``location`` (a local path or a URI as text is parsed
    first; an empty dict for a local table). Commits to S3 use conditional puts
    (``aws_conditional_put: etag``: a commit file is written only if absent, so two writers never both take
    one version; AWS S3 and S3-compatible servers that honour ``If-None-Match`` support it), not the
    unsafe-rename mode, which is safe for a single writer only."""
    if not isinstance(location, Location):
        location = parse_location(location, "path")
    if location.is_local or location.scheme != "s3":
        return {}
    endpoint = s3_endpoint()
    options = {"AWS_REGION": endpoint.region, "aws_conditional_put": "etag"}
    if endpoint.url is not None:
        options["AWS_ENDPOINT_URL"] = endpoint.url
        if endpoint.url.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def table_location(path: str | Path, field: str) -> dict[str, str]:
    """Before a Delta table is created at ``path``: a bucket checked to answer (one line naming ``field``
    otherwise), a local folder made; delta-rs's storage options for it."""
    location = parse_location(path, field)
    if location.is_local:
        Path(location.key).mkdir(parents=True, exist_ok=True)
    else:
        check_reachable(location, field)
    return delta_storage_options(location)


def describe(location: Location) -> str:
    """What ``location`` resolves to, for ``info`` and error lines (no secret)."""
    if location.is_local:
        return "local filesystem"
    if location.scheme != "s3":
        return f"{location.scheme}:// through pyarrow's filesystem (credentials from its environment)"
    endpoint = s3_endpoint()
    where = endpoint.url or "AWS"
    return (
        f"S3 bucket {location.bucket!r} at {where} (region {endpoint.region}, credentials: {endpoint.credentials})"
    )


def check_reachable(location: Location, field: str, timeout: float = DEFAULT_TIMEOUT_S) -> pafs.FileType:
    """What is at ``location`` (a file, a directory or a prefix, nothing), after checking that its bucket
    exists and the store answers with the credentials given; else one line (``StorageError``)."""
    import pyarrow.fs as pafs

    fs, path = filesystem(location, timeout)
    try:
        bucket_missing = (
            location.scheme == "s3" and fs.get_file_info(location.bucket).type == pafs.FileType.NotFound
        )
        if bucket_missing:
            raise StorageError(f"{field} = {location.uri!r}: no such bucket ({describe(location)})")
        return fs.get_file_info(path).type
    except OSError as error:
        raise StorageError(f"{field} = {location.uri!r}: {_reason(error, location, timeout)}") from None


def _reason(error: OSError, location: Location, timeout: float) -> str:
    """The store's error as what a user can act on."""
    text = str(error)
    endpoint = s3_endpoint()
    if any(code in text for code in ("ACCESS_DENIED", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403")):
        return f"the store refused the credentials ({endpoint.credentials}) for bucket {location.bucket!r}"
    if any(code in text for code in ("NETWORK_CONNECTION", "curlCode", "Timeout", "timed out")):
        return f"the endpoint {endpoint.url or 'AWS S3'} did not answer within {timeout:g} s"
    return " ".join(text.split())[:300]
