"""Top-k from ALS factors: dot products ranked best first, ties by item id, unknown users answered empty."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import Recommender, RecordError

USERS = np.array([7, 9]), np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
ITEM_FACTORS = [[3.0, 0.0], [1.0, 4.0], [3.0, 1.0], [-1.0, 0.0]]
ITEMS = np.array([100, 101, 102, 103]), np.array(ITEM_FACTORS, dtype=np.float32)


@pytest.fixture
def recommender() -> Recommender:
    return Recommender(Recommender.pack(*USERS, *ITEMS))


def test_items_are_ranked_by_the_dot_product(recommender: Recommender) -> None:
    assert recommender.top_items(9, 2) == ([101, 102], [2.5, 2.0])
    assert recommender.top_items(9, 10) == ([101, 102, 100, 103], [2.5, 2.0, 1.5, -0.5])  # k above the items


def test_equal_scores_are_ordered_by_item_id(recommender: Recommender) -> None:
    assert recommender.top_items(7, 2) == ([100, 102], [3.0, 3.0])


def test_unknown_users_get_no_items_and_bad_ids_are_named(recommender: Recommender) -> None:
    assert recommender.recommend([7, 8], 1) == [
        {"user": 7, "known": True, "items": [{"item": 100, "score": 3.0}]},
        {"user": 8, "known": False, "items": []},
    ]
    for bad in ("7", 7.5, True, None, float("inf"), -9.223372036854776e18):  # the last: a rounded -2**63 - 1
        with pytest.raises(RecordError, match=r"users\[1\]: expected an integer user id"):
            recommender.recommend([7, bad], 1)
    assert recommender.recommend([7.0], 1) == recommender.recommend([7], 1)  # 7.0 is the integer 7 in JSON


def test_a_user_id_beyond_64_bits_is_named_not_a_crash() -> None:
    recommender = Recommender(Recommender.pack(np.array([1]), np.ones((1, 2)), np.array([5, 6]), np.ones((2, 2))))
    with pytest.raises(RecordError, match="64-bit"):
        recommender.recommend([1, 2**70], 2)
