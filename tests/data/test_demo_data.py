"""Demo data sets: deterministic, realistic shapes, learnable labels."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import GeneratedData
from pipeline.data import generate


def collect(spark: Any, generator: str, rows: int, seed: int = 1) -> list[tuple[Any, ...]]:
    frame = generate(spark, GeneratedData(generator=generator, rows=rows, seed=seed))  # type: ignore[arg-type]
    return sorted(tuple(row) for row in frame.collect())


@pytest.mark.parametrize("generator", ["classification", "regression", "clustering", "recommendation"])
def test_same_seed_same_rows_whatever_the_partitioning(spark: Any, generator: str) -> None:
    first = collect(spark, generator, 1500)
    spark.conf.set("spark.sql.shuffle.partitions", "5")
    try:
        again = collect(spark, generator, 1500)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")
    assert first == again
    assert collect(spark, generator, 1500, seed=2) != first


def test_classification_shape(spark: Any) -> None:
    frame = generate(spark, GeneratedData(generator="classification", rows=20_000, seed=3))
    assert frame.columns == [
        "transaction_id",
        "user_id",
        "event_time",
        "amount",
        "customer_age",
        "account_age_days",
        "num_prev_transactions",
        "hour",
        "merchant_category",
        "device",
        "country",
        "currency",
        "noise_1",
        "noise_2",
        "noise_3",
        "label",
    ]
    stats = frame.selectExpr(
        "count(*)",
        "avg(label)",
        "avg(cast(customer_age is null as int))",
        "avg(cast(device is null as int))",
        "count(distinct transaction_id)",
        "count(distinct currency)",
        "count(distinct merchant_category)",
    ).first()
    assert stats[0] == 20_000
    assert 0.05 < stats[1] < 0.2  # imbalanced, like fraud
    assert 0.02 < stats[2] < 0.04 and 0.01 < stats[3] < 0.03  # missing values
    assert stats[4] == 20_000 and stats[5] == 1 and stats[6] == 10  # id-like, constant, categorical
    # The label is learnable: night-time risky-merchant transactions are far more often positive.
    risky = frame.where("merchant_category in ('electronics','travel','gaming') and (hour < 5 or hour >= 23)")
    safe = frame.where("merchant_category = 'grocery' and hour between 9 and 17")
    assert risky.selectExpr("avg(label)").first()[0] > 3 * safe.selectExpr("avg(label)").first()[0]


def test_regression_clustering_recommendation_shapes(spark: Any) -> None:
    houses = generate(spark, GeneratedData(generator="regression", rows=5000))
    corr = houses.stat.corr("sqft", "label")
    assert corr > 0.5
    points = generate(spark, GeneratedData(generator="clustering", rows=4000))
    assert points.select("true_cluster").distinct().count() == 4
    ratings = generate(spark, GeneratedData(generator="recommendation", rows=5000))
    bounds = ratings.selectExpr(
        "min(rating)", "max(rating)", "count(*)", "count(distinct user_id, item_id)"
    ).first()
    assert (bounds[0], bounds[1]) == (1.0, 5.0)
    assert bounds[2] == bounds[3]  # unique (user, item) pairs


def test_breast_cancer_is_the_real_data_set(spark: Any) -> None:
    frame = generate(spark, GeneratedData(generator="breast_cancer"))
    assert frame.count() == 569
    assert "mean_radius" in frame.columns and "label" in frame.columns
    assert frame.where("label = 1").count() == 357  # benign cases in the published data set


def test_wine_is_the_real_three_class_data_set(spark: Any) -> None:
    frame = generate(spark, GeneratedData(generator="wine"))
    counts = {row["label"]: row["count"] for row in frame.groupBy("label").count().collect()}
    assert counts == {0: 59, 1: 71, 2: 48}  # the three cultivars, as published
    assert "alcohol" in frame.columns and "sample_id" in frame.columns
