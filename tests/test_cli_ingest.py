"""`python -m pipeline ingest` end to end, as a user runs it (fresh process, real engines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.conftest import run_cli

# Starts engines of its own: left out of the quick loop (`pytest`), run by .ci/run.
pytestmark = pytest.mark.extended

CONFIG = """\
root: .
ray: {dashboard: false, num_cpus: 2}
spark: {executor_memory: 1g, configs: {spark.ui.enabled: false}}
data:
  source: {format: delta, path: lake/transactions}
  ingest:
    generate: {generator: classification, rows: 3000, seed: 5}
    mode: overwrite
"""


def test_ingest_writes_the_configured_table(tmp_path: Path) -> None:
    # One CLI process (its own Ray and Spark: over a minute on a slow machine): append and overwrite are
    # tested in-process in tests/data, a mode from PIPELINE__DATA__INGEST__MODE in tests/config.
    config = tmp_path / "job.yaml"
    config.write_text(CONFIG)
    table = tmp_path / "lake" / "transactions"

    first = run_cli("ingest", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert f"ingested 3000 rows in 1 file(s) into {table}: Delta version 0 (overwrite)" in first.stdout
    assert "Starting Spark in Ray" in first.stderr  # progress is shown
    assert DeltaTable(str(table)).to_pyarrow_table().num_rows == 3000
