"""Whether a comparison justifies replacing model a (the champion) by model b."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from comparison._result import Comparison


@dataclass(frozen=True)
class PromotionDecision:
    """``promote``: b replaces a. ``reason`` is one line a user reads (and MLflow records)."""

    promote: bool
    metric: str
    reason: str


def promotion_decision(comparisons: Sequence[Comparison], metric: str | None = None) -> PromotionDecision:
    """b replaces a only when b is better on the deciding metric (``metric``, else the first compared) and
    significantly worse on none of the others: a model that wins on AUC but loses on accuracy stays out."""
    if not comparisons:
        raise ValueError("no comparison to decide on")
    by_metric = {found.metric: found for found in comparisons}
    if metric is not None and metric not in by_metric:
        raise ValueError(f"--metric {metric}: not compared here (compared: {', '.join(by_metric)})")
    deciding = by_metric[metric] if metric is not None else comparisons[0]
    worse = [found.metric for found in comparisons if found.verdict == "a better"]
    if deciding.verdict != "b better":
        needed = f"; about {deciding.samples_needed} samples needed" if deciding.samples_needed else ""
        return PromotionDecision(False, deciding.metric, f"{deciding.metric}: {deciding.verdict}{needed}")
    if worse:
        return PromotionDecision(
            False, deciding.metric, f"{deciding.metric}: b better, but a better on {', '.join(worse)}"
        )
    return PromotionDecision(
        True,
        deciding.metric,
        f"{deciding.metric}: b better by {deciding.difference:+.4g} (p = {deciding.p_value:.3g})",
    )
