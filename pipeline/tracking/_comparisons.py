"""MLflow for model comparisons: finding the two versions, and logging the table that compared them."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.config import TrackingConfig
from pipeline.tracking._versions import RegistryError, VersionSummary, connect, list_versions


def find_version(tracking: TrackingConfig, reference: str) -> VersionSummary:
    """A registered version by number (``3``) or alias (``@challenger``, ``challenger``); RegistryError
    names what exists when it does not."""
    versions = list_versions(tracking)
    wanted = reference.removeprefix("@")
    for summary in versions:
        if summary.version == wanted or wanted in summary.aliases:
            return summary
    aliases = sorted(f"@{alias}" for summary in versions for alias in summary.aliases)
    numbers = sorted((summary.version for summary in versions), key=int)
    raise RegistryError(
        f"{reference}: not a version or alias of {tracking.registered_model!r} (versions {numbers or 'none'}, "
        f"aliases {aliases or 'none'})"
    )


def log_comparison(
    tracking: TrackingConfig,
    params: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, float],
) -> str:
    """One MLflow run (tag ``kind=comparison``) holding the parameters, the table as ``comparison.csv``
    and per-metric figures; returns its id."""
    import mlflow

    connect(tracking)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["metric"])
    writer.writeheader()
    writer.writerows(rows)
    name = f"compare-v{params.get('a_version')}-v{params.get('b_version')}"
    with mlflow.start_run(run_name=name, tags={"kind": "comparison"}) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics({key: value for key, value in metrics.items() if value == value})  # NaN left out
        mlflow.log_text(table.getvalue(), "comparison.csv")
    return str(run.info.run_id)
