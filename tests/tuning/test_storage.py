"""Where sweeps keep Tune's state: a local folder and a bucket (moto's S3 API) behave alike for what a
resume needs (the sweeps under a prefix, a sweep's folder, its MLflow parent run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.storage import StorageError
from pipeline.tuning._storage import SweepStorage


@pytest.fixture(params=["local", "bucket"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> SweepStorage:
    if request.param == "local":
        return SweepStorage.of(tmp_path / "ray_results")
    return SweepStorage.of(f"s3://{request.getfixturevalue('bucket')}/tune")


def test_sweeps_are_found_by_prefix_with_their_parent_run(storage: SweepStorage) -> None:
    assert storage.names("demo-sweep-") == [] and not storage.exists("demo-sweep-1")  # nothing there yet
    assert storage.parent_run("demo-sweep-1") is None
    storage.record_parent_run("demo-sweep-20261208-010000", "run-a")
    storage.record_parent_run("demo-sweep-20261208-020000", "run-b")
    storage.record_parent_run("other-sweep-20261208-030000", "run-c")
    assert storage.names("demo-sweep-") == ["demo-sweep-20261208-010000", "demo-sweep-20261208-020000"]
    assert storage.exists("demo-sweep-20261208-020000")
    assert storage.parent_run("demo-sweep-20261208-020000") == "run-b"


def test_tune_gets_a_filesystem_only_for_a_bucket(tmp_path: Path, bucket: str) -> None:
    local = SweepStorage.of(tmp_path / "ray_results")
    assert local.tune_filesystem is None and local.tune_path == str(tmp_path / "ray_results")
    assert local.describe("s1") == str(tmp_path / "ray_results" / "s1")
    remote = SweepStorage.of(f"s3://{bucket}/tune/")
    assert remote.tune_filesystem is not None and remote.tune_path == f"{bucket}/tune"
    assert remote.sweep_path("s1") == f"{bucket}/tune/s1" and remote.describe("s1") == f"s3://{bucket}/tune/s1"


def test_a_missing_bucket_is_one_line(s3_server: str) -> None:
    with pytest.raises(StorageError, match=r"^tuning.storage = 's3://no-such-bucket-here/tune': no such bucket"):
        SweepStorage.of("s3://no-such-bucket-here/tune")
