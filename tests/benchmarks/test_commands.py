"""Every benchmark runs as benchmarks/README.md writes it: as a script (`python benchmarks/X.py`, where
the script's folder comes first on sys.path, so no script may share a name with a project package) and
as a module (`python -m benchmarks.X`). `--help` stops before any measuring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPTS = sorted(p for p in (PROJECT_ROOT / "benchmarks").glob("*.py") if p.name != "__init__.py")
PACKAGES = {p.parent.name for p in PROJECT_ROOT.glob("*/__init__.py")}


def test_no_benchmark_shadows_a_project_package() -> None:
    assert {"pipeline", "serving", "scoring"} <= PACKAGES
    assert not {script.stem for script in SCRIPTS} & PACKAGES


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_each_benchmark_starts_as_a_script_and_as_a_module(script: Path) -> None:
    for command in (
        [sys.executable, str(script), "--help"],
        [sys.executable, "-m", f"benchmarks.{script.stem}", "--help"],
    ):
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0 and "usage:" in done.stdout, (command, done.stderr[-2000:])
