"""Request records become checked ONNX feeds; every bad value is named with its record and field."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring import (
    InputField,
    RecordError,
    ScorerSpec,
    format_outputs,
    positional_record,
    records_to_feeds,
)
from scoring._scorer import _column

INPUTS = (
    InputField("amount", "number"),
    InputField("merchant", "string"),
    InputField("is_new", "boolean"),
    InputField("embedding", "vector", 2),
)
GOOD = {"amount": 12.5, "merchant": "fuel", "is_new": True, "embedding": [0.1, 0.2]}


def test_good_records_become_one_array_per_input() -> None:
    feeds = records_to_feeds(INPUTS, [GOOD, {**GOOD, "amount": None, "merchant": None}])
    assert feeds["amount"].shape == (2, 1) and math.isnan(feeds["amount"][1, 0])
    assert feeds["merchant"][0, 0] == "fuel" and feeds["merchant"][1, 0] != "fuel"
    assert feeds["is_new"][0, 0] == 1.0
    np.testing.assert_array_equal(feeds["embedding"], [[0.1, 0.2], [0.1, 0.2]])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": "12"}, "instances[1].amount: expected a number, got str '12'"),
        ({"amount": float("nan")}, "instances[1].amount: expected a finite number, got nan"),
        ({"amount": float("inf")}, "instances[1].amount: expected a finite number, got inf"),
        ({"amount": True}, "instances[1].amount: expected a number, got bool True"),
        ({"amount": 10**400}, "instances[1].amount: expected a finite number, got an integer of 1329 bits"),
        ({"merchant": 3}, "instances[1].merchant: expected a string, got int 3"),
        ({"is_new": 1}, "instances[1].is_new: expected true or false, got 1"),
        ({"embedding": [1.0]}, "instances[1].embedding: expected a list of 2 numbers"),
        ({"colour": "red"}, "instances[1].colour: unknown field"),
    ],
)
def test_bad_values_are_named(change: dict, message: str) -> None:
    with pytest.raises(RecordError, match=message.replace("[", r"\[").replace("]", r"\]")):
        records_to_feeds(INPUTS, [GOOD, {**GOOD, **change}])


def test_the_training_tables_other_columns_are_accepted_and_ignored_and_a_misspelling_is_not() -> None:
    ignored = ("label", "transaction_id")
    row = {**GOOD, "label": 1, "transaction_id": "t-1"}  # a row of the table the model was trained on
    with_columns = records_to_feeds(INPUTS, [row], ignored)
    without = records_to_feeds(INPUTS, [GOOD], ignored)
    assert with_columns.keys() == without.keys() == {field.name for field in INPUTS}
    for name in without:
        np.testing.assert_array_equal(with_columns[name], without[name])
    with pytest.raises(RecordError) as refused:
        records_to_feeds(INPUTS, [{**GOOD, "lable": 1}], ignored)
    assert refused.value.field == "lable" and refused.value.record == 0
    assert "unknown field" in refused.value.reason and "['label', 'transaction_id']" in refused.value.reason
    with pytest.raises(RecordError, match="unknown field"):
        records_to_feeds(INPUTS, [row])  # a model that ignores nothing takes its inputs only


def test_a_scorer_spec_keeps_its_ignored_columns_and_reads_one_logged_without_them() -> None:
    spec = ScorerSpec(task="classification", inputs=INPUTS, classes=2, ignored=("label",))
    assert ScorerSpec.from_json(spec.to_json()) == spec
    older = '{"task": "regression", "classes": null, "inputs": [{"name": "amount", "kind": "number"}]}'
    assert ScorerSpec.from_json(older).ignored == ()


def test_bulk_columns_equal_the_value_by_value_path() -> None:
    values = [(1, "a", False), (None, None, None), (2**40, "b", True), (-0.5, "", False)]
    records = [{**GOOD, "amount": amount, "merchant": merchant, "is_new": new} for amount, merchant, new in values]
    feeds = records_to_feeds(INPUTS, records)
    for field in INPUTS:
        np.testing.assert_array_equal(feeds[field.name], _column(field, records))
        assert feeds[field.name].dtype == _column(field, records).dtype


def test_a_bad_value_deep_in_a_large_batch_is_named_by_its_index() -> None:
    records = [dict(GOOD) for _ in range(5000)]
    records[4321] = {**GOOD, "amount": float("inf")}
    with pytest.raises(RecordError, match=r"instances\[4321\]\.amount: expected a finite number"):
        records_to_feeds(INPUTS, records)
    records[4321] = {key: value for key, value in GOOD.items() if key != "is_new"}
    with pytest.raises(RecordError, match=r"instances\[4321\]\.is_new: missing"):
        records_to_feeds(INPUTS, records)


def test_outputs_are_plain_json_values_with_nan_as_null() -> None:
    outputs = {"prediction": np.array([1.0, np.nan]), "probability": np.array([[0.25, 0.75], [0.5, 0.5]])}
    assert format_outputs(outputs, 2) == [
        {"prediction": 1.0, "probability": [0.25, 0.75]},
        {"prediction": None, "probability": [0.5, 0.5]},
    ]
    assert format_outputs({"prediction": np.array([3.0])}, 1) == [{"prediction": 3.0}]


def test_a_missing_field_is_named_with_its_type() -> None:
    record = {key: value for key, value in GOOD.items() if key != "merchant"}
    with pytest.raises(RecordError, match=r"instances\[0\]\.merchant: missing \(expected string\)"):
        records_to_feeds(INPUTS, [record])


def test_positional_features_follow_the_input_order() -> None:
    assert positional_record(INPUTS, [1.0, "fuel", False, [0, 0]])["merchant"] == "fuel"
    with pytest.raises(RecordError, match="expected 4 values in the order"):
        positional_record(INPUTS, [1.0])


def test_the_spec_round_trips_through_json() -> None:
    spec = ScorerSpec(task="classification", inputs=INPUTS, classes=2)
    assert ScorerSpec.from_json(spec.to_json()) == spec
