"""Request bodies checked without Serve: one parse, the envelope's shape rules, the named errors."""

from __future__ import annotations

from typing import Any

import pytest

from scoring import RecordError
from serving._requests import (
    Refused,
    parse_json,
    predict_envelope,
    recommend_envelope,
    record_field_path,
    weights_body,
)


def _refused(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(Refused) as caught:
        call(*args)
    return caught.value.status, caught.value.body["detail"]["field"]


def test_unreadable_bodies_are_a_400_naming_the_body() -> None:
    assert _refused(parse_json, b"{not json") == (400, "body")
    assert _refused(parse_json, b'{"a": "\xff"}') == (400, "body")
    assert parse_json(b'{"x": NaN}')["x"] != parse_json(b'{"x": NaN}')["x"]  # NaN read, refused later by name


def test_predict_envelope_keeps_the_parsed_body_and_finds_the_sticky_key() -> None:
    body = {"instances": [{"a": 1, "user_id": "u1"}, {"a": 2}], "model_id": "champion"}
    envelope = predict_envelope(body, 10, "user_id")
    assert (envelope.rows, envelope.model_id, envelope.sticky) == (2, "champion", "u1")
    assert envelope.payload is body  # one parse: the scorer reads this very object
    top_level = predict_envelope({"features": [1.0, 2.0], "user_id": 7}, 10, "user_id")
    assert (top_level.rows, top_level.sticky) == (1, "7")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([1, 2], (422, "body")),
        ({"instances": []}, (422, "instances")),
        ({"instances": None}, (422, "instances")),
        ({"instances": [{"a": 1}], "features": [1]}, (422, "body")),
        ({"instances": [{"a": 1}], "features": None}, (422, "body")),  # both given, one of them null
        ({"nothing": 1}, (422, "nothing")),  # an unknown top-level field is named, not ignored
        ({"instances": [{"a": 1}], "user_id": 1}, (422, "user_id")),  # no sticky key configured here
        ({}, (422, "body")),
        ({"instances": [{"a": 1}, 3]}, (422, "instances[1]")),
        ({"instances": [{"a": 1}] * 11}, (413, "instances")),
        ({"features": "abc"}, (422, "features")),
        ({"instances": [{"a": 1}], "model_id": 5}, (422, "model_id")),
    ],
)
def test_predict_envelope_refuses_each_bad_shape_by_name(body: Any, expected: tuple[int, str]) -> None:
    assert _refused(predict_envelope, body, 10, None) == expected


def test_recommend_envelope_checks_k_and_the_user_forms() -> None:
    assert recommend_envelope({"user": 5, "k": 3}, 10, "user").sticky == "5"
    assert recommend_envelope({"users": [1, 2]}, 10, None).rows == 2
    assert _refused(recommend_envelope, {"user": 1, "k": 0}, 10, None) == (422, "k")
    assert _refused(recommend_envelope, {"user": 1, "k": True}, 10, None) == (422, "k")
    assert _refused(recommend_envelope, {"user": 1, "k": 2.5}, 10, None) == (422, "k")
    whole = {"user": 1, "k": 3.0}
    recommend_envelope(whole, 10, None)
    assert whole["k"] == 3 and isinstance(whole["k"], int)  # the recommender gets the integer
    assert _refused(recommend_envelope, {"k": 3}, 10, None) == (422, "body")


def test_the_weights_body_is_an_object_of_weights_and_nothing_else() -> None:
    assert weights_body({"weights": {"a": 1}}) == {"a": 1}
    assert _refused(weights_body, {"weights": [1]}) == (422, "weights")
    assert _refused(weights_body, {"weights": {"a": 1}, "b": 2}) == (422, "b")
    assert _refused(weights_body, "weights") == (422, "body")


def test_record_errors_point_into_the_body_as_written() -> None:
    assert record_field_path(RecordError("amount", "bad", 3), positional=False) == "instances[3].amount"
    assert record_field_path(RecordError("amount", "bad"), positional=True) == "features[amount]"
    assert record_field_path(RecordError("features", "count"), positional=True) == "features"


def test_a_lone_surrogate_is_refused_as_unreadable_not_scored() -> None:
    assert _refused(parse_json, b'{"instances": [{"s": "\\ud800"}]}') == (400, "body")


def test_an_integer_too_long_to_read_is_a_400() -> None:
    assert _refused(parse_json, b'{"instances": [{"a": ' + b"9" * 5000 + b"}]}") == (400, "body")
