"""The registry's facts, one place for each: alias names, the tags a registered version carries (its
lineage, its algorithm, which scorer serves it and why) and the ``models:/`` URI of a version or alias.

Plain names and one pure function, no MLflow or engine import: the training side writes these tags, and
the serving app (which must not import Spark) reads them by the same names."""

from __future__ import annotations

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
    """``models:/`` URI of a registered version (``3``) or alias (``champion``, ``@champion``)."""
    reference = str(reference).removeprefix("@")
    return f"models:/{model}/{reference}" if reference.isdigit() else f"models:/{model}@{reference}"


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
    "model_uri",
]
