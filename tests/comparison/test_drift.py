"""Drift statistics against a training profile, proven by simulation (issue 30's figures): false alarms on
windows drawn from the training distribution itself, and power against a small mean shift, a new
category and a column turned partly null."""

from __future__ import annotations

import json

import numpy as np
import pytest

from comparison import (
    CategoricalProfile,
    DriftThresholds,
    NumericProfile,
    categorical_profile,
    drift_report,
    holm,
    numeric_profile,
    profile_as_json,
    profile_from_json,
)

WINDOWS = 1000
ROWS = 10_000
TRAINING_ROWS = 50_000
CATEGORIES = np.array([f"c{i}" for i in range(12)])
CATEGORY_SHARES = np.arange(12, 0, -1) / np.arange(12, 0, -1).sum()  # a long-ish tail, 15% down to 1.3%


def sample(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Several kinds of feature: normal, skewed, small integers (ties in the bins), a category, and a
    numeric column with 10% missing."""
    with_gaps = rng.normal(5.0, 2.0, rows)
    with_gaps[rng.random(rows) < 0.1] = np.nan
    return {
        "amount": rng.normal(100.0, 15.0, rows),
        "latency": rng.lognormal(0.0, 1.0, rows),
        "items": rng.poisson(3.0, rows).astype(np.float64),
        "merchant": rng.choice(CATEGORIES, rows, p=CATEGORY_SHARES),
        "score": with_gaps,
    }


def profiles_of(data: dict[str, np.ndarray]) -> dict[str, NumericProfile | CategoricalProfile]:
    return {
        name: categorical_profile(values) if values.dtype.kind in "OU" else numeric_profile(values)
        for name, values in data.items()
    }


@pytest.fixture(scope="module")
def reference() -> dict[str, NumericProfile | CategoricalProfile]:
    return profiles_of(sample(np.random.default_rng(0), TRAINING_ROWS))


def test_windows_from_the_training_distribution_raise_a_flag_in_at_most_1_percent(reference: dict) -> None:
    rng = np.random.default_rng(1)
    flagged_windows = sum(bool(drift_report(reference, sample(rng, ROWS)).flagged) for _ in range(WINDOWS))
    print(f"false alarms: {flagged_windows} of {WINDOWS} windows")  # -s shows the figure
    assert flagged_windows <= 0.01 * WINDOWS


def test_a_fifth_of_a_standard_deviation_shift_in_one_feature_is_flagged_in_95_percent(reference: dict) -> None:
    rng = np.random.default_rng(2)
    found = 0
    for _ in range(WINDOWS):
        window = sample(rng, ROWS)
        window["amount"] = window["amount"] + 0.2 * 15.0
        report = drift_report(reference, window)
        found += "amount" in report.flagged
    print(f"shift found in {found} of {WINDOWS} windows")
    assert found >= 0.95 * WINDOWS


def test_a_new_category_at_5_percent_of_rows_is_flagged_in_95_percent(reference: dict) -> None:
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(WINDOWS):
        window = sample(rng, ROWS)
        window["merchant"] = np.where(rng.random(ROWS) < 0.05, "brand-new", window["merchant"])
        report = drift_report(reference, window)
        found += "merchant" in report.flagged
    assert found >= 0.95 * WINDOWS
    (merchant,) = [drift for drift in report.features if drift.feature == "merchant"]
    assert merchant.unseen_rate is not None and 0.04 < merchant.unseen_rate < 0.06
    assert any("unseen categories" in reason for reason in merchant.reasons), merchant.reasons


def test_a_column_turned_30_percent_null_is_flagged_and_reported_first(reference: dict) -> None:
    window = sample(np.random.default_rng(4), ROWS)
    window["latency"][np.random.default_rng(5).random(ROWS) < 0.3] = np.nan
    report = drift_report(reference, window)
    assert report.flagged == ["latency"] and report.features[0].feature == "latency"
    latency = report.features[0]
    assert 0.27 < latency.missing_rate_change < 0.33 and "missing rate +" in latency.reasons[-1]


def test_a_feature_the_window_lacks_is_reported_absent_not_a_crash(reference: dict) -> None:
    window = sample(np.random.default_rng(6), 500)
    del window["items"]
    window["unprofiled"] = np.ones(500)
    report = drift_report(reference, window)
    assert report.absent == ("items",)
    assert {drift.feature for drift in report.features} == {"amount", "latency", "merchant", "score"}
    empty = drift_report(reference, {name: values[:0] for name, values in window.items()})
    assert empty.flagged == [] and all(drift.rows == 0 for drift in empty.features)


def test_out_of_range_values_and_thresholds_are_configurable(reference: dict) -> None:
    window = sample(np.random.default_rng(7), ROWS)
    window["amount"][:300] = 10_000.0  # 3% far outside anything trained on
    report = drift_report(reference, window)
    (amount,) = [drift for drift in report.features if drift.feature == "amount"]
    assert amount.out_of_range_rate == pytest.approx(0.03) and "3.0% outside the training range" in amount.reasons
    lenient = DriftThresholds(alpha=1e-12, max_out_of_range_rate=0.05)
    assert "amount" not in drift_report(reference, window, lenient).flagged


def test_a_profile_is_small_json_and_reads_back_the_same(reference: dict) -> None:
    text = json.dumps(profile_as_json(reference))
    assert len(text) < 5_000, len(text)  # kilobytes, not megabytes, for 5 features
    assert profile_from_json(json.loads(text)) == reference
    with pytest.raises(ValueError, match=r"profile of 'x': kind = 'histogram': must be numeric or categorical"):
        profile_from_json({"x": {"kind": "histogram"}})


def test_holms_adjustment_equals_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(8)
    for size in (1, 2, 5, 40):
        p_values = list(rng.random(size) ** 3)
        assert np.allclose(holm(p_values), multipletests(p_values, method="holm")[1])
