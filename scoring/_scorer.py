"""The JVM-free scorer: an ONNX graph exported from a Spark pipeline, fed from JSON-like records.

No Spark, Ray, MLflow or Serve here: the parity gate (in ``pipeline.export``) and the Serve replicas both use
this module, so what was checked against Spark is exactly what serves.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Collection, Mapping, Sequence
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
NULL_STRING = "\x00null"
# A JSON number the scorer takes: finite as a double (a larger integer is refused by name), or null.
_LARGEST = sys.float_info.max
_NUMBER: dict[str, Any] = {"type": ["number", "null"], "minimum": -_LARGEST, "maximum": _LARGEST}


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

    def json_schema(self, integer_range: tuple[int, int] | None = None) -> dict[str, Any]:
        """The JSON Schema of the values this field takes: exactly what ``records_to_feeds`` accepts (null is
        a missing value, imputed as in training). ``integer_range``: a scorer that takes only integers in
        that range and no null (the Spark fallback, held to MLflow's signature)."""
        if self.kind == "vector":
            return {"type": "array", "items": {**_NUMBER}, "minItems": self.size, "maxItems": self.size}
        if self.kind == "number" and integer_range is not None:
            return {"type": "integer", "minimum": integer_range[0], "maximum": integer_range[1]}
        return {**_NUMBER} if self.kind == "number" else {"type": [self.kind, "null"]}


@dataclass(frozen=True)
class ScorerSpec:
    """What the exported graph takes and gives: stored beside the ONNX file as JSON."""

    task: str
    inputs: tuple[InputField, ...]
    classes: int | None = None
    # The other columns of the table version the model was trained on (the label, id-like, constant or
    # dropped ones): a record may carry them, as a row of that table does, and they are ignored.
    ignored: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "task": self.task,
                "classes": self.classes,
                "inputs": [asdict(f) for f in self.inputs],
                "ignored": list(self.ignored),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ScorerSpec:
        raw = json.loads(text)
        inputs = tuple(InputField(**field) for field in raw["inputs"])
        # Specs logged before `ignored` existed have none: such a version takes its inputs only.
        ignored = tuple(raw.get("ignored", ()))
        return cls(task=raw["task"], inputs=inputs, classes=raw.get("classes"), ignored=ignored)


def as_integer(value: Any) -> int | None:
    """The integer a JSON value stands for (``3`` or ``3.0``), or None. A whole float must be exact (within
    2**53): a JSON parser hands an integer too long for 64 bits over as a rounded float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return None


def _number(value: Any, field: str, record: int) -> float:
    if value is None:
        return math.nan  # missing values are imputed by the pipeline, as in training
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(field, f"expected a number, got {type(value).__name__} {value!r}", record)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any double: JSON allows it, the model cannot take it
        reason = f"expected a finite number, got an integer of {int(value).bit_length()} bits"
        raise RecordError(field, reason, record) from None
    if not math.isfinite(number):
        raise RecordError(field, f"expected a finite number, got {value!r}", record)
    return number


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
            values.append(NULL_STRING if value is None else value)
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
            values = [NULL_STRING if value is None else value for value in values]
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


def records_to_feeds(
    inputs: Sequence[InputField], records: Sequence[Mapping[str, Any]], ignored: Collection[str] = ()
) -> dict[str, np.ndarray]:
    """Checked ONNX feeds, one array per input column; raises RecordError naming the first bad value.
    Fields named in ``ignored`` (the training table's other columns) are accepted and left out."""
    known = {field.name for field in inputs}
    accepted = known.union(ignored)
    if not set().union(*records) <= accepted:
        for index, record in enumerate(records):
            unknown = sorted(set(record) - accepted)
            if unknown:
                also = f"; it ignores the training table's other columns {sorted(ignored)}" if ignored else ""
                raise RecordError(unknown[0], f"unknown field; the model takes {sorted(known)}{also}", index)
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
    """An onnxruntime session over an exported pipeline; ``score`` returns one dict per record.

    With ``threads`` > 1 a second session splits large batches over that many cores (tree ensembles
    split by rows); requests under ``BATCH_ROWS`` stay on one thread, where handing work to a pool
    costs more than it saves.
    """

    BATCH_ROWS = 256

    def __init__(self, onnx_bytes: bytes, spec: ScorerSpec, threads: int = 1) -> None:
        self.spec = spec
        self._session = _session(onnx_bytes, 1)
        self._batch_session = _session(onnx_bytes, threads) if threads > 1 else self._session
        self._outputs = [output.name for output in self._session.get_outputs()]

    def score_arrays(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(next(iter(feeds.values()))) if feeds else 0
        session = self._batch_session if rows >= self.BATCH_ROWS else self._session
        return dict(zip(self._outputs, session.run(self._outputs, dict(feeds)), strict=True))

    def score(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        outputs = self.score_arrays(records_to_feeds(self.spec.inputs, records, self.spec.ignored))
        return format_outputs(outputs, len(records))


def _session(onnx_bytes: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep rather than spin: on a small machine a spinning pool takes the CPU that the
    # HTTP front and the other replicas need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


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
