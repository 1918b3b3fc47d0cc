"""Request paths are confined to the data roots: no `..`, absolute or symlink escapes (pure, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving._paths import PathNotAllowed, confine_path


def test_paths_inside_the_roots_resolve(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "demo").mkdir(parents=True)
    assert confine_path("demo/table", [root]) == str((root / "demo" / "table").resolve())
    assert confine_path(str(root / "demo"), [tmp_path / "other", root]) == str((root / "demo").resolve())


def test_a_bucket_prefix_root_admits_keys_below_it_and_nothing_beside_it(tmp_path: Path) -> None:
    """The brief's call, `"data_path": "s3://bucket/data"`, against serving.data_roots [s3://bucket/data]."""
    roots: list[str | Path] = [tmp_path / "data", "s3://bucket/data"]
    assert confine_path("s3://bucket/data", roots) == "s3://bucket/data"
    assert confine_path("s3://bucket/data/tx/", roots) == "s3://bucket/data/tx"
    for outside in ("s3://bucket/data-other", "s3://bucket/data/../secrets", "s3://other-bucket/data"):
        with pytest.raises(PathNotAllowed, match="data_path = "):
            confine_path(outside, roots)


@pytest.mark.parametrize("requested", ["../secrets", "demo/../../etc", "/etc/passwd", "", "a\x00b", "link/x"])
def test_escapes_are_refused_with_the_value(tmp_path: Path, requested: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)  # a symlink pointing out of the root
    with pytest.raises(PathNotAllowed, match="data_path"):
        confine_path(requested, [root])


def test_post_train_takes_the_briefs_bucket_path_and_refuses_a_neighbouring_prefix_with_403() -> None:
    """`POST /train {"data_path": "s3://bucket/data"}` passes the roots check (then needs the dashboard, absent
    here: 503 before anything is submitted); a prefix trick beside the root is 403 naming the roots."""
    import orjson

    from serving._requests import Refused
    from serving._settings import AppSettings
    from serving._training import start_training

    app = AppSettings("app", "model", {}, data_roots=("s3://bucket/data",), algorithms=("logistic_regression",))
    body = {"algorithm": "logistic_regression", "data_path": "s3://bucket/data"}
    with pytest.raises(Refused) as inside:
        start_training(app, orjson.dumps(body))
    assert inside.value.status == 503, inside.value
    with pytest.raises(Refused) as beside:
        start_training(app, orjson.dumps({**body, "data_path": "s3://bucket/data-other"}))
    assert beside.value.status == 403 and "outside the data roots (s3://bucket/data)" in str(beside.value)
