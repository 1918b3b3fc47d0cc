"""ALS top-k: the factors that serve recommendations without Spark, checked against Spark's own answer."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring import Recommender

if TYPE_CHECKING:
    from pipeline.training import TrainedModel

RECOMMEND_USERS = 50  # held-out users whose top-k lists are compared with Spark's
RECOMMEND_K = 10


def _als_stage(trained: TrainedModel) -> Any:
    stages = getattr(trained.model, "stages", [trained.model])
    return next(stage for stage in stages if type(stage).__name__ == "ALSModel")


def export_factors(als: Any) -> bytes:
    """User and item factors (float32, as Spark holds them) with their ids, packed for the Recommender."""

    def table(frame: Any) -> tuple[np.ndarray, np.ndarray]:
        rows = frame.orderBy("id").collect()
        ids = np.array([row["id"] for row in rows], dtype=np.int64)
        return ids, np.array([row["features"] for row in rows], dtype=np.float32).reshape(len(rows), als.rank)

    return Recommender.pack(*table(als.userFactors), *table(als.itemFactors))


def _tied(scores: list[float], position: int, tolerance: float) -> bool:
    """Whether the score at ``position`` equals a neighbour's (or is the last kept): order is then free."""
    if position == len(scores) - 1:
        return True
    scale = max(1.0, abs(scores[position]))
    neighbours = [scores[p] for p in (position - 1, position + 1) if 0 <= p < len(scores)]
    return any(abs(scores[position] - other) <= tolerance * scale for other in neighbours)


def check_recommendations(trained: TrainedModel, tolerance: float) -> tuple[bytes, str, float]:
    """The factors, and a problem ("" if none) after comparing top-k lists with ``recommendForUserSubset``."""
    als = _als_stage(trained)
    factors = export_factors(als)
    recommender = Recommender(factors)
    users = trained.prepared.test.select(als.getUserCol()).distinct().limit(RECOMMEND_USERS)
    expected = als.recommendForUserSubset(users, RECOMMEND_K).collect()
    if not expected:
        return factors, "no held-out users to compare recommendations on", math.inf
    worst = 0.0
    for row in expected:
        user = int(row[als.getUserCol()])
        theirs = [(int(entry[als.getItemCol()]), float(entry["rating"])) for entry in row["recommendations"]]
        found = recommender.top_items(user, RECOMMEND_K)
        if found is None or len(found[0]) != len(theirs):
            return factors, f"user {user}: Spark recommends {len(theirs)} items, the factors {found}", math.inf
        items, scores = found
        for position, (item, score) in enumerate(zip(items, scores, strict=True)):
            spark_item, spark_score = theirs[position]
            difference = abs(score - spark_score) / max(1.0, abs(spark_score))
            worst = max(worst, difference)
            if difference > tolerance:
                where = f"user {user}: item {position + 1}"
                return factors, f"{where}'s score differs by {difference:.3g} (relative)", worst
            if item != spark_item and not _tied(scores, position, tolerance):
                return factors, f"user {user}: item {position + 1} is {item}, Spark's is {spark_item}", worst
    return factors, "", worst
