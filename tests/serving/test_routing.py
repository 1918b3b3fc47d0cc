"""Routing maths: weighted choice within binomial bounds, sticky keys, weight checks (pure, fast)."""

from __future__ import annotations

import math
import random

import pytest

from serving.routing import WeightsError, check_weights, choose_variant, sticky_point


def binomial_bound(requests: int, share: float, z: float = 3.29) -> tuple[float, float]:
    """Where a variant's count falls with probability ~99.9% (normal approximation)."""
    spread = z * math.sqrt(requests * share * (1 - share))
    return requests * share - spread, requests * share + spread


def test_random_choice_follows_the_weights() -> None:
    rng = random.Random(7)
    weights = {"champion": 0.8, "challenger": 0.2}
    picks = [choose_variant(weights, rng=rng) for _ in range(20_000)]
    low, high = binomial_bound(20_000, 0.2)
    assert low <= picks.count("challenger") <= high


def test_sticky_keys_always_land_on_the_same_variant_and_still_split_by_weight() -> None:
    weights = {"champion": 0.8, "challenger": 0.2}
    first = {f"user-{i}": choose_variant(weights, f"user-{i}") for i in range(5000)}
    again = {key: choose_variant(weights, key) for key in reversed(list(first))}
    assert first == again
    low, high = binomial_bound(5000, 0.2)
    assert low <= list(first.values()).count("challenger") <= high


def test_a_new_weight_setting_reshuffles_sticky_keys_but_is_stable_itself() -> None:
    before, after = {"a": 0.5, "b": 0.5}, {"a": 0.6, "b": 0.4}
    assert sticky_point("user-1", before) == sticky_point("user-1", before)
    assert sticky_point("user-1", before) != sticky_point("user-1", after)


def test_zero_weight_variants_are_never_chosen() -> None:
    rng = random.Random(1)
    assert {choose_variant({"a": 1.0, "b": 0.0}, rng=rng) for _ in range(1000)} == {"a"}
    assert {choose_variant({"a": 1.0, "b": 0.0}, f"k{i}") for i in range(1000)} == {"a"}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"champion": -0.1, "challenger": 1}, "weights.champion = -0.1: must be a finite number >= 0"),
        ({"champion": math.inf}, "weights.champion = inf"),
        ({"champion": "high"}, "weights.champion = 'high'"),
        ({"champion": 0, "challenger": 0}, "at least one must be above 0"),
        ({"champion": 0, "challenger": 5e-324}, "weights.challenger = 5e-324: must be 0 or at least 1e-06"),
        ({"champion": 1, "challenger": 1e-7}, "weights.challenger = 1e-07: must be 0 or at least 1e-06"),
        ({"canary": 1.0}, "weights.canary: not a variant; variants: ['challenger', 'champion']"),
    ],
)
def test_bad_weights_name_the_variant_and_value(weights: dict, message: str) -> None:
    with pytest.raises(WeightsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_weights(weights, {"champion", "challenger"})


def test_missing_variants_get_weight_zero() -> None:
    assert check_weights({"champion": 1}, {"champion", "challenger"}) == {"challenger": 0.0, "champion": 1.0}
    assert check_weights({"challenger": 1e-6}, {"champion", "challenger"})["challenger"] == 1e-6  # the least
