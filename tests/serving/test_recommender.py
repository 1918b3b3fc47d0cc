"""Top-k from ALS factors: dot products ranked best first, ties by item id, unknown users answered empty."""

from __future__ import annotations

import numpy as np
import pytest

from serving.scoring import Recommender, RecordError

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
    for bad in ("7", 7.0, True, None):
        with pytest.raises(RecordError, match=r"users\[1\]: expected an integer user id"):
            recommender.recommend([7, bad], 1)
