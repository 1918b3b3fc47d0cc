"""Request paths are confined to the data roots: no `..`, absolute or symlink escapes (pure, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving._paths import PathNotAllowed, confine_path


def test_paths_inside_the_roots_resolve(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "demo").mkdir(parents=True)
    assert confine_path("demo/table", [root]) == (root / "demo" / "table").resolve()
    assert confine_path(str(root / "demo"), [tmp_path / "other", root]) == (root / "demo").resolve()


@pytest.mark.parametrize("requested", ["../secrets", "demo/../../etc", "/etc/passwd", "", "a\x00b", "link/x"])
def test_escapes_are_refused_with_the_value(tmp_path: Path, requested: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)  # a symlink pointing out of the root
    with pytest.raises(PathNotAllowed, match="data_path"):
        confine_path(requested, [root])
