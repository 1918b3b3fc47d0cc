"""Top-k recommendations from an ALS model's exported factors. numpy only."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from scoring._scorer import RecordError, as_integer


class Recommender:
    """Top-k items for users from an ALS model's factors: what Spark's ``recommendForUserSubset`` answers
    (scores are the dot products of user and item factors; items the user rated are not excluded)."""

    def __init__(self, factors: bytes) -> None:
        with np.load(io.BytesIO(factors)) as data:
            self._item_ids = data["item_ids"]
            self._item_factors = data["item_factors"].astype(np.float64)
            user_ids, self._user_factors = data["user_ids"], data["user_factors"].astype(np.float64)
        self._user_rows = {int(user): row for row, user in enumerate(user_ids)}

    @staticmethod
    def pack(
        user_ids: np.ndarray, user_factors: np.ndarray, item_ids: np.ndarray, item_factors: np.ndarray
    ) -> bytes:
        """The factors as one ``.npz`` file (logged with the version beside the ONNX graph)."""
        buffer = io.BytesIO()
        np.savez(
            buffer, user_ids=user_ids, user_factors=user_factors, item_ids=item_ids, item_factors=item_factors
        )
        return buffer.getvalue()

    @property
    def items(self) -> int:
        return len(self._item_ids)

    def top_items(self, user: int, k: int) -> tuple[list[int], list[float]] | None:
        """The user's k best items and their scores, best first; None for a user ALS never saw."""
        row = self._user_rows.get(user)
        if row is None:
            return None
        scores = self._item_factors @ self._user_factors[row]
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.lexsort((self._item_ids[best], -scores[best]))]  # by score, then item id on a tie
        return self._item_ids[best].tolist(), scores[best].tolist()

    def recommend(self, users: Sequence[Any], k: int) -> list[dict[str, Any]]:
        """One answer per user; raises RecordError naming the first id that is not a (64-bit) integer.
        A whole float (``42.0``) is the integer it equals, as JSON has it."""
        ids = []
        for index, user in enumerate(users):
            value = as_integer(user)
            if value is None or not -(2**63) <= value < 2**63:
                reason = f"expected an integer user id (64-bit), got {json.dumps(user)[:80]}"
                raise RecordError(f"users[{index}]", reason)
            ids.append(value)
        answers = []
        for user in ids:
            found = self.top_items(user, k)
            items = (
                []
                if found is None
                else [{"item": item, "score": score} for item, score in zip(*found, strict=True)]
            )
            answers.append({"user": user, "known": found is not None, "items": items})
        return answers
