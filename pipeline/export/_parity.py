"""The parity gate: a version gets the ONNX scorer only if it answers as Spark does on held-out rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.export._onnx import Unsupported, export_onnx
from pipeline.export._recommend import check_recommendations
from pipeline.features import ValueKind, value_kind
from scoring import PREDICTION, PROBABILITY, InputField, OnnxScorer, ScorerSpec, records_to_feeds

if TYPE_CHECKING:
    from pipeline.training import TrainedModel

TOLERANCE = 1e-5
PARITY_ROWS = 500


@dataclass(frozen=True)
class ExportResult:
    """Which scorer serves a version, and why: ``onnx`` only after the parity check passed."""

    scorer: Literal["onnx", "spark"]
    reason: str
    spec: ScorerSpec
    onnx: bytes | None
    rows_compared: int
    max_difference: float | None
    factors: bytes | None = None  # ALS: user and item factors, for top-k recommendations


def _input_kinds(trained: TrainedModel) -> dict[str, ValueKind]:
    prepared = trained.prepared
    return {name: value_kind(prepared.train.schema[name].dataType) for name in prepared.input_columns}


def scorer_spec(trained: TrainedModel, kinds: dict[str, ValueKind] | None = None) -> ScorerSpec:
    """The model's inputs as the scorer and the HTTP API take them, from the training data's schema, and
    the table's other columns, which a record may carry and the model ignores."""
    prepared = trained.prepared
    fields = []
    for name, kind in (kinds or _input_kinds(trained)).items():
        if kind == "vector":
            feature = prepared.spec.columns[name] if prepared.spec is not None else None
            size = getattr(feature, "size", None)
            fields.append(InputField(name, "vector", size))
        elif kind in ("boolean", "string"):
            fields.append(InputField(name, kind))
        else:
            fields.append(InputField(name, "number"))
    used = {field.name for field in fields}
    ignored = tuple(name for name in prepared.snapshot.df.columns if name not in used)
    return ScorerSpec(task=prepared.task, inputs=tuple(fields), classes=prepared.label_classes, ignored=ignored)


def export_scorer(trained: TrainedModel, rows: int = PARITY_ROWS) -> ExportResult:
    """Export the fitted pipeline to ONNX and compare it with Spark's ``transform`` on test rows."""
    prepared = trained.prepared
    kinds = _input_kinds(trained)
    spec = scorer_spec(trained, kinds)
    integers = {name for name, kind in kinds.items() if kind == "integer"}
    try:
        onnx_bytes = export_onnx(trained.model, spec.inputs, integers, prepared.task)
        scorer = OnnxScorer(onnx_bytes, spec)
    except Unsupported as error:
        return ExportResult("spark", f"export: {error}", spec, None, 0, None)
    except Exception as error:  # a converter bug must not lose the training: Spark still serves it
        return ExportResult("spark", f"export failed: {type(error).__name__}: {error}", spec, None, 0, None)
    scored = trained.model.transform(prepared.test.limit(rows))
    # Probabilities are compared wherever Spark gives them (classifiers, Gaussian mixtures).
    wanted = [name for name in (PREDICTION, PROBABILITY) if name in scored.columns]
    collected = scored.select(*prepared.input_columns, *wanted).collect()
    if not collected:
        return ExportResult("spark", "parity: no held-out rows to compare on", spec, None, 0, None)
    records = [_plain_record(row.asDict(), prepared.input_columns) for row in collected]
    outputs = scorer.score_arrays(records_to_feeds(spec.inputs, records))
    problem, difference = _compare(spec.task, collected, outputs, wanted)
    if problem:
        return ExportResult("spark", f"parity: {problem}", spec, None, len(collected), difference)
    if spec.task != "recommendation":
        return ExportResult("onnx", "", spec, onnx_bytes, len(collected), difference)
    factors, problem, top_k_difference = check_recommendations(trained, TOLERANCE)
    difference = max(difference, top_k_difference)
    if problem:
        return ExportResult("spark", f"parity (top-k): {problem}", spec, None, len(collected), difference)
    return ExportResult("onnx", "", spec, onnx_bytes, len(collected), difference, factors)


def _plain_record(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name in columns:
        value = row[name]
        if hasattr(value, "toArray"):
            value = [None if math.isnan(v) else float(v) for v in value.toArray()]
        elif isinstance(value, float) and math.isnan(value):
            value = None
        record[name] = value
    return record


def _compare(task: str, rows: list[Any], outputs: dict[str, np.ndarray], wanted: list[str]) -> tuple[str, float]:
    expected = np.array([row[PREDICTION] for row in rows], dtype=np.float64)
    got = np.asarray(outputs[PREDICTION], dtype=np.float64).reshape(-1)
    if task == "regression" or task == "recommendation":
        scale = np.maximum(1.0, np.abs(expected))
        relative = np.abs(expected - got) / scale
        worst = float(np.nanmax(relative)) if len(relative) else 0.0
        off = int((relative > TOLERANCE).sum() + (np.isnan(expected) != np.isnan(got)).sum())
        return (
            f"{off} of {len(rows)} predictions differ by more than {TOLERANCE:g} (relative; worst {worst:.3g})"
            if off
            else "",
            worst,
        )
    differing = int((expected != got).sum())
    worst = 0.0
    if PROBABILITY in wanted and PROBABILITY in outputs:
        spark_probability = np.array([row[PROBABILITY].toArray() for row in rows], dtype=np.float64)
        if spark_probability.shape != outputs[PROBABILITY].shape:
            shapes = f"{outputs[PROBABILITY].shape} against Spark's {spark_probability.shape}"
            return f"probabilities have shape {shapes}", math.inf
        worst = float(np.abs(spark_probability - outputs[PROBABILITY]).max())
    if differing or worst > TOLERANCE:
        return (
            f"{differing} of {len(rows)} labels differ, largest probability difference {worst:.3g} "
            f"(tolerance {TOLERANCE:g})",
            worst,
        )
    return "", worst
