"""The most-popular-items recommender, the baseline ALS's ranking figures are read beside (Spark)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pipeline.evaluation import baseline_metrics


def test_the_k_items_most_often_rated_relevant_are_everyones_list(spark: Any) -> None:
    columns = "user int, item int, rating double"
    relevant = [(1, 1, 5.0), (2, 1, 4.0), (3, 1, 4.0), (1, 2, 5.0), (2, 2, 4.0), (3, 3, 4.0)]
    not_relevant = [(1, 4, 1.0), (2, 4, 1.0), (3, 4, 2.0)]  # item 4 is rated most often, never as relevant
    train = spark.createDataFrame([*relevant, *not_relevant], columns)
    # User 10 likes item 1, user 11 items 2 and 3, user 12 nothing: left out, as ALS's own figures do.
    test = spark.createDataFrame([(10, 1, 5.0), (11, 3, 5.0), (11, 2, 4.0), (12, 1, 1.0)], columns)
    found = baseline_metrics("recommendation", train, test, "rating", user="user", item="item", k=2, relevant=4.0)
    # Everyone gets [1, 2]: user 10 finds item 1 first, user 11 item 2 second (of its 2 relevant ones).
    ndcg_11 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert found["precision_at_k"] == pytest.approx(0.5)
    assert found["ndcg_at_k"] == pytest.approx((1.0 + ndcg_11) / 2)
    assert "rmse" in found  # the global mean rating's, as before
    assert set(baseline_metrics("recommendation", train, test, "rating")) == {"rmse"}  # no ranking asked
