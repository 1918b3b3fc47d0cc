"""The registry's facts: the `models:/` URI of a version or an alias, built in one place."""

from __future__ import annotations

import pytest

from pipeline.tracking import model_uri


@pytest.mark.parametrize(
    ("reference", "uri"),
    [("3", "models:/m/3"), (3, "models:/m/3"), ("champion", "models:/m@champion"),
     ("@challenger", "models:/m@challenger")],
)  # fmt: skip
def test_a_version_number_or_an_alias_makes_its_models_uri(reference: str | int, uri: str) -> None:
    assert model_uri("m", reference) == uri
