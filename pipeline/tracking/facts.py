"""The registry's facts, one place for each: alias names, the tags a registered version carries (its
lineage, its algorithm, which scorer serves it and why), the ``models:/`` URI of a version or alias, and
the outcome record a training job leaves for whoever polls it.

No MLflow or engine import: the training side writes these tags and records, and the serving app (which
must not import Spark) reads them by the same names and the same class."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"  # the champion a promotion replaced: what `rollback` restores

# A version's tag under ``tracking.alias: auto``: the @champion its job saw before registering ("none").
SAW_CHAMPION = "pipeline.saw_champion"

# Where a version's data came from (the Delta version it was trained on) and what exactly was asked for.
LINEAGE_TAGS = ("data.path", "data.format", "data.delta_version", "data.rows", "config_hash")
ALGORITHM_TAG = "algorithm"

# Which scorer serves a version: "onnx" when its graph passed the parity gate, else "spark" and the reason.
SCORER_TAG = "scorer"
SCORER_REASON_TAG = "scorer.reason"
SCORER_PARITY_ROWS_TAG = "scorer.parity_rows"
SCORER_MAX_DIFFERENCE_TAG = "scorer.max_difference"
ONNX_SCORER = "onnx"


def model_uri(model: str, reference: str | int) -> str:
    """``models:/`` URI of what a user names: a version number (``3``, also as ``@3``) or an alias
    (``champion``, ``@champion``)."""
    reference = str(reference).removeprefix("@")
    return version_uri(model, reference) if reference.isdigit() else alias_uri(model, reference)


def version_uri(model: str, version: str | int) -> str:
    return f"models:/{model}/{version}"


def alias_uri(model: str, alias: str) -> str:
    """An alias's URI, whatever its name (MLflow allows an alias of digits only)."""
    return f"models:/{model}@{alias}"


@dataclass(frozen=True)
class TrainOutcome:
    """What a job run with ``--result FILE`` (`train`, `run`, `tune`; a `POST /train` Ray Job) writes when it
    ends, and what `GET /train/{id}` reports of it: written and read by this class alone."""

    status: str  # SUCCEEDED or FAILED
    model: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    scorer: str | None = None
    metrics: dict[str, float] | None = None
    error: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The JSON record: a success's registration (its alias may be null), or a failure's one line."""
        if self.status != "SUCCEEDED":
            return {"status": self.status, "error": self.error}
        return {key: value for key, value in asdict(self).items() if key != "error"}

    def write(self, path: Path) -> None:
        """Written whole (to a temporary name, then renamed) for whoever polls it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(self.as_record()))
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> TrainOutcome | None:
        """The outcome a job wrote; None when there is none (the job died before it could write one)."""
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls.from_record(record) if isinstance(record, Mapping) else None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TrainOutcome:
        known = {item.name for item in fields(cls)}
        return cls(**{"status": "FAILED", **{key: value for key, value in record.items() if key in known}})


__all__ = [
    "ALGORITHM_TAG",
    "CHALLENGER",
    "CHAMPION",
    "LINEAGE_TAGS",
    "ONNX_SCORER",
    "PREVIOUS",
    "SAW_CHAMPION",
    "SCORER_MAX_DIFFERENCE_TAG",
    "SCORER_PARITY_ROWS_TAG",
    "SCORER_REASON_TAG",
    "SCORER_TAG",
    "TrainOutcome",
    "alias_uri",
    "model_uri",
    "version_uri",
]
