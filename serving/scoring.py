"""The JVM-free scorer: an ONNX graph exported from a Spark pipeline, fed from JSON-like records.

No Spark, Ray or MLflow here: the parity gate (in ``pipeline.export``) and the Serve replicas both use
this module, so what was checked against Spark is exactly what serves.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

FieldKind = Literal["number", "boolean", "string", "vector"]
PREDICTION = "prediction"
PROBABILITY = "probability"
# Where a registered version's scorer lives among its run's artifacts (written at registration, read by serving).
SCORER_ARTIFACT = "scorer"
SCORER_ONNX = "model.onnx"
SCORER_SPEC = "inputs.json"
SCORER_FACTORS = "factors.npz"  # ALS only
# A value no StringIndexer learned: Spark files a null category under "unknown", and so does this.
_NULL_STRING = "\x00null"


class RecordError(ValueError):
    """A request record that cannot be scored; names the record, the field and the reason."""

    def __init__(self, field: str, reason: str, record: int | None = None) -> None:
        where = f"instances[{record}].{field}" if record is not None else field
        super().__init__(f"{where}: {reason}")
        self.field = field
        self.reason = reason
        self.record = record


@dataclass(frozen=True)
class InputField:
    """One input column of the model, as the scorer (and the HTTP API) expects it."""

    name: str
    kind: FieldKind
    size: int | None = None  # vectors only

    def describe(self) -> str:
        return f"{self.kind}[{self.size}]" if self.kind == "vector" else self.kind


@dataclass(frozen=True)
class ScorerSpec:
    """What the exported graph takes and gives: stored beside the ONNX file as JSON."""

    task: str
    inputs: tuple[InputField, ...]
    classes: int | None = None

    def to_json(self) -> str:
        return json.dumps({"task": self.task, "classes": self.classes, "inputs": [asdict(f) for f in self.inputs]})

    @classmethod
    def from_json(cls, text: str) -> ScorerSpec:
        raw = json.loads(text)
        inputs = tuple(InputField(**field) for field in raw["inputs"])
        return cls(task=raw["task"], inputs=inputs, classes=raw.get("classes"))


def _number(value: Any, field: str, record: int) -> float:
    if value is None:
        return math.nan  # missing values are imputed by the pipeline, as in training
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(field, f"expected a number, got {type(value).__name__} {value!r}", record)
    if not math.isfinite(value):
        raise RecordError(field, f"expected a finite number, got {value!r}", record)
    return float(value)


def _column(field: InputField, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    values: list[Any] = []
    for index, record in enumerate(records):
        if field.name not in record:
            raise RecordError(field.name, f"missing (expected {field.describe()})", index)
        value = record[field.name]
        if field.kind == "number":
            values.append(_number(value, field.name, index))
        elif field.kind == "boolean":
            if value is not None and not isinstance(value, bool):
                raise RecordError(field.name, f"expected true or false, got {value!r}", index)
            values.append(math.nan if value is None else float(value))
        elif field.kind == "string":
            if value is not None and not isinstance(value, str):
                raise RecordError(field.name, f"expected a string, got {type(value).__name__} {value!r}", index)
            values.append(_NULL_STRING if value is None else value)
        else:
            if not isinstance(value, list) or len(value) != field.size:
                raise RecordError(field.name, f"expected a list of {field.size} numbers", index)
            values.append([_number(item, field.name, index) for item in value])
    if field.kind == "string":
        return np.array(values, dtype=object).reshape(-1, 1)
    array = np.array(values, dtype=np.float64)
    return array.reshape(len(records), -1)


def _fast_column(field: InputField, records: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    """The column built in bulk when every value is well formed; None sends it to the checked path.

    Batches of thousands of records spend most of their time here, so values are gathered once and
    type-checked as a set; any doubt (a missing key, a stray type, a non-finite number) falls back to
    ``_column``, which finds the first bad value and names it.
    """
    name = field.name
    try:
        values = [record[name] for record in records]
    except KeyError:
        return None
    kinds = set(map(type, values))
    nulls = values.count(None) if type(None) in kinds else 0
    if field.kind == "string":
        if not kinds <= {str, type(None)}:
            return None
        if nulls:
            values = [_NULL_STRING if value is None else value for value in values]
        return np.array(values, dtype=object).reshape(-1, 1)
    allowed = {int, float, type(None)} if field.kind == "number" else {bool, type(None)}
    if field.kind == "vector" or not kinds <= allowed:
        return None
    try:
        array = np.array(values, dtype=np.float64)  # None becomes NaN: imputed by the pipeline, as in training
    except OverflowError:
        return None
    if int(np.isfinite(array).sum()) != len(values) - nulls:
        return None
    return array.reshape(-1, 1)


def records_to_feeds(inputs: Sequence[InputField], records: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Checked ONNX feeds, one array per input column; raises RecordError naming the first bad value."""
    known = {field.name for field in inputs}
    if not set().union(*records) <= known:
        for index, record in enumerate(records):
            unknown = sorted(set(record) - known)
            if unknown:
                raise RecordError(unknown[0], f"unknown field; the model takes {sorted(known)}", index)
    feeds = {}
    for field in inputs:
        array = _fast_column(field, records)
        feeds[field.name] = array if array is not None else _column(field, records)
    return feeds


def positional_record(inputs: Sequence[InputField], features: Sequence[Any]) -> dict[str, Any]:
    """A record from a plain list of values ordered as the model's inputs (the seed API's form)."""
    if len(features) != len(inputs):
        names = [field.name for field in inputs]
        raise RecordError("features", f"expected {len(inputs)} values in the order {names}, got {len(features)}")
    return {field.name: value for field, value in zip(inputs, features, strict=True)}


class OnnxScorer:
    """An onnxruntime session over an exported pipeline; ``score`` returns one dict per record."""

    def __init__(self, onnx_bytes: bytes, spec: ScorerSpec, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread per request: replicas and concurrent requests give the parallelism.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.spec = spec
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self._outputs = [output.name for output in self._session.get_outputs()]

    def score_arrays(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self._session.run(self._outputs, dict(feeds)), strict=True))

    def score(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        outputs = self.score_arrays(records_to_feeds(self.spec.inputs, records))
        return format_outputs(outputs, len(records))


def format_outputs(outputs: Mapping[str, np.ndarray], rows: int) -> list[dict[str, Any]]:
    """Plain JSON values per row: the prediction, and class probabilities where the model has them."""
    predictions = np.asarray(outputs[PREDICTION], dtype=np.float64).reshape(rows)
    # NaN (e.g. ALS's cold start: an unknown user or item) is not JSON: it is answered as null.
    values: list[float | None] = [None if math.isnan(value) else value for value in predictions.tolist()]
    probabilities = outputs.get(PROBABILITY)
    if probabilities is None:
        return [{PREDICTION: value} for value in values]
    per_row = np.asarray(probabilities, dtype=np.float64).reshape(rows, -1).tolist()
    return [{PREDICTION: value, PROBABILITY: row} for value, row in zip(values, per_row, strict=True)]


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
        """One answer per user; raises RecordError naming the first id that is not an integer."""
        for index, user in enumerate(users):
            if isinstance(user, bool) or not isinstance(user, int):
                raise RecordError(f"users[{index}]", f"expected an integer user id, got {json.dumps(user)[:80]}")
        answers = []
        for user in users:
            found = self.top_items(user, k)
            items = (
                []
                if found is None
                else [{"item": item, "score": score} for item, score in zip(*found, strict=True)]
            )
            answers.append({"user": user, "known": found is not None, "items": items})
        return answers
