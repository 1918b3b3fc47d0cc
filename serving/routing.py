"""Routing maths: weighted choice, sticky (hash-based, stateless) assignment, weight checks. Pure."""

from __future__ import annotations

import hashlib
import math
import random
import sys
from collections.abc import Mapping
from typing import Any

from pipeline.config import MIN_WEIGHT


class WeightsError(ValueError):
    """Weights that cannot route traffic; the message names the variant and the value."""


def check_weights(weights: Mapping[str, float], variants: set[str]) -> dict[str, float]:
    """Validated weights for exactly the known variants (a missing variant gets 0)."""
    unknown = sorted(set(weights) - variants)
    if unknown:
        raise WeightsError(f"weights.{unknown[0]}: not a variant; variants: {sorted(variants)}")
    checked: dict[str, float] = {}
    for name in sorted(variants):
        value = weights.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise WeightsError(f"weights.{name} = {value!r}: must be a finite number >= 0")
        if 0 < value < MIN_WEIGHT:
            raise WeightsError(
                f"weights.{name} = {value!r}: must be 0 or at least {MIN_WEIGHT:g} (a smaller "
                "share cannot route a request)"
            )
        checked[name] = float(value)
    if sum(checked.values()) <= 0:
        raise WeightsError(f"weights = {dict(weights)}: at least one must be above 0")
    return checked


def weights_schema(variants: list[str]) -> dict[str, Any]:
    """The JSON Schema of what ``check_weights`` takes: known variants only, each 0 or a finite number of
    at least ``MIN_WEIGHT``, at least one above 0."""
    weight = {
        "type": "number",
        "anyOf": [{"const": 0}, {"minimum": MIN_WEIGHT, "maximum": sys.float_info.max}],
        "description": f"0, or at least {MIN_WEIGHT:g}",
    }
    return {
        "type": "object",
        "properties": {name: weight for name in variants},
        "additionalProperties": False,
        "anyOf": [{"required": [name], "properties": {name: {"exclusiveMinimum": 0}}} for name in variants],
        "description": "a variant left out gets weight 0",
    }


def _pick(weights: Mapping[str, float], point: float) -> str:
    """The variant whose slice of [0, total) contains ``point * total`` (variants in name order)."""
    names = sorted(name for name, weight in weights.items() if weight > 0)
    total = sum(weights[name] for name in names)
    target = point * total
    running = 0.0
    for name in names:
        running += weights[name]
        if target < running:
            return name
    return names[-1]


def sticky_point(key: str, weights: Mapping[str, float]) -> float:
    """A point in [0, 1) from the key and the weight setting: the same pair always gives the same point."""
    setting = ",".join(f"{name}={weights[name]:.6g}" for name in sorted(weights))
    digest = hashlib.sha256(f"{key}\x1f{setting}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_variant(weights: Mapping[str, float], key: str | None = None, rng: random.Random | None = None) -> str:
    """A variant by weight: by the key's hash when one is given (sticky), at random otherwise."""
    point = sticky_point(key, weights) if key is not None else (rng or random).random()
    return _pick(weights, point)
