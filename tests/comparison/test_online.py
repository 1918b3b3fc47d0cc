"""The online comparison's pieces, on fixed and simulated data (no engine)."""

from __future__ import annotations

import numpy as np
import pytest

from comparison import compare_correctness, compare_routed, compare_shadowed, guardrail, row_values


def test_each_metric_turns_a_row_into_its_value() -> None:
    predictions, outcomes = [1.0, 0.0, 2.0], [1.0, 1.0, 4.0]
    assert row_values("accuracy", predictions, outcomes).tolist() == [1.0, 0.0, 0.0]
    assert row_values("absolute_error", predictions, outcomes).tolist() == [0.0, 1.0, 2.0]
    assert row_values("squared_error", predictions, outcomes).tolist() == [0.0, 1.0, 4.0]
    assert row_values("outcome", predictions, outcomes).tolist() == outcomes
    with pytest.raises(ValueError, match="metric 'auc'"):
        row_values("auc", predictions, outcomes)


def _answers(rng: np.random.Generator, accuracy: float, rows: int) -> tuple[np.ndarray, np.ndarray]:
    outcomes = rng.integers(0, 2, rows).astype(float)
    right = rng.random(rows) < accuracy
    return np.where(right, outcomes, 1 - outcomes), outcomes


def test_routed_traffic_decides_once_both_versions_have_their_minimum_samples() -> None:
    rng = np.random.default_rng(7)
    a, b = _answers(rng, 0.70, 600), _answers(rng, 0.85, 600)
    decided = compare_routed("accuracy", a, b, mde=0.05)
    assert decided.verdict == "b better" and decided.test.startswith("mSPRT") and decided.samples == 1200
    assert decided.interval[0] > 0 and decided.samples_needed is None
    waiting = compare_routed("accuracy", a, b, mde=0.05, min_samples=1000)
    # at least 400 more for each (more: what detecting the mde with power 0.8 takes at this split)
    assert waiting.verdict == "no difference yet" and waiting.samples_needed is not None
    assert waiting.samples_needed >= 800 and waiting.p_value == 1.0
    errors = compare_routed(
        "absolute_error", (np.zeros(100), np.full(100, 2.0)), (np.zeros(100), np.ones(100)), mde=0.5
    )
    assert errors.verdict == "b better" and not errors.higher_is_better  # lower errors win


def test_shadow_pairs_are_compared_row_by_row_and_outcome_metrics_are_not() -> None:
    rng = np.random.default_rng(3)
    predictions_a, outcomes = _answers(rng, 0.7, 300)
    predictions_b = np.where(rng.random(300) < 0.9, outcomes, 1 - outcomes)
    paired = compare_shadowed("accuracy", predictions_a, predictions_b, outcomes)
    reference = compare_correctness(predictions_a == outcomes, predictions_b == outcomes)
    assert paired is not None and paired.metric == "accuracy (shadow pairs)"
    assert (paired.p_value, paired.difference, paired.verdict) == (
        reference.p_value,
        reference.difference,
        "b better",
    )
    assert compare_shadowed("outcome", predictions_a, predictions_b, outcomes) is None
    assert compare_shadowed("accuracy", [1.0], [1.0], [1.0]) is None


def test_guardrails_count_failed_rows_and_the_p99_of_waited_latency() -> None:
    found = guardrail("2", latencies_ms=[*[1.0] * 99, 500.0], failed=[True, *[False] * 199])
    assert (found.rows, found.errors, found.error_rate) == (200, 1, 0.005)
    assert found.p99_ms == pytest.approx(np.percentile([*[1.0] * 99, 500.0], 99))
    assert found.breaches(max_error_rate=0.01, max_p99_ms=1000) == []
    assert [str(breach) for breach in found.breaches(max_error_rate=0.001, max_p99_ms=5)] == [
        "version 2: error rate 0.50% > 0.10%",
        f"version 2: p99 latency {found.p99_ms:.1f} ms > 5 ms",
    ]
