"""The OpenAPI request bodies against the checks that enforce them, without Serve: a body the document
allows is taken by the checks, and a body it forbids is refused (the live app is held to the same by
schemathesis in test_serve_app.py)."""

from __future__ import annotations

import math
from typing import Any

import jsonschema
import pytest

from scoring import InputField, RecordError, records_to_feeds
from serving._contract import ServedVariant, VariantInputs, contract_document
from serving._requests import Refused, predict_envelope, recommend_envelope
from serving.routing import WeightsError, check_weights

FIELDS = (
    InputField("amount", "number"),
    InputField("device", "string"),
    InputField("new", "boolean"),
    InputField("embedding", "vector", 2),
)
# The champion was trained on a table with a label and an id column, which it does not use.
IGNORED = ("label", "transaction_id")
INPUTS = VariantInputs(tuple((f.name, f.json_schema()) for f in FIELDS), recommends=False, ignored=IGNORED)
ALS = VariantInputs((("user_id", InputField("user_id", "number").json_schema()),), recommends=True)
BASE = {
    "openapi": "3.1.0",
    "info": {"title": "t", "description": "d", "version": "1"},
    "paths": {
        "/predict": {"post": {"responses": {}}},
        "/recommend": {"post": {"responses": {}}},
        "/admin/weights": {"post": {"responses": {}}},
        "/train": {"post": {"responses": {"202": {"description": "accepted"}}}},
        "/train/{job_id}": {"get": {"operationId": "training", "responses": {}}},
    },
}


def _document(variants: list[ServedVariant]) -> dict[str, Any]:
    return contract_document(BASE, variants, ["champion", "challenger", "recs"], max_rows=3, sticky_key="user")


def _body(document: dict[str, Any], path: str) -> dict[str, Any]:
    content = document["paths"][path]["post"]["requestBody"]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def _documented(schema: dict[str, Any], body: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(body)


def _accepted_by_predict(body: Any) -> bool:
    """What the app does with a /predict body for the champion: the envelope check, then the scorer's."""
    try:
        envelope = predict_envelope(body, 3, "user")
        records = body.get("instances") or [dict(zip([f.name for f in FIELDS], body["features"], strict=False))]
        if "features" in body and len(body["features"]) != len(FIELDS):
            return False
        records = [{key: value for key, value in record.items() if key != "user"} for record in records]
        records_to_feeds(FIELDS, records, IGNORED)
        return envelope.model_id in (None, "champion", "@champion", "1")
    except (Refused, RecordError):
        return False


RECORD = {"amount": 1.5, "device": "tablet", "new": True, "embedding": [0.1, None]}
PREDICT_CASES = [
    {"instances": [RECORD]},
    {"instances": [RECORD], "model_id": "@champion"},
    {"instances": [RECORD], "model_id": None, "user": "u1"},
    {"instances": [{**RECORD, "user": 3}]},  # the sticky key inside a record
    {"instances": [{**RECORD, "amount": None, "device": None, "new": None}]},  # nulls: imputed
    {"features": [1.0, "tablet", False, [1, 2]]},
    {"features": [1.0, "tablet", False]},  # one value short
    {"instances": [{**RECORD, "amount": "1.5"}]},
    {"instances": [{**RECORD, "new": 1}]},
    {"instances": [{**RECORD, "embedding": [1.0]}]},
    {"instances": [{**RECORD, "other": 1}]},  # a field the model does not take
    {"instances": [{**RECORD, "label": 1, "transaction_id": "t-1"}]},  # a row of the training table
    {"instances": [{**RECORD, "label": None, "transaction_id": [1, {"a": 2}]}]},  # ignored, whatever it holds
    {"instances": [{**RECORD, "lable": 1}]},  # a misspelled column
    {"instances": [{k: v for k, v in RECORD.items() if k != "device"}]},
    {"instances": [{**RECORD, "amount": 10**400}]},  # beyond a double
    {"instances": [RECORD] * 4},  # over max_rows
    {"instances": [RECORD], "extra": 1},
    {"instances": [RECORD], "features": None},
    {"instances": [RECORD], "model_id": "nope"},
    {"instances": []},
]


@pytest.mark.parametrize("body", PREDICT_CASES)
def test_a_predict_body_is_documented_exactly_when_it_is_accepted(body: dict[str, Any]) -> None:
    champion = ServedVariant("champion", ("1", "@champion", "champion"), INPUTS, routed=True)
    schema = _body(_document([champion]), "/predict")
    assert _documented(schema, body) == _accepted_by_predict(body)


def test_routed_bodies_are_documented_only_when_every_routed_variant_takes_them() -> None:
    champion = ServedVariant("champion", ("champion",), INPUTS, routed=True)
    routed_als = ServedVariant("recs", ("recs",), ALS, routed=True)
    schema = _body(_document([champion, routed_als]), "/predict")
    assert not _documented(schema, {"instances": [RECORD]})  # a routed request might reach ALS
    assert _documented(schema, {"instances": [RECORD], "model_id": "champion"})
    assert _documented(schema, {"instances": [{"user_id": 4}], "model_id": "recs"})
    idle_als = ServedVariant("recs", ("recs",), ALS, routed=False)
    assert _documented(_body(_document([champion, idle_als]), "/predict"), {"instances": [RECORD]})


def test_a_routed_record_may_carry_only_the_columns_every_routed_variant_ignores() -> None:
    champion = ServedVariant("champion", ("champion",), INPUTS, routed=True)
    older = VariantInputs(INPUTS.fields, recommends=False, ignored=("label",))  # trained on a table without the id
    challenger = ServedVariant("challenger", ("challenger",), older, routed=True)
    schema = _body(_document([champion, challenger]), "/predict")
    assert _documented(schema, {"instances": [{**RECORD, "label": 0}]})
    with_id = {**RECORD, "transaction_id": "t-1"}
    assert not _documented(schema, {"instances": [with_id]})  # the challenger would refuse it
    assert _documented(schema, {"instances": [with_id], "model_id": "champion"})
    assert not _documented(schema, {"instances": [with_id], "model_id": "challenger"})
    assert not _documented(schema, {"features": [1.0, "tablet", False, [1, 2], 0]})  # positional: inputs only


def test_recommend_is_documented_for_als_variants_and_left_out_when_none_serves() -> None:
    champion = ServedVariant("champion", ("champion",), INPUTS, routed=True)
    recs = ServedVariant("recs", ("recs",), ALS, routed=False)
    schema = _body(_document([champion, recs]), "/recommend")
    bodies: list[dict[str, Any]] = [
        {"user": 1, "model_id": "recs"},
        {"users": [1, 2], "k": 5, "model_id": "recs"},
        {"user": 1},
        {"user": 1, "model_id": "champion"},
        {"user": 1, "k": 0, "model_id": "recs"},
        {"user": True, "model_id": "recs"},
        {"users": [1] * 4, "model_id": "recs"},
        {"user": 1, "k": 5.0, "model_id": "recs"},
        {"user": 1, "k": 5.5, "model_id": "recs"},
    ]
    for body in bodies:
        try:
            envelope = recommend_envelope(body, 3, "user")
            accepted = envelope.model_id == "recs" and not isinstance(body.get("user"), bool)
        except Refused:
            accepted = False
        assert _documented(schema, body) == accepted, body
    without = _document([champion])
    assert "/recommend" not in without["paths"] and "/recommend" in without["info"]["description"]


WEIGHTS_CASES = [
    {"champion": 1},
    {"champion": 0.5, "challenger": 0.5},
    {"champion": 0},
    {"champion": -1},
    {"other": 1},
    {"champion": True},
    {"champion": "1"},
    {"champion": math.inf},
    {},
    {"champion": 0, "challenger": 5e-324},
    {"champion": 1, "challenger": 1e-7},
    {"champion": 1e-6},
    {"champion": 0.0, "challenger": 2},
]


@pytest.mark.parametrize("weights", WEIGHTS_CASES)
def test_weights_are_documented_exactly_when_check_weights_takes_them(weights: dict[str, Any]) -> None:
    schema = _body(_document([]), "/admin/weights")
    try:
        check_weights(weights, {"champion", "challenger", "recs"})
        accepted = True
    except WeightsError:
        accepted = False
    assert _documented(schema, {"weights": weights}) == accepted


def test_state_changing_routes_need_the_bearer_token_and_a_job_links_to_its_status() -> None:
    document = _document([])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/train/{job_id}"]["get"]["security"] == [{"bearer": []}]
    link = document["paths"]["/train"]["post"]["responses"]["202"]["links"]["status"]
    assert link == {"operationId": "training", "parameters": {"job_id": "$response.body#/id"}}
    assert "/predict" not in document["paths"]  # nothing loaded: no body gets a 200
    assert "requestBody" not in BASE["paths"]["/admin/weights"]["post"]  # the base is not changed
