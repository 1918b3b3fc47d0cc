"""Which role each column plays: declared in the config, or inferred from its type and a profile.

Pure logic on :class:`ColumnProfile` values (the Spark side only measures them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import ColumnFeature, FeaturesConfig
from pipeline.errors import DataError

ValueKind = Literal["float", "integer", "string", "boolean", "vector", "temporal", "other"]
_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid)", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnProfile:
    """What one pass over (a sample of) the data says about a column."""

    name: str
    kind: ValueKind
    rows: int
    nulls: int
    distinct: int  # approximate, non-null values
    mean_tokens: float | None = None  # strings: mean number of words per non-null value
    vector_size: int | None = None  # vectors: the length of the first non-null value

    @property
    def all_null(self) -> bool:
        return self.rows > 0 and self.nulls == self.rows


@dataclass(frozen=True)
class FeatureSpec:
    """The resolved roles: columns used (in order) and columns left out, each with its reason."""

    columns: dict[str, ColumnFeature]
    reasons: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    def as_config(self) -> dict[str, object]:
        """The ``features:`` section that declares this spec (printed for the user to copy)."""
        declared = {
            name: feature.model_dump(exclude_defaults=True, exclude_none=True) | {"type": feature.type}
            for name, feature in self.columns.items()
        }
        return {"columns": declared, "infer": False, "drop": sorted(self.dropped)}


def infer_feature_spec(
    profiles: Iterable[ColumnProfile], config: FeaturesConfig, exclude: Iterable[str]
) -> FeatureSpec:
    """Resolve the role of every profiled column; raise :class:`DataError` for unusable declared columns."""
    by_name = {profile.name: profile for profile in profiles}
    excluded = set(exclude)
    unknown = [name for name in config.columns if name not in by_name]
    if unknown:
        raise DataError(f"features.columns: {unknown} are not in the data (columns: {sorted(by_name)})")
    columns: dict[str, ColumnFeature] = {}
    reasons: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for name, profile in by_name.items():
        if name in excluded:
            continue
        if name in config.drop:
            dropped[name] = "listed in features.drop"
            continue
        declared = config.columns.get(name)
        if declared is not None:
            _check_declared(name, declared, profile)
            if declared.type == "drop":
                dropped[name] = "declared drop"
            else:
                columns[name] = _with_vector_size(declared, profile)
                reasons[name] = "declared"
            continue
        if not config.infer:
            dropped[name] = "not declared (features.infer is false)"
            continue
        role, reason = _infer_role(profile, config)
        if role is None:
            dropped[name] = reason
        else:
            columns[name] = _with_vector_size(role, profile)
            reasons[name] = reason
    if not columns:
        raise DataError(
            f"no feature columns left: every column is excluded or dropped ({_summary(dropped)}); "
            "declare some under features.columns"
        )
    return FeatureSpec(columns=columns, reasons=reasons, dropped=dropped)


def _with_vector_size(feature: ColumnFeature, profile: ColumnProfile) -> ColumnFeature:
    if feature.type != "vector" or feature.size is not None:
        return feature
    if profile.vector_size is None:
        raise DataError(
            f"column {profile.name!r}: cannot tell the vector length (no non-null value); set its size"
        )
    return feature.model_copy(update={"size": profile.vector_size})


def _check_declared(name: str, declared: ColumnFeature, profile: ColumnProfile) -> None:
    where = f"features.columns.{name}"
    if declared.type == "drop":
        return
    if profile.all_null:
        raise DataError(f"{where}: every value of column {name!r} is null; drop it or fix the data")
    expected: Mapping[str, tuple[ValueKind, ...]] = {
        "numeric": ("float", "integer", "boolean"),
        "categorical": ("string", "integer", "boolean"),
        "hashed": ("string", "integer", "float", "boolean"),
        "text": ("string",),
        "vector": ("vector",),
    }
    if profile.kind not in expected[declared.type]:
        raise DataError(
            f"{where}: declared {declared.type} but column {name!r} holds {profile.kind} values "
            f"(a {declared.type} column must hold {' or '.join(expected[declared.type])})"
        )


def _infer_role(profile: ColumnProfile, config: FeaturesConfig) -> tuple[ColumnFeature | None, str]:
    auto = config.auto
    if profile.all_null:
        raise DataError(f"column {profile.name!r}: every value is null; add it to features.drop or fix the data")
    if profile.kind == "temporal":
        return None, "date/time column (derive numeric parts in the data to use it)"
    if profile.kind == "other":
        return None, "unsupported type"
    if profile.distinct <= 1:
        return None, "constant"
    if profile.kind == "vector":
        return ColumnFeature(type="vector"), "vector column: passed through"
    non_null = max(1, profile.rows - profile.nulls)
    unique_share = profile.distinct / non_null
    if profile.kind in ("string", "integer") and _ID_NAME.search(profile.name):
        return None, "id-like name"
    if profile.kind == "string":
        if profile.mean_tokens is not None and profile.mean_tokens >= auto.text_min_tokens:
            return ColumnFeature(type="text"), f"free text ({profile.mean_tokens:.1f} words per value)"
        if unique_share >= auto.id_fraction and profile.distinct > auto.max_categories:
            return None, f"id-like ({unique_share:.0%} of values unique)"
        if profile.distinct <= auto.max_categories:
            return ColumnFeature(type="categorical"), f"string with {profile.distinct} categories"
        return (
            ColumnFeature(type="hashed", num_features=auto.hashed_features),
            f"high-cardinality string ({profile.distinct} values): hashed",
        )
    if profile.kind == "boolean":
        return ColumnFeature(type="categorical"), "boolean"
    if profile.kind == "integer" and profile.distinct <= auto.numeric_as_categorical:
        return ColumnFeature(type="categorical"), f"integer with {profile.distinct} values"
    return ColumnFeature(type="numeric"), f"{profile.kind}"


def _summary(dropped: Mapping[str, str]) -> str:
    return ", ".join(f"{name}: {reason}" for name, reason in dropped.items()) or "no columns"
