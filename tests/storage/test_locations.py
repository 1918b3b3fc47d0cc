"""Data locations as users write them, and the allowed-roots rule for paths that arrive in requests. Pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.storage import Location, LocationError, confine_location, is_object_store, parse_location


def test_object_store_uris_parse_into_scheme_bucket_and_key() -> None:
    assert parse_location("s3://data-lake/raw/tx/", "data.source.path") == Location("s3", "data-lake", "raw/tx")
    assert parse_location("S3://data-lake", "f") == Location("s3", "data-lake", "")
    assert parse_location("s3://data-lake//a///b", "f").uri == "s3://data-lake/a/b"
    assert parse_location("gs://bucket.example/x", "f").scheme == "gs"
    assert is_object_store("s3://b/x") and not is_object_store("/tmp/x") and not is_object_store("file:///tmp")


def test_local_paths_resolve_against_the_base_and_file_uris_are_local(tmp_path: Path) -> None:
    assert parse_location("data/t", "f", base_dir=tmp_path) == Location("file", "", str(tmp_path / "data/t"))
    assert parse_location(f"file://{tmp_path}/x", "f") == Location("file", "", f"{tmp_path}/x")
    assert parse_location(tmp_path / "y", "f").is_local


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "data.source.path = '': not a location (a path or scheme://bucket/key)"),
        (
            "ftp://host/x",
            "data.source.path = 'ftp://host/x': unknown scheme ftp:// (a local path, or one of s3://",
        ),
        ("s3://Data_Lake/x", "data.source.path = 's3://Data_Lake/x': 'Data_Lake' is not a bucket name (3-63"),
        ("s3:///x", "data.source.path = 's3:///x': '' is not a bucket name"),
        ("s3://b1b/a/../../etc", "data.source.path = 's3://b1b/a/../../etc': '.' and '..' are not allowed in an"),
    ],
)
def test_a_location_that_is_not_one_is_one_line_naming_the_field_value_and_rule(text: str, says: str) -> None:
    with pytest.raises(LocationError) as raised:
        parse_location(text, "data.source.path")
    assert str(raised.value).startswith(says) and "\n" not in str(raised.value), raised.value


def test_join_stays_below_and_contains_goes_segment_by_segment(tmp_path: Path) -> None:
    root = parse_location("s3://lake/data", "f")
    assert root.join("demo", "tx/") == Location("s3", "lake", "data/demo/tx")
    assert root.contains(root) and root.contains(root.join("a"))
    assert not root.contains(parse_location("s3://lake/data-other/x", "f"))  # a prefix, not a folder
    assert not root.contains(parse_location("s3://other/data/x", "f"))
    assert parse_location("s3://lake", "f").contains(root)
    assert not root.contains(parse_location(tmp_path, "f"))
    with pytest.raises(LocationError):
        root.join("../escape")


def test_request_paths_are_confined_to_the_data_roots_local_and_in_a_bucket(tmp_path: Path) -> None:
    (tmp_path / "data" / "demo").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "data" / "link").symlink_to(tmp_path / "outside")
    roots = [str(tmp_path / "data"), "s3://lake/data"]
    assert confine_location("demo", roots) == Location("file", "", str(tmp_path / "data" / "demo"))
    assert confine_location("s3://lake/data/tx", roots) == Location("s3", "lake", "data/tx")
    assert confine_location("demo", ["s3://lake/data"]) == Location("s3", "lake", "data/demo")
    refused = {
        "../outside": "resolves to",
        "link": "resolves to",  # a symlink out of the root
        "/etc": "resolves to",
        "s3://lake/data-other/tx": "outside the data roots",  # a prefix trick
        "s3://lake/data/../secret": "'.' and '..' are not allowed",
        "s3://elsewhere/data": "outside the data roots",
        "": "not a location",
        "a\x00b": "not a location",
    }
    for requested, says in refused.items():
        with pytest.raises(LocationError) as raised:
            confine_location(requested, roots)
        assert says in str(raised.value) and str(raised.value).startswith("data_path = "), raised.value
    with pytest.raises(
        LocationError, match=r"'\.\.' is not allowed below an object-store root \(s3://lake/data\)"
    ):
        confine_location("../x", ["s3://lake/data"])
    with pytest.raises(LocationError, match=r"no data roots are configured"):
        confine_location("demo", [])
    with pytest.raises(LocationError) as raised:
        confine_location("/etc", roots)
    message = str(raised.value)
    assert message.endswith(f"outside the data roots ({tmp_path / 'data'}, s3://lake/data)"), message
