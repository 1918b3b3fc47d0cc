"""Reading several tests at once: Holm's step-down correction, which bounds the chance of any false
verdict among them (the family-wise error), for the features of a drift window and the metrics of a
comparison table alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from comparison._result import Comparison


def holm(p_values: list[float]) -> np.ndarray:
    """Holm's step-down adjustment: the i-th smallest p-value times (m - i), made monotone, capped at 1. The
    same values as statsmodels' ``multipletests(method="holm")`` (tests/comparison hold them equal), which
    also runs a full garbage collection on every call: 80 ms here, against 0.1 ms for the sums themselves,
    for a check that runs per window and per served version."""
    values = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(values)
    scaled = np.maximum.accumulate(values[order] * (values.size - np.arange(values.size)))
    adjusted = np.empty_like(values)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted


def holm_corrected(comparisons: Sequence[Comparison], alpha: float) -> list[Comparison]:
    """A comparison table read as one family: each row's Holm-adjusted p-value (``p_holm``), and its verdict
    kept only when that is under ``alpha`` (otherwise "no difference yet"). Intervals stay per metric. A
    table of one row is returned as it is."""
    if len(comparisons) < 2:
        return list(comparisons)
    adjusted = holm([found.p_value for found in comparisons])
    return [
        replace(found, p_holm=float(p), verdict=found.verdict if p < alpha else "no difference yet")
        for found, p in zip(comparisons, adjusted, strict=True)
    ]
