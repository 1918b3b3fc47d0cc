"""Deterministic demo data sets, generated in Spark so they scale to tens of millions of rows.

Every value of row ``i`` is a function of ``(seed, i)`` only (hash-based, not ``rand()``), so the
same config yields the same rows whatever the number of partitions or executors.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from pipeline.config import GeneratedData

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_ROWS_PER_PARTITION = 500_000
_EPOCH_2026 = 1_767_225_600  # 2026-01-01T00:00:00Z
_MERCHANTS = [
    "grocery",
    "restaurants",
    "fuel",
    "pharmacy",
    "apparel",
    "home",
    "entertainment",
    "electronics",
    "travel",
    "gaming",
]
_RISKY_MERCHANTS = ["electronics", "travel", "gaming"]
_COUNTRIES = ["US", "GB", "DE", "FR", "CA", "ES", "IT", "NL", "SE", "BR", "IN", "MX", "NG", "RU", "VN"]
_RISKY_COUNTRIES = ["NG", "RU", "VN", "BR"]
_DEVICES = ["mobile", "desktop", "tablet"]
_NEIGHBORHOODS = [f"district_{i:02d}" for i in range(12)]
_CONDITIONS = ["poor", "fair", "good", "excellent"]


class _Draws:
    """Independent uniform and normal streams keyed by row id and seed."""

    def __init__(self, seed: int, key: Column | None = None) -> None:
        from pyspark.sql import functions as F

        self._seed = seed
        self._key = F.col("id") if key is None else key
        self._stream = 0

    def uniform(self, key: Column | None = None) -> Column:
        """U[0, 1) from 53 bits of a 64-bit hash of (key, seed, stream)."""
        from pyspark.sql import functions as F

        self._stream += 1
        hashed = F.xxhash64(self._key if key is None else key, F.lit(self._seed), F.lit(self._stream))
        return hashed.bitwiseAND(F.lit((1 << 53) - 1)) / float(1 << 53)

    def normal(self, key: Column | None = None) -> Column:
        """N(0, 1) by Box-Muller from two uniform streams."""
        from pyspark.sql import functions as F

        u1 = F.greatest(self.uniform(key), F.lit(1e-12))
        u2 = self.uniform(key)
        return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u2)

    def choice(self, options: list[str], skew: float = 1.0, key: Column | None = None) -> Column:
        """One of ``options``; ``skew`` > 1 favours the first ones."""
        from pyspark.sql import functions as F

        index = F.floor(F.pow(self.uniform(key), F.lit(skew)) * len(options)).cast("int")
        return F.element_at(F.array(*[F.lit(o) for o in options]), index + 1)


def _ids(spark: SparkSession, rows: int) -> DataFrame:
    partitions = max(1, math.ceil(rows / _ROWS_PER_PARTITION))
    return spark.range(0, rows, numPartitions=partitions)


def _null_when(draws: _Draws, fraction: float, value: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(draws.uniform() < fraction, F.lit(None)).otherwise(value)


def classification(spark: SparkSession, rows: int, seed: int) -> DataFrame:
    """Card transactions with a fraud label (about 9% positive) driven by amount, time, merchant, device."""
    from pyspark.sql import functions as F

    d = _Draws(seed)
    base = _ids(spark, rows).select(
        F.col("id"),
        F.format_string("txn-%010d", F.col("id")).alias("transaction_id"),
        F.floor(d.uniform() * max(10, rows // 20)).cast("long").alias("user_id"),
        F.timestamp_seconds(F.lit(_EPOCH_2026) + F.floor(d.uniform() * 365 * 86400)).alias("event_time"),
        F.round(F.exp(F.lit(3.5) + F.lit(1.1) * d.normal()), 2).alias("amount"),
        _null_when(d, 0.03, (F.lit(18) + F.floor(d.uniform() * 70)).cast("int")).alias("customer_age"),
        F.floor(d.uniform() * 3650).cast("int").alias("account_age_days"),
        F.floor(F.exp(F.lit(2.5) + d.normal())).cast("int").alias("num_prev_transactions"),
        F.floor(d.uniform() * 24).cast("int").alias("hour"),
        d.choice(_MERCHANTS, skew=1.6).alias("merchant_category"),
        _null_when(d, 0.02, d.choice(_DEVICES, skew=1.4)).alias("device"),
        d.choice(_COUNTRIES, skew=2.0).alias("country"),
        F.lit("USD").alias("currency"),
        d.normal().alias("noise_1"),
        d.normal().alias("noise_2"),
        d.uniform().alias("noise_3"),
        d.normal().alias("_label_noise"),
        d.uniform().alias("_label_draw"),
    )
    logit = (
        F.lit(-3.1)
        + F.lit(0.8) * (F.log(F.col("amount")) - F.lit(3.5))
        + F.when((F.col("hour") < 5) | (F.col("hour") >= 23), 1.3).otherwise(0.0)
        + F.when(F.col("merchant_category").isin(_RISKY_MERCHANTS), 1.0).otherwise(0.0)
        + F.when(F.col("country").isin(_RISKY_COUNTRIES), 1.1).otherwise(0.0)
        + F.when(F.col("device") == "mobile", 0.4).otherwise(0.0)
        + F.when(F.col("customer_age").isNull(), 0.8).otherwise(0.0)
        - F.lit(0.0004) * F.col("account_age_days")
        + F.lit(0.05) * (F.col("num_prev_transactions") < 3).cast("double")
        + F.lit(0.5) * F.col("_label_noise")
    )
    label = (F.col("_label_draw") < F.lit(1.0) / (F.lit(1.0) + F.exp(-logit))).cast("int")
    return base.withColumn("label", label).drop("id", "_label_noise", "_label_draw")


def regression(spark: SparkSession, rows: int, seed: int) -> DataFrame:
    """House sales: price from size, rooms, age, lot, neighbourhood and condition, plus noise."""
    from pyspark.sql import functions as F

    d = _Draws(seed)
    base = _ids(spark, rows).select(
        F.format_string("house-%09d", F.col("id")).alias("house_id"),
        F.round(F.lit(600.0) + F.exp(F.lit(7.0) + F.lit(0.35) * d.normal()), 0).alias("sqft"),
        (F.lit(1) + F.floor(d.uniform() * 5)).cast("int").alias("bedrooms"),
        (F.lit(1) + F.floor(d.uniform() * 3)).cast("int").alias("bathrooms"),
        (F.lit(1920) + F.floor(d.uniform() * 105)).cast("int").alias("year_built"),
        _null_when(d, 0.05, F.round(F.exp(F.lit(8.5) + F.lit(0.6) * d.normal()), 0)).alias("lot_sqft"),
        d.choice(_NEIGHBORHOODS, skew=1.3).alias("neighborhood"),
        d.choice(_CONDITIONS, skew=0.8).alias("condition"),
        d.normal().alias("noise_1"),
        d.uniform().alias("noise_2"),
        d.normal().alias("_noise"),
    )
    district = F.regexp_extract(F.col("neighborhood"), r"(\d+)", 1).cast("double")
    condition_rank = F.create_map(*[F.lit(v) for i, c in enumerate(_CONDITIONS) for v in (c, float(i))])
    condition = condition_rank[F.col("condition")]
    price = (
        F.lit(40_000.0)
        + F.lit(160.0) * F.col("sqft")
        + F.lit(9_000.0) * F.col("bedrooms")
        + F.lit(14_000.0) * F.col("bathrooms")
        + F.lit(650.0) * (F.col("year_built") - F.lit(1920))
        + F.lit(2.0) * F.coalesce(F.col("lot_sqft"), F.lit(5000.0))
        + F.lit(11_000.0) * district
        + F.lit(18_000.0) * condition
        + F.lit(25_000.0) * F.col("_noise")
    )
    return base.withColumn("label", F.round(price, 0)).drop("_noise")


def clustering(spark: SparkSession, rows: int, seed: int, clusters: int = 4, dims: int = 5) -> DataFrame:
    """Points around ``clusters`` well-separated centres, with the true centre kept as ``true_cluster``."""
    from pyspark.sql import functions as F

    d = _Draws(seed)
    cluster = F.floor(d.uniform() * clusters).cast("int")
    frame = _ids(spark, rows).select(
        F.format_string("point-%09d", F.col("id")).alias("point_id"), cluster.alias("true_cluster"), "id"
    )
    centre = _Draws(seed + 1, key=F.col("true_cluster"))
    columns = [
        (centre.uniform() * F.lit(20.0) - F.lit(10.0) + d.normal()).alias(f"x{dim + 1}") for dim in range(dims)
    ]
    return frame.select("point_id", *columns, d.normal().alias("noise_1"), "true_cluster")


def recommendation(spark: SparkSession, rows: int, seed: int, rank: int = 4) -> DataFrame:
    """Explicit 1-5 ratings from latent user and item factors plus biases; unique (user, item) pairs."""
    from pyspark.sql import functions as F

    users = max(20, rows // 40)
    items = max(20, min(5_000, rows // 100))
    d = _Draws(seed)
    pairs = _ids(spark, rows).select(
        "id",
        F.floor(d.uniform() * users).cast("int").alias("user_id"),
        F.floor(F.pow(d.uniform(), F.lit(1.5)) * items).cast("int").alias("item_id"),
        d.normal().alias("_noise"),
        F.timestamp_seconds(F.lit(_EPOCH_2026) + F.floor(d.uniform() * 365 * 86400)).alias("rated_at"),
    )
    user_draws = _Draws(seed + 11, key=F.col("user_id"))
    item_draws = _Draws(seed + 23, key=F.col("item_id"))
    affinity = sum((user_draws.normal() * item_draws.normal() for _ in range(rank)), start=F.lit(0.0)) / F.lit(
        math.sqrt(rank)
    )
    score = (
        F.lit(3.2)
        + F.lit(0.5) * user_draws.normal()
        + F.lit(0.5) * item_draws.normal()
        + F.lit(0.9) * affinity
        + F.lit(0.35) * F.col("_noise")
    )
    rating = F.least(F.greatest(F.round(score), F.lit(1.0)), F.lit(5.0)).cast("float")
    return (
        pairs.withColumn("rating", rating)
        .dropDuplicates(["user_id", "item_id"])
        .select("user_id", "item_id", "rating", "rated_at")
    )


def shipped(spark: SparkSession, name: str) -> DataFrame:
    """A real data set shipped by scikit-learn: ``breast_cancer`` (Wisconsin, 569 rows, 30 measurements,
    label 1 = benign) or ``wine`` (178 wines, 13 measurements, label 0-2: three cultivars)."""
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}[name]
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns=lambda column: re.sub(r"\W+", "_", column.strip()).strip("_"))
    frame = frame.rename(columns={"target": "label"})
    frame.insert(0, "sample_id", [f"sample-{i:04d}" for i in range(len(frame))])
    return spark.createDataFrame(frame)


def generate(spark: SparkSession, spec: GeneratedData) -> DataFrame:
    """The demo data set ``spec`` names (``rows`` is ignored for the fixed-size real ones)."""
    if spec.generator in ("breast_cancer", "wine"):
        return shipped(spark, spec.generator)
    makers = {
        "classification": classification,
        "regression": regression,
        "clustering": clustering,
        "recommendation": recommendation,
    }
    return makers[spec.generator](spark, spec.rows, spec.seed)
