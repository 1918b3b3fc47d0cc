"""Request and response bodies: reading the JSON once, checking its shape, the errors that name field and
reason, and the JSON Schemas that document those shapes in OpenAPI.

Pure (pydantic and orjson only): tested without Serve. Each check sits beside the schema of what it takes
(``predict_envelope`` and ``predict_forms``, ...), and the values inside a record are the scorer's to check
against the field schemas it documents itself; the checks are hand-written because a 10,000-record batch
must not build a model object per record. The pydantic models document the answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from scoring import RecordError, as_integer


class TrainRequest(BaseModel):
    """The seed API's training request: an algorithm and a table inside the configured data roots."""

    model_config = ConfigDict(extra="forbid")
    algorithm: str = Field(min_length=1)
    data_path: str = Field(min_length=1)
    format: Literal["delta", "parquet", "csv"] | None = None


class ProblemDetail(BaseModel):
    field: str = Field(description="the request field at fault, e.g. instances[3].amount, or body")
    reason: str


class Problem(BaseModel):
    """Every error answer: which field, and why (and which variant, when one was chosen)."""

    detail: ProblemDetail
    variant: str | None = None


class Prediction(BaseModel):
    prediction: float | None = Field(description="label index, value or cluster; null where Spark gives NaN")
    probability: list[float] | None = Field(default=None, description="per class, classifiers only")


class PredictResponse(BaseModel):
    request_id: str
    variant: str
    model: str
    version: str
    scorer: str = Field(description="onnx or spark")
    predictions: list[Prediction]


class Health(BaseModel):
    """/health's answer, 200 (``ready``) or 503 (``loading``)."""

    status: Literal["ready", "loading"]
    missing: list[str] = Field(description="variants whose alias or version is not in the registry (yet)")
    variants: dict[str, dict[str, Any]] = Field(description="each variant's status, as /models shows it")


class RecommendedItem(BaseModel):
    item: int
    score: float


class UserRecommendations(BaseModel):
    user: int
    known: bool = Field(description="false for a user ALS never saw (no items)")
    items: list[RecommendedItem]


class RecommendResponse(BaseModel):
    request_id: str
    variant: str
    model: str
    version: str
    scorer: str
    recommendations: list[UserRecommendations]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can answer."""
    meaning = {
        400: "not JSON",
        401: "no valid bearer token",
        403: "path outside the data roots",
        404: "unknown model_id or job",
        409: "no variant with a loaded model would get traffic",
        413: "too many rows or bytes",
        422: "a field is invalid",
        500: "a variant failed",
        503: "no model loaded, Ray Jobs unavailable, or the prediction log off",
    }
    return {status: {"model": Problem, "description": meaning[status]} for status in statuses}


class Refused(Exception):
    """A request answered with an error status; ``body`` is the JSON error body."""

    def __init__(self, status: int, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.status = status
        self.body = problem(field_name, reason)


def problem(field_name: str, reason: str) -> dict[str, Any]:
    """The one error body of every route: which field, and why."""
    return {"detail": {"field": field_name, "reason": reason}}


def parse_json(body: bytes) -> Any:
    """The request body; orjson first (fast), then the standard parser, which also reads NaN and Infinity
    so that a non-finite number is refused by name (field and reason) rather than as unreadable JSON.
    Raises Refused(400) for a body that is not JSON at all."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        parsed = json.loads(body)
    except UnicodeDecodeError as error:  # one error for every unreadable body: a 400, not a 500
        raise Refused(400, "body", f"not valid JSON: not UTF-8 ({error.reason} at byte {error.start})") from error
    except ValueError as error:  # JSONDecodeError, or an integer of more digits than Python converts
        raise Refused(400, "body", f"not valid JSON: {error}") from error
    try:  # what orjson refused but json read: NaN and Infinity (named later), or a lone surrogate (here)
        orjson.dumps(parsed)
    except orjson.JSONEncodeError as error:
        raise Refused(400, "body", f"not valid JSON text: {error}") from error
    return parsed


@dataclass(frozen=True)
class Envelope:
    """A request body whose shape has been checked (the values are the scorer's to check)."""

    payload: dict[str, Any]
    rows: int
    model_id: str | None
    sticky: str | None  # the sticky key's value, when the request carries one


# The top-level fields of each route's body (besides the sticky key); any other is refused by name.
PREDICT_FIELDS = ("instances", "features", "model_id")
RECOMMEND_FIELDS = ("users", "user", "k", "model_id")
MAX_K = 1000
USER_ID: dict[str, Any] = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}


def _checked_object(raw: Any, fields: tuple[str, ...], sticky_key: str | None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Refused(422, "body", f"expected a JSON object, got {type(raw).__name__}")
    for key in raw:
        if key not in fields and key != sticky_key:
            known = [*fields, *([sticky_key] if sticky_key else [])]
            raise Refused(422, key, f"unknown field; a request takes {known}")
    return raw


def _model_id(raw: dict[str, Any]) -> str | None:
    model_id = raw.get("model_id")
    if model_id is not None and (not isinstance(model_id, str) or not model_id):
        raise Refused(422, "model_id", f"expected a variant, alias or version name, got {json.dumps(model_id)}")
    return model_id


def _non_empty_list(raw: dict[str, Any], name: str) -> list[Any]:
    value = raw[name]
    if not isinstance(value, list) or not value:
        raise Refused(422, name, f"expected a non-empty list, got {json.dumps(value)[:80]}")
    return value


def _either(raw: dict[str, Any], many: str, one: str, max_rows: int) -> list[Any] | None:
    """``raw[many]`` (checked: a non-empty list of at most max_rows), or None when ``raw[one]`` is given."""
    if (many in raw) == (one in raw):
        raise Refused(422, "body", f"give either '{many}' (a list) or '{one}' (a single one)")
    if many not in raw:
        return None
    values = _non_empty_list(raw, many)
    if len(values) > max_rows:
        raise Refused(413, many, f"{len(values)} rows; at most {max_rows} per request")
    return values


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def predict_envelope(raw: Any, max_rows: int, sticky_key: str | None) -> Envelope:
    """The shape ``predict_forms`` documents, checked without building an object per record (the records'
    values are the scorer's to check, against the field schemas it documents)."""
    raw = _checked_object(raw, PREDICT_FIELDS, sticky_key)
    model_id = _model_id(raw)
    instances = _either(raw, "instances", "features", max_rows)
    if instances is None:
        _non_empty_list(raw, "features")
        return Envelope(raw, 1, model_id, _text(raw.get(sticky_key)) if sticky_key else None)
    for index, record in enumerate(instances):
        if not isinstance(record, dict):
            reason = f"expected an object (a record), got {json.dumps(record)[:80]}"
            raise Refused(422, f"instances[{index}]", reason)
    sticky = None
    if sticky_key is not None:
        sticky = _text(raw.get(sticky_key, instances[0].get(sticky_key)))
    return Envelope(raw, len(instances), model_id, sticky)


def recommend_envelope(raw: Any, max_rows: int, sticky_key: str | None) -> Envelope:
    """The shape ``recommend_forms`` documents; the user ids themselves are checked by the recommender."""
    raw = _checked_object(raw, RECOMMEND_FIELDS, sticky_key)
    model_id = _model_id(raw)
    users = _either(raw, "users", "user", max_rows)
    k = as_integer(raw.get("k", 10))  # 5.0 is the integer 5 in JSON (and in the documented schema)
    if k is None or not 1 <= k <= MAX_K:
        raise Refused(422, "k", f"expected an integer from 1 to {MAX_K}, got {json.dumps(raw['k'])[:80]}")
    if "k" in raw:
        raw["k"] = k  # the recommender gets the integer
    sticky = None
    if sticky_key is not None:  # one user's requests stick to a variant by the user id itself
        sticky = _text(raw.get(sticky_key, raw.get("user") if users is None else None))
    return Envelope(raw, 1 if users is None else len(users), model_id, sticky)


def _form(
    fields: dict[str, Any], required: list[str], model_id: list[str] | None, sticky_key: str | None
) -> dict[str, Any]:
    """One accepted body: its fields, and ``model_id`` naming one of the given targets (None: routed, so
    absent or null)."""
    properties = {**fields, "model_id": {"type": "null"} if model_id is None else {"enum": model_id}}
    if sticky_key is not None and sticky_key not in properties:
        properties[sticky_key] = {"description": "the sticky key: requests with the same value reach one variant"}
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": required if model_id is None else [*required, "model_id"],
    }


IGNORED_FIELD = {"description": "a column of the table the model was trained on that it does not use: ignored"}


def predict_forms(
    fields: list[tuple[str, dict[str, Any]]],
    model_id: list[str] | None,
    max_rows: int,
    sticky_key: str | None,
    ignored: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The two bodies ``predict_envelope`` takes for a model with these input fields (name, JSON Schema):
    records by name (``instances``, which may also carry the ``ignored`` columns of the training table),
    or one record's values in input order (``features``)."""
    properties = {**dict.fromkeys(ignored, IGNORED_FIELD), **dict(fields)}
    if sticky_key is not None and sticky_key not in properties:
        properties[sticky_key] = {}  # read as the sticky key from the first record, else ignored
    record = {
        "type": "object",
        "properties": properties,
        "required": [name for name, _ in fields],
        "additionalProperties": False,
    }
    instances = {"type": "array", "items": record, "minItems": 1, "maxItems": max_rows}
    features = {
        "type": "array",
        "prefixItems": [schema for _, schema in fields],
        "minItems": len(fields),
        "maxItems": len(fields),
    }
    return [
        _form({"instances": instances}, ["instances"], model_id, sticky_key),
        _form({"features": features}, ["features"], model_id, sticky_key),
    ]


def recommend_forms(model_id: list[str] | None, max_rows: int, sticky_key: str | None) -> list[dict[str, Any]]:
    """The two bodies ``recommend_envelope`` takes: one ``user``, or a list of ``users``; ``k`` items each."""
    k = {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10}
    users = {"type": "array", "items": USER_ID, "minItems": 1, "maxItems": max_rows}
    return [
        _form({"user": USER_ID, "k": k}, ["user"], model_id, sticky_key),
        _form({"users": users, "k": k}, ["users"], model_id, sticky_key),
    ]


def weights_body(raw: Any) -> dict[str, Any]:
    """The ``weights`` object of a ``POST /admin/weights`` body (its values are ``check_weights``'s to check)."""
    raw = _checked_object(raw, ("weights",), None)
    if not isinstance(raw.get("weights"), dict):
        got = json.dumps(raw.get("weights"))[:80]
        raise Refused(422, "weights", f"expected an object of variant weights, got {got}")
    return raw["weights"]


class TrainAccepted(BaseModel):
    """A submitted training job; follow ``status_url`` (the ``status`` link) until it ends."""

    id: str
    status: str
    status_url: str


def record_field_path(error: RecordError, positional: bool) -> str:
    """Where a bad value sits in the request body, as the client wrote it."""
    if positional:
        return "features" if error.field == "features" else f"features[{error.field}]"
    return f"instances[{error.record}].{error.field}" if error.record is not None else error.field
