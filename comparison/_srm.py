"""Sample ratio mismatch: whether the traffic each variant got fits the configured weights. A routed split
far from the weights (a variant that fails some requests before they are counted, a sticky key that sends
one kind of user one way) biases any comparison of the variants, so it is checked before one is trusted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

# The usual threshold for this check (a real mismatch gives p-values far below it; a stricter one than the
# comparisons' keeps false alarms rare however often the split is read).
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class SampleRatioCheck:
    """The routed counts against the weights: chi-square goodness of fit (scipy)."""

    counts: dict[str, int]
    expected_shares: dict[str, float]
    statistic: float
    p_value: float
    alpha: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.alpha

    def describe(self) -> str:
        """One line: counts and shares against the weights, and the verdict."""
        total = sum(self.counts.values())
        shares = ", ".join(
            f"{name} {count:,} ({count / total:.1%} vs {self.expected_shares[name]:.1%})"
            for name, count in self.counts.items()
        )
        verdict = "sample ratio mismatch" if self.mismatch else "split as configured"
        return f"{verdict}: {shares}; chi-square p = {self.p_value:.2g} (threshold {self.alpha:g})"


def sample_ratio_mismatch(
    counts: Mapping[str, int], weights: Mapping[str, float], alpha: float = SRM_ALPHA
) -> SampleRatioCheck:
    """Routed requests per variant (``counts``) against the configured ``weights`` (any scale). A variant with
    weight 0 that got requests is a mismatch outright; variants with weight 0 and no requests are left out."""
    names = [name for name in weights if weights[name] > 0 or counts.get(name, 0) > 0]
    observed = np.array([counts.get(name, 0) for name in names], dtype=np.float64)
    total_weight = sum(weights[name] for name in names)
    if total_weight <= 0 or observed.sum() == 0 or len(names) < 2:
        shares = {name: weights.get(name, 0.0) / total_weight if total_weight > 0 else 0.0 for name in names}
        return SampleRatioCheck({n: int(counts.get(n, 0)) for n in names}, shares, 0.0, 1.0, alpha)
    shares = {name: weights[name] / total_weight for name in names}
    if any(shares[name] == 0 and counts.get(name, 0) > 0 for name in names):
        statistic, p_value = float("inf"), 0.0
    else:
        expected = np.array([shares[name] for name in names]) * observed.sum()
        result = stats.chisquare(observed, expected)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return SampleRatioCheck({n: int(counts.get(n, 0)) for n in names}, shares, statistic, p_value, alpha)
