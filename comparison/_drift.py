"""Data drift: each feature's reference profile (made from the training split) and a window of served
inputs held against it. A numeric feature is binned at its reference quantiles; a categorical one counted by
category, its long tail in one bucket. Both sides are samples, so the tests are two-sample ones: the
reference's own sampling noise is not read as drift.

Per feature: the population stability index (PSI) over the bins, a two-sample test (Kolmogorov-Smirnov on
the binned distributions for a numeric feature, chi-square on the counts for a categorical one), the
missing-rate change, the out-of-training-range rate (numeric) and the unseen-category rate (categorical).
The tests' p-values are corrected for reading many features at once by Holm's method, which
bounds the chance of any false flag in a window (the family-wise error), not only their expected share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from comparison._multiple import holm

QUANTILE_BINS = 20  # 5% of the training rows a bin: KS resolution and a profile of a few hundred bytes
TOP_CATEGORIES = 50  # categories listed by name; the rest share one bucket
_OTHER = "(other)"
_PSI_FLOOR = 1e-4  # an empty bin's share in the PSI's logarithm


@dataclass(frozen=True)
class NumericProfile:
    """A numeric feature in the training split: its quantile ``edges`` (bins are ``(edge[i-1], edge[i]]``,
    open at both ends) and the non-missing rows in each bin (``counts``, one more than the edges)."""

    rows: int
    missing: int
    minimum: float
    maximum: float
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    kind: Literal["numeric"] = "numeric"


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical feature in the training split: the rows of each of its most frequent categories, the
    rest in ``other``; ``complete`` when every category seen is listed (only then is a new one known new)."""

    rows: int
    missing: int
    counts: Mapping[str, int]
    other: int
    complete: bool
    kind: Literal["categorical"] = "categorical"


Profile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature is flagged: its corrected p-value under ``alpha`` (and its PSI at least ``min_psi``,
    to ignore a shift too small to matter in a large window), or any rate past its bound."""

    alpha: float = 0.01
    min_psi: float = 0.0
    max_missing_increase: float = 0.05
    max_out_of_range_rate: float = 0.01
    max_unseen_rate: float = 0.01


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of one window against its profile."""

    feature: str
    kind: str
    rows: int
    psi: float
    test: str  # "ks" or "chi-square"
    statistic: float
    p_value: float
    adjusted_p_value: float
    missing_rate: float
    missing_rate_change: float
    out_of_range_rate: float | None  # numeric only
    unseen_rate: float | None  # categorical only, when the profile lists every category
    reasons: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class DriftReport:
    """A window's features, flagged first; ``absent`` lists profiled features the window does not have."""

    features: tuple[FeatureDrift, ...]
    absent: tuple[str, ...]
    correction: str = "holm"

    @property
    def flagged(self) -> list[str]:
        return [drift.feature for drift in self.features if drift.flagged]


def _numeric(values: ArrayLike) -> tuple[np.ndarray, int]:
    array = np.asarray(values, dtype=np.float64)
    present = array[~np.isnan(array)]
    return present, int(array.size - present.size)


def _categories(values: ArrayLike) -> tuple[dict[str, int], int]:
    """Rows per category (as text) and the missing count: None or NaN. Counted by numpy's sort, not a
    Python loop: a window has tens of thousands of rows."""
    array = np.asarray(values)
    if array.dtype.kind == "O":
        missing = np.fromiter((_is_missing(value) for value in array.tolist()), dtype=bool, count=array.size)
        array = array[~missing].astype(str)
    elif array.dtype.kind == "f":
        missing = np.isnan(array)
        array = array[~missing].astype(str)
    else:
        missing = np.zeros(array.size, dtype=bool)
        array = array.astype(str)
    names, counts = np.unique(array, return_counts=True)
    return dict(zip(names.tolist(), counts.tolist(), strict=True)), int(missing.sum())


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def numeric_profile(values: ArrayLike, bins: int = QUANTILE_BINS) -> NumericProfile:
    """The profile of a numeric column (NaN is missing)."""
    present, missing = _numeric(values)
    if present.size == 0:
        return NumericProfile(missing, missing, math.nan, math.nan, (), (0,))
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    return NumericProfile(
        rows=int(present.size + missing),
        missing=missing,
        minimum=float(present.min()),
        maximum=float(present.max()),
        edges=tuple(float(edge) for edge in edges),
        counts=tuple(int(count) for count in counts),
    )


def categorical_profile(values: ArrayLike, top: int = TOP_CATEGORIES) -> CategoricalProfile:
    """The profile of a categorical column (None or NaN is missing), its ``top`` categories by name."""
    seen, missing = _categories(values)
    frequent = sorted(seen.items(), key=lambda item: (-item[1], item[0]))
    return CategoricalProfile(
        rows=sum(seen.values()) + missing,
        missing=missing,
        counts=dict(frequent[:top]),
        other=sum(count for _, count in frequent[top:]),
        complete=len(frequent) <= top,
    )


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    expected = np.clip(reference / max(reference.sum(), 1), _PSI_FLOOR, None)
    actual = np.clip(current / max(current.sum(), 1), _PSI_FLOOR, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _missing_rates(missing: int, rows: int, profile: Profile) -> tuple[float, float]:
    """The window's missing rate and its change from the profile's."""
    rate = missing / rows if rows else 0.0
    return rate, rate - profile.missing / max(profile.rows, 1)


def _numeric_drift(name: str, profile: NumericProfile, values: ArrayLike) -> FeatureDrift:
    present, missing = _numeric(values)
    reference = np.asarray(profile.counts, dtype=np.float64)
    current = np.bincount(
        np.searchsorted(np.asarray(profile.edges), present, side="left"), minlength=reference.size
    ).astype(np.float64)
    n, m = reference.sum(), current.sum()
    if n == 0 or m == 0:
        statistic, p_value = 0.0, 1.0
    else:
        # Kolmogorov-Smirnov on the binned distributions: the largest gap between the two CDFs at the edges,
        # with the two-sample asymptotic law (binning only makes it conservative).
        statistic = float(np.max(np.abs(np.cumsum(reference) / n - np.cumsum(current) / m)))
        p_value = float(stats.kstwobign.sf(statistic * math.sqrt(n * m / (n + m))))
    outside = float(np.mean((present < profile.minimum) | (present > profile.maximum))) if m else 0.0
    rows = int(present.size + missing)
    missing_rate, missing_rate_change = _missing_rates(missing, rows, profile)
    return FeatureDrift(
        feature=name,
        kind="numeric",
        rows=rows,
        psi=_psi(reference, current),
        test="ks",
        statistic=statistic,
        p_value=p_value,
        adjusted_p_value=p_value,
        missing_rate=missing_rate,
        missing_rate_change=missing_rate_change,
        out_of_range_rate=outside,
        unseen_rate=None,
    )


def _categorical_drift(name: str, profile: CategoricalProfile, values: ArrayLike) -> FeatureDrift:
    seen, missing = _categories(values)
    present = sum(seen.values())
    names = list(profile.counts)
    new = sum(count for category, count in seen.items() if category not in profile.counts)
    # Columns: each listed category, the tail, and (for a complete profile) what training never saw.
    reference = [*(profile.counts[c] for c in names), profile.other]
    current = [*(seen.get(c, 0) for c in names), 0 if profile.complete else new]
    if profile.complete:
        reference, current = [*reference, 0], [*current, new]
    table = np.array([reference, current], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table[1].sum() == 0:
        statistic, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(table, correction=False)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    rows = present + missing
    missing_rate, missing_rate_change = _missing_rates(missing, rows, profile)
    return FeatureDrift(
        feature=name,
        kind="categorical",
        rows=rows,
        psi=_psi(table[0], table[1]),
        test="chi-square",
        statistic=statistic,
        p_value=p_value,
        adjusted_p_value=p_value,
        missing_rate=missing_rate,
        missing_rate_change=missing_rate_change,
        out_of_range_rate=None,
        unseen_rate=(new / present if present else 0.0) if profile.complete else None,
    )


def _reasons(drift: FeatureDrift, thresholds: DriftThresholds) -> tuple[str, ...]:
    reasons = []
    if drift.adjusted_p_value < thresholds.alpha and drift.psi >= thresholds.min_psi:
        reasons.append(f"{drift.test} p = {drift.adjusted_p_value:.2g} (Holm) < {thresholds.alpha:g}")
    if drift.missing_rate_change > thresholds.max_missing_increase:
        reasons.append(f"missing rate +{drift.missing_rate_change:.1%}")
    if drift.out_of_range_rate is not None and drift.out_of_range_rate > thresholds.max_out_of_range_rate:
        reasons.append(f"{drift.out_of_range_rate:.1%} outside the training range")
    if drift.unseen_rate is not None and drift.unseen_rate > thresholds.max_unseen_rate:
        reasons.append(f"{drift.unseen_rate:.1%} unseen categories")
    return tuple(reasons)


def drift_report(
    profiles: Mapping[str, Profile],
    window: Mapping[str, ArrayLike],
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """Every profiled feature of ``window`` (column name -> values) against its profile, corrected together."""
    thresholds = thresholds or DriftThresholds()
    found = []
    for name, profile in profiles.items():
        if name not in window:
            continue
        if isinstance(profile, NumericProfile):
            found.append(_numeric_drift(name, profile, window[name]))
        else:
            found.append(_categorical_drift(name, profile, window[name]))
    if found:
        adjusted = holm([drift.p_value for drift in found])
        found = [
            replace(drift, adjusted_p_value=float(p_value)) for drift, p_value in zip(found, adjusted, strict=True)
        ]
        found = [replace(drift, reasons=_reasons(drift, thresholds)) for drift in found]
    ordered = sorted(found, key=lambda drift: (not drift.flagged, drift.adjusted_p_value, drift.feature))
    return DriftReport(tuple(ordered), tuple(name for name in profiles if name not in window))


def profile_as_json(profiles: Mapping[str, Profile]) -> dict[str, dict[str, Any]]:
    """The profiles as plain JSON values (to log beside the model)."""
    out: dict[str, dict[str, Any]] = {}
    for name, profile in profiles.items():
        if isinstance(profile, NumericProfile):
            out[name] = {**vars(profile), "edges": list(profile.edges), "counts": list(profile.counts)}
        else:
            out[name] = {**vars(profile), "counts": dict(profile.counts)}
    return out


def profile_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, Profile]:
    """The profiles ``profile_as_json`` wrote."""
    profiles: dict[str, Profile] = {}
    for name, item in data.items():
        fields = dict(item)
        if fields.get("kind") == "numeric":
            fields.update(edges=tuple(fields["edges"]), counts=tuple(fields["counts"]))
            profiles[name] = NumericProfile(**fields)
        elif fields.get("kind") == "categorical":
            profiles[name] = CategoricalProfile(**fields)
        else:
            raise ValueError(f"profile of {name!r}: kind = {fields.get('kind')!r}: must be numeric or categorical")
    return profiles
