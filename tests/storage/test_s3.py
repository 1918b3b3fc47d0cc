"""Locations in a bucket on a real S3 API (moto's server on 127.0.0.1): files through pyarrow, Delta commits
through delta-rs, and each failure a user meets told in one line within a bound."""

from __future__ import annotations

import socket
import threading
import time

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline.runtime import free_port
from pipeline.storage import (
    StorageError,
    check_reachable,
    delta_storage_options,
    describe,
    filesystem,
    parse_location,
    s3_endpoint,
)
from pipeline.tuning._storage import SweepStorage
from serving._prediction_log import create_log_table
from tests.storage._moto import moto_process
from tests.storage.conftest import SECRET


def test_files_in_a_bucket_are_written_and_read_through_the_locations_filesystem(bucket: str) -> None:
    location = parse_location(f"s3://{bucket}/raw/tx.parquet", "data.ingest.input")
    fs, path = filesystem(location)
    assert isinstance(fs, pafs.S3FileSystem) and path == f"{bucket}/raw/tx.parquet"
    pq.write_table(pa.table({"amount": [1.5, 2.5]}), path, filesystem=fs)
    assert pq.read_table(path, filesystem=fs).column("amount").to_pylist() == [1.5, 2.5]
    assert check_reachable(location, "data.ingest.input") == pafs.FileType.File
    assert check_reachable(parse_location(f"s3://{bucket}/raw", "f"), "f") == pafs.FileType.Directory
    assert check_reachable(parse_location(f"s3://{bucket}/none", "f"), "f") == pafs.FileType.NotFound


def test_a_delta_table_in_a_bucket_commits_versions_travels_in_time_and_takes_concurrent_writers(
    bucket: str,
) -> None:
    location = parse_location(f"s3://{bucket}/lake/tx", "data.source.path")
    options = delta_storage_options(location)
    assert options["aws_conditional_put"] == "etag" and options["AWS_ALLOW_HTTP"] == "true"
    write_deltalake(location.uri, pa.table({"x": [0, 1, 2]}), storage_options=options)
    # What the etag mode relies on: the server writes a key only if it is absent when asked (If-None-Match).
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint().url, region_name="us-east-1")
    commit = f"{location.key}/_delta_log/00000000000000000000.json"
    with pytest.raises(client.exceptions.ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=bucket, Key=commit, Body=b"{}", IfNoneMatch="*")
    # Two writers appending at once: every commit is kept, each at a version of its own. (A race is not
    # forced here: moto answers requests in turn, so this shows the mode works, the check above why it is safe.)
    errors: list[BaseException] = []

    def append(writer: int) -> None:
        try:
            for round_ in range(4):
                rows = pa.table({"x": [100 * writer + round_]})
                write_deltalake(location.uri, rows, storage_options=options, mode="append")
        except BaseException as error:  # reported below: a thread's own raise would be lost
            errors.append(error)

    writers = [threading.Thread(target=append, args=(writer,)) for writer in (1, 2)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    assert not errors, errors
    table = DeltaTable(location.uri, storage_options=options)
    assert table.version() == 8  # version 0, then 8 appends: none lost, none overwritten
    assert sorted(table.to_pyarrow_table().column("x").to_pylist()) == sorted(
        [0, 1, 2, *(100 * w + r for w in (1, 2) for r in range(4))]
    )
    first = DeltaTable(location.uri, version=0, storage_options=options)
    assert first.to_pyarrow_table().column("x").to_pylist() == [0, 1, 2]


def test_what_a_location_resolves_to_is_said_without_any_secret(bucket: str) -> None:
    location = parse_location(f"s3://{bucket}/lake", "data.source.path")
    said = describe(location)
    assert (
        said.startswith(f"S3 bucket '{bucket}' at http://127.0.0.1:") and "credentials: AWS_ACCESS_KEY_ID" in said
    )
    assert SECRET not in said and SECRET not in str(delta_storage_options(location))
    assert describe(parse_location("/tmp/x", "f")) == "local filesystem"
    endpoint = s3_endpoint(
        {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://s3:2", "AWS_PROFILE": "p"}
    )
    assert (endpoint.url, endpoint.region, endpoint.credentials) == ("http://s3:2", "us-east-1", "profile p")


def test_a_bucket_that_does_not_exist_is_one_line(bucket: str) -> None:
    location = parse_location("s3://no-such-bucket-here/tx", "data.source.path")
    with pytest.raises(StorageError) as raised:
        check_reachable(location, "data.source.path")
    message = str(raised.value)
    assert message.startswith("data.source.path = 's3://no-such-bucket-here/tx': no such bucket (S3 bucket"), (
        message
    )
    assert "\n" not in message and SECRET not in message


def test_an_endpoint_that_refuses_or_never_answers_ends_within_the_bound(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = parse_location(f"s3://{bucket}/tx", "data.source.path")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(StorageError, match=r"': the endpoint http://127\.0\.0\.1:\d+ did not answer within 1 s$"):
        check_reachable(location, "data.source.path", timeout=1)
    # A server that takes the connection and never answers: the request's own timeout ends it.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    started = time.monotonic()
    try:
        with pytest.raises(StorageError, match=r"did not answer within 1 s$"):
            check_reachable(location, "data.source.path", timeout=1)
    finally:
        silent.close()
    assert time.monotonic() - started < 30  # the SDK's default would wait minutes; 2 attempts of 1 s here


def test_keys_the_store_refuses_are_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second moto server, in its IAM mode (INITIAL_NO_AUTH_ACTION_COUNT): after its first request (which
    makes the bucket) it checks every request's keys, and refuses ours, as AWS refuses a wrong key."""
    import boto3

    with moto_process(free_port(), {"INITIAL_NO_AUTH_ACTION_COUNT": "1"}) as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="guarded")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        refused = r"the store refused the credentials \(AWS_ACCESS_KEY_ID\) for bucket 'guarded'$"
        with pytest.raises(StorageError, match=r"^data.source.path = 's3://guarded/tx': " + refused):
            check_reachable(parse_location("s3://guarded/tx", "data.source.path"), "data.source.path")
        with pytest.raises(StorageError, match=r"^tuning.storage = 's3://guarded/tune': " + refused):
            SweepStorage.of("s3://guarded/tune")
        with pytest.raises(StorageError, match=r"^serving.prediction_log.path = .*" + refused):
            create_log_table("s3://guarded/prediction_log")
