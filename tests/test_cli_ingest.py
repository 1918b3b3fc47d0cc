"""`python -m pipeline ingest` end to end, as a user runs it (fresh process, real engines)."""

from __future__ import annotations

from pathlib import Path

from deltalake import DeltaTable

from tests.conftest import run_cli

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


def test_ingest_writes_then_appends_as_configured(tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(CONFIG)
    table = tmp_path / "lake" / "transactions"

    first = run_cli("ingest", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert f"ingested 3000 rows in 1 file(s) into {table}: Delta version 0 (overwrite)" in first.stdout
    assert "Starting Spark in Ray" in first.stderr  # progress is shown

    # The mode from the environment (an overwrite replacing rows is tested in tests/data, in-process).
    appended = run_cli("ingest", "--config", str(config), env={"PIPELINE__DATA__INGEST__MODE": "append"})
    assert "Delta version 1 (append)" in appended.stdout, appended.stderr
    assert DeltaTable(str(table)).to_pyarrow_table().num_rows == 6000
    assert DeltaTable(str(table), version=0).to_pyarrow_table().num_rows == 3000
