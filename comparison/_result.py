"""What a comparison of two models says: each model's value, the difference with its interval, the test,
its p-value and the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["b better", "a better", "no difference yet"]


@dataclass(frozen=True)
class Comparison:
    """Model b against model a on one metric. ``difference`` is ``b - a`` in the metric's own units, with
    its ``confidence``-level interval; ``higher_is_better`` turns its sign into a verdict."""

    metric: str
    a: float
    b: float
    difference: float
    interval: tuple[float, float]
    test: str
    p_value: float
    verdict: Verdict
    samples: int
    higher_is_better: bool = True
    confidence: float = 0.95
    samples_needed: int | None = None  # for the minimum detectable effect, while there is no difference yet
    p_holm: float | None = None  # with the table's other metrics read as one family (Holm), when corrected

    def as_row(self) -> dict[str, object]:
        """One row of the report table (and of what is logged to MLflow)."""
        low, high = self.interval
        return {
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "b - a": self.difference,
            "interval": f"[{low:.4g}, {high:.4g}]",
            "test": self.test,
            "p": self.p_value,
            "p (Holm)": self.p_holm,
            "verdict": self.verdict,
            "samples": self.samples,
            "samples needed": self.samples_needed,
        }


def decide(difference: float, significant: bool, higher_is_better: bool) -> Verdict:
    """The verdict for a difference ``b - a`` that is (or is not) significant."""
    if not significant or difference == 0:
        return "no difference yet"
    return "b better" if (difference > 0) == higher_is_better else "a better"
