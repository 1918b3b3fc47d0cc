"""Spark pipeline -> ONNX export, and the parity gate that decides which scorer serves a version."""

from pipeline.export._onnx import Unsupported, export_onnx
from pipeline.export._parity import PARITY_ROWS, TOLERANCE, ExportResult, export_scorer, scorer_spec

__all__ = [
    "PARITY_ROWS",
    "TOLERANCE",
    "ExportResult",
    "Unsupported",
    "export_onnx",
    "export_scorer",
    "scorer_spec",
]
