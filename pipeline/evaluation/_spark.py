"""Evaluate predictions with Spark's evaluators, and the trivial baselines a model must beat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from comparison import ndcg_at_k
from pipeline.evaluation._compare import PairedOutcomes, PredictionSample
from pipeline.evaluation._metrics import majority_class_baseline
from pipeline.evaluation._summaries import (
    LOG_LOSS_EPSILON,
    SCORE_DECIMALS,
    classification_summary,
    regression_summary,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def _score(evaluator_class: Any, data: DataFrame, **params: Any) -> float:
    """One evaluator's metric (params as Spark names them)."""
    return float(evaluator_class(**params).evaluate(data))


def classification_metrics(predictions: DataFrame, label: str, binary: bool) -> dict[str, float]:
    """Every classification metric from one aggregation job: rows counted per (label, predicted class,
    positive-class score to 4 decimals) with their summed log loss, then :func:`classification_summary`."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    truth = F.col(label).cast("int")
    keys = [truth.alias("label"), F.col("prediction").cast("int").alias("prediction")]
    sums = [F.count(F.lit(1)).alias("rows")]
    has_probability = "probability" in predictions.columns
    probabilities = vector_to_array(F.col("probability")) if has_probability else None
    if probabilities is not None:
        of_label = F.element_at(probabilities, truth + 1)
        sums.append(F.sum(-F.log(F.greatest(of_label, F.lit(LOG_LOSS_EPSILON)))).alias("loss"))
    if binary:
        # Trees' rawPrediction holds leaf counts, which do not rank rows: score by probability when there
        # is one; a margin (linear SVM) goes through a sigmoid, which keeps its order, to bound the groups.
        if probabilities is not None:
            score = F.element_at(probabilities, 2)
        else:
            score = 1 / (1 + F.exp(-F.element_at(vector_to_array(F.col("rawPrediction")), 2)))
        keys.append(F.round(score, SCORE_DECIMALS).alias("score"))
    groups = predictions.groupBy(*keys).agg(*sums).collect()
    if not groups:
        raise ValueError("no rows to evaluate")

    def column(name: str) -> np.ndarray:
        return np.array([row[name] for row in groups], dtype=np.float64)

    return classification_summary(
        column("label"),
        column("prediction"),
        column("rows"),
        score=column("score") if binary else None,
        loss_sum=float(column("loss").sum()) if has_probability else None,
    )


def regression_metrics(predictions: DataFrame, label: str) -> dict[str, float]:
    """RMSE, MAE and R² from one aggregation job."""
    from pyspark.sql import functions as F

    actual = F.col(label).cast("double")
    error = actual - F.col("prediction")
    row = predictions.agg(
        F.count(F.lit(1)), F.sum(error * error), F.sum(F.abs(error)), F.sum(actual), F.sum(actual * actual)
    ).first()
    assert row is not None
    return regression_summary(*(float(value or 0.0) for value in row))


def clustering_metrics(predictions: DataFrame, features: str, prediction: str = "prediction") -> dict[str, float]:
    from pyspark.ml.evaluation import ClusteringEvaluator

    if predictions.select(prediction).distinct().count() < 2:
        return {"silhouette": 0.0}  # one cluster: silhouette is undefined, and no better than chance
    evaluator = ClusteringEvaluator(featuresCol=features, predictionCol=prediction, metricName="silhouette")
    return {"silhouette": evaluator.evaluate(predictions)}


def ranking_metrics(
    als_model: Any, test: DataFrame, user: str, item: str, rating: str, k: int, relevant: float
) -> dict[str, float]:
    """precision@k and NDCG@k of the model's top-k items against each test user's relevant items."""
    from pyspark.sql import functions as F

    truth = _relevant_items(test, user, item, rating, relevant)
    if truth.limit(1).count() == 0:
        return {}
    recommended = als_model.recommendForUserSubset(truth.select(user), k).select(
        user, F.col("recommendations").getField(item).cast("array<double>").alias("recommended")
    )
    return _ranked(truth.join(recommended, on=user, how="inner"), k)


def popularity_baseline(
    train: DataFrame, test: DataFrame, user: str, item: str, rating: str, k: int, relevant: float
) -> dict[str, float]:
    """precision@k and NDCG@k of the most-popular-items recommender: the k items most often rated relevant
    in the training split (ties: the lower item id), the same list for every test user."""
    from pyspark.sql import functions as F

    truth = _relevant_items(test, user, item, rating, relevant)
    if truth.limit(1).count() == 0:
        return {}
    popular = (
        train.where(F.col(rating) >= relevant)
        .groupBy(item)
        .count()
        .orderBy(F.desc("count"), F.asc(item))
        .limit(k)
        .collect()
    )
    top = F.array(*[F.lit(float(row[item])) for row in popular]) if popular else F.array().cast("array<double>")
    return _ranked(truth.withColumn("recommended", top), k)


def _relevant_items(test: DataFrame, user: str, item: str, rating: str, relevant: float) -> DataFrame:
    """Each test user's relevant items (rated at least ``relevant``), as RankingEvaluator takes them."""
    from pyspark.sql import functions as F

    return (
        test.where(F.col(rating) >= relevant)
        .groupBy(user)
        .agg(F.collect_list(F.col(item).cast("double")).alias("relevant"))
    )


def _ranked(joined: DataFrame, k: int) -> dict[str, float]:
    from pyspark.ml.evaluation import RankingEvaluator

    metrics = {}
    for name, spark_name in (("precision_at_k", "precisionAtK"), ("ndcg_at_k", "ndcgAtK")):
        metrics[name] = _score(
            RankingEvaluator, joined, predictionCol="recommended", labelCol="relevant", metricName=spark_name, k=k
        )
    return metrics


def baseline_metrics(
    task: str, train: DataFrame, test: DataFrame, label: str | None, **extra: Any
) -> dict[str, float]:
    """What a trivial model scores: majority class, mean predictor, random clusters; for a recommender the
    global mean rating and, given ``user``, ``item``, ``k`` and ``relevant`` in ``extra``, the most-popular
    items' precision@k and NDCG@k on the same test users."""
    from pyspark.sql import functions as F

    if task == "classification":
        assert label is not None
        train_counts = {r[0]: r[1] for r in train.groupBy(label).count().collect()}
        test_counts = {r[0]: r[1] for r in test.groupBy(label).count().collect()}
        return majority_class_baseline(train_counts, test_counts)
    if task in ("regression", "recommendation"):
        assert label is not None
        mean = train.agg(F.avg(label)).first()[0]  # type: ignore[index]
        deviation = F.col(label) - F.lit(mean)
        row = test.agg(F.sqrt(F.avg(deviation * deviation)), F.avg(F.abs(deviation))).first()
        assert row is not None
        if task == "regression":
            return {"rmse": row[0], "mae": row[1]}
        ranking = {}
        if "user" in extra:
            ranking = popularity_baseline(
                train, test, extra["user"], extra["item"], label, extra["k"], extra["relevant"]
            )
        return {"rmse": row[0], **ranking}
    if task == "clustering":
        k, features = extra["k"], extra["features"]
        random = test.withColumn("random_cluster", F.floor(F.rand(seed=1) * k).cast("int"))
        return clustering_metrics(random, features, prediction="random_cluster")
    raise ValueError(f"unknown task {task!r}")


def paired_outcomes(model_a: Any, model_b: Any, frame: DataFrame, label: str) -> PairedOutcomes:
    """Score the same rows with both fitted pipelines and collect them side by side (joined on a row id,
    not on collection order)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    rows = frame.withColumn("__row", F.monotonically_increasing_id()).cache()
    try:
        joined = rows.select("__row", F.col(label).cast("double").alias("__label"))
        for suffix, model in (("a", model_a), ("b", model_b)):
            scored = model.transform(rows)
            columns = [F.col("__row"), F.col("prediction").alias(f"__prediction_{suffix}")]
            if "probability" in scored.columns:
                columns.append(vector_to_array(F.col("probability")).alias(f"__probability_{suffix}"))
            joined = joined.join(scored.select(*columns), "__row")
        collected = joined.orderBy("__row").collect()
    finally:
        rows.unpersist()
    if not collected:
        raise ValueError("no rows to compare the models on")

    def values(name: str) -> np.ndarray:
        return np.array([row[name] for row in collected], dtype=np.float64)

    def probabilities(suffix: str) -> np.ndarray | None:  # rows x classes, for models that give them
        name = f"__probability_{suffix}"
        return values(name) if name in collected[0].asDict() else None

    return PairedOutcomes(
        values("__label"),
        values("__prediction_a"),
        values("__prediction_b"),
        probabilities("a"),
        probabilities("b"),
    )


PLOT_SAMPLE_ROWS = 20_000  # enough for smooth ROC and residual plots; one small collect at any data size


def prediction_sample(
    predictions: DataFrame, label: str | None, test_rows: int, limit: int = PLOT_SAMPLE_ROWS, seed: int = 7
) -> PredictionSample:
    """Collect a uniform sample of ``predictions`` (every row when there are at most ``limit``)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    frame = predictions
    if test_rows > limit:  # a little over the fraction, then cut: a sample is never exactly its fraction
        frame = predictions.sample(fraction=min(1.0, 1.05 * limit / test_rows), seed=seed).limit(limit)
    columns = [F.col("prediction").cast("double").alias("prediction")]
    if label is not None:
        columns.append(F.col(label).cast("double").alias("label"))
    if "probability" in predictions.columns:
        columns.append(vector_to_array(F.col("probability")).alias("probability"))
    collected = frame.select(*columns).collect()

    def values(name: str) -> np.ndarray | None:
        if not collected or name not in collected[0].asDict():
            return None
        return np.array([row[name] for row in collected], dtype=np.float64)

    prediction = values("prediction")
    return PredictionSample(
        len(collected),
        test_rows,
        prediction if prediction is not None else np.empty(0),
        values("label"),
        values("probability"),
    )


def paired_clusters(
    model_a: Any, model_b: Any, frame: DataFrame, max_rows: int, features: str = "features", seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``max_rows`` rows of ``frame`` (a seeded sample) clustered by both fitted pipelines: each
    model's feature vectors and cluster per row, joined on a row id."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    rows = frame.orderBy(F.rand(seed)).limit(max_rows).withColumn("__row", F.monotonically_increasing_id()).cache()
    try:
        joined = rows.select("__row")
        for suffix, model in (("a", model_a), ("b", model_b)):
            scored = model.transform(rows).select(
                "__row",
                vector_to_array(F.col(features)).alias(f"__x_{suffix}"),
                F.col("prediction").alias(f"__cluster_{suffix}"),
            )
            joined = joined.join(scored, "__row")
        collected = joined.orderBy("__row").collect()
    finally:
        rows.unpersist()
    if len(collected) < 2:
        raise ValueError("fewer than 2 rows to compare the clusterings on")
    return (
        np.array([row["__x_a"] for row in collected], dtype=np.float64),
        np.array([row["__cluster_a"] for row in collected]),
        np.array([row["__x_b"] for row in collected], dtype=np.float64),
        np.array([row["__cluster_b"] for row in collected]),
    )


def paired_ndcg(
    als_a: Any, als_b: Any, test: DataFrame, user: str, item: str, rating: str, k: int, relevant: float
) -> tuple[np.ndarray, np.ndarray]:
    """NDCG@k of both ALS models for every test user with a relevant item (rated ``relevant`` or more),
    in the same user order."""
    from pyspark.sql import functions as F

    truth = test.where(F.col(rating) >= relevant).groupBy(user).agg(F.collect_set(item).alias("relevant"))
    relevant_items = {row[user]: set(row["relevant"]) for row in truth.collect()}
    if len(relevant_items) < 2:
        raise ValueError(f"fewer than 2 test users with an item rated {relevant} or more")
    users = truth.select(user)
    ranked = []
    for model in (als_a, als_b):
        recommended = model.recommendForUserSubset(users, k).select(
            user, F.col("recommendations").getField(item).alias("items")
        )
        ranked.append({row[user]: list(row["items"]) for row in recommended.collect()})
    order = sorted(relevant_items)
    return tuple(  # type: ignore[return-value]
        np.array([ndcg_at_k(found.get(who, []), relevant_items[who], k) for who in order]) for found in ranked
    )
