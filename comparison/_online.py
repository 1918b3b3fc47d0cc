"""Online comparison of two model versions from what they answered and the outcomes that came back:
independent routed samples by the always-valid sequential test, requests both versions answered (one
routed, the other as shadow) paired row by row, and each version's guardrails (error rate, p99 latency)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from comparison._offline import compare_correctness, compare_errors
from comparison._result import Comparison
from comparison._sequential import Arm, compare_sequential

# What a row contributes to each online metric, and whether higher is better.
ONLINE_METRICS = {"accuracy": True, "absolute_error": False, "squared_error": False, "outcome": True}


def row_values(metric: str, predictions: ArrayLike, outcomes: ArrayLike) -> np.ndarray:
    """Per answered row: 1/0 for a correct label (accuracy), the absolute or squared error, or the outcome
    itself (``outcome``: a conversion or revenue the answer led to, whatever the prediction was)."""
    predicted, actual = np.asarray(predictions, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    if metric == "accuracy":
        return (predicted == actual).astype(np.float64)
    if metric == "absolute_error":
        return np.abs(predicted - actual)
    if metric == "squared_error":
        return (predicted - actual) ** 2
    if metric == "outcome":
        return actual
    raise ValueError(f"metric {metric!r}: expected one of {sorted(ONLINE_METRICS)}")


def compare_routed(
    metric: str,
    a: tuple[ArrayLike, ArrayLike],
    b: tuple[ArrayLike, ArrayLike],
    mde: float,
    alpha: float = 0.05,
    min_samples: int = 0,
) -> Comparison:
    """Rows each version answered on routed traffic, ``(predictions, outcomes)`` each: the mSPRT, valid
    whenever it is read."""
    values_a, values_b = row_values(metric, *a), row_values(metric, *b)
    return compare_sequential(
        metric, Arm.of(values_a), Arm.of(values_b), mde, alpha, ONLINE_METRICS[metric], min_samples
    )


def compare_shadowed(
    metric: str, predictions_a: ArrayLike, predictions_b: ArrayLike, outcomes: ArrayLike, alpha: float = 0.05
) -> Comparison | None:
    """Rows both versions answered (one routed, one shadow), paired: McNemar on correctness, the paired
    t-test on errors. None for the ``outcome`` metric (one outcome, caused by the routed answer only) or
    fewer than 2 pairs."""
    if metric == "outcome" or len(np.asarray(outcomes)) < 2:
        return None
    values_a, values_b = row_values(metric, predictions_a, outcomes), row_values(metric, predictions_b, outcomes)
    if metric == "accuracy":
        found = compare_correctness(values_a, values_b, alpha)
    else:
        found = compare_errors(values_a, values_b, metric, alpha)
    return dataclasses.replace(found, metric=f"{metric} (shadow pairs)")


@dataclass(frozen=True)
class Breach:
    """A limit one version passes: which (``error rate``, ``p99 latency``) and by how much."""

    version: str
    limit: str
    detail: str

    def __str__(self) -> str:
        return f"version {self.version}: {self.limit} {self.detail}"


@dataclass(frozen=True)
class Guardrail:
    """One version's health on what it answered: failed rows and the 99th percentile of latency."""

    version: str
    rows: int
    errors: int
    p99_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.rows if self.rows else 0.0

    def breaches(self, max_error_rate: float, max_p99_ms: float) -> list[Breach]:
        """Each limit this version passes (empty: healthy)."""
        found = []
        if self.error_rate > max_error_rate:
            found.append(Breach(self.version, "error rate", f"{self.error_rate:.2%} > {max_error_rate:.2%}"))
        if self.p99_ms > max_p99_ms:
            found.append(Breach(self.version, "p99 latency", f"{self.p99_ms:.1f} ms > {max_p99_ms:g} ms"))
        return found


def guardrail(version: str, latencies_ms: ArrayLike, failed: ArrayLike) -> Guardrail:
    """A version's guardrail figures from its logged rows: whether each failed, and the latency of those a
    client waited for."""
    latency, errors = np.asarray(latencies_ms, dtype=np.float64), np.asarray(failed, dtype=bool)
    p99 = float(np.percentile(latency, 99)) if len(latency) else 0.0
    return Guardrail(version, len(errors), int(errors.sum()), p99)
