"""The sample-ratio-mismatch check on simulated traffic."""

from __future__ import annotations

import numpy as np

from comparison import SRM_ALPHA, sample_ratio_mismatch


def test_a_a_traffic_split_as_configured_is_flagged_in_at_most_0_2_percent() -> None:
    rng = np.random.default_rng(0)
    experiments = 10_000
    champion = rng.binomial(20_000, 0.5, experiments)
    flagged = sum(
        sample_ratio_mismatch(
            {"champion": int(c), "challenger": 20_000 - int(c)}, {"champion": 1, "challenger": 1}
        ).mismatch
        for c in champion
    )
    assert flagged <= 0.002 * experiments, flagged


def test_a_49_51_split_at_20000_requests_against_50_50() -> None:
    """9,800 / 10,200 gives p = 0.0047: flagged at p < 0.01, not at the default 0.001, which needs about
    27,000 requests for the same shares (the chi-square grows with the count: 0.0004 per request here)."""
    check = sample_ratio_mismatch({"champion": 9_800, "challenger": 10_200}, {"champion": 0.5, "challenger": 0.5})
    assert 0.004 < check.p_value < 0.005 and not check.mismatch and check.alpha == SRM_ALPHA
    assert sample_ratio_mismatch(check.counts, {"champion": 1, "challenger": 1}, alpha=0.01).mismatch
    larger = sample_ratio_mismatch({"champion": 14_700, "challenger": 15_300}, {"champion": 1, "challenger": 1})
    assert larger.mismatch, larger.describe()
    line = larger.describe()
    assert line.startswith(
        "sample ratio mismatch: champion 14,700 (49.0% vs 50.0%), challenger 15,300 (51.0% vs 50.0%)"
    )


def test_weights_of_any_scale_a_zero_weight_that_got_traffic_and_no_traffic() -> None:
    uneven = sample_ratio_mismatch({"a": 9_000, "b": 1_000, "c": 0}, {"a": 9, "b": 1, "c": 0})
    assert not uneven.mismatch and uneven.expected_shares == {"a": 0.9, "b": 0.1}
    leaked = sample_ratio_mismatch({"a": 9_000, "b": 1_000, "c": 5}, {"a": 9, "b": 1, "c": 0})
    assert leaked.mismatch and leaked.p_value == 0.0
    assert not sample_ratio_mismatch({}, {"a": 1, "b": 1}).mismatch
