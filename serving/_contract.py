"""The app's OpenAPI document as the truth of the moment: request bodies built from the served versions.

What a request may carry depends on what is loaded (each version's inputs and their types), on which
``model_id`` values reach which variant, and on the weights in force (a routed request must suit every
variant that may take it). FastAPI documents routes and answers; this module fills in the request bodies
from the same schemas that the checks use (``serving._requests``, ``serving.routing`` and each scorer's
field schemas). Pure: no Serve import, tested on its own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from serving._requests import predict_forms, recommend_forms
from serving.routing import weights_schema

BEARER = "bearer"
ADMIN_PATHS = ("/admin/weights", "/admin/reload", "/train", "/train/{job_id}")


@dataclass(frozen=True)
class VariantInputs:
    """What a loaded variant takes: its input fields (name, JSON Schema) in order, whether it recommends,
    and the training table's other columns, which a record may carry and the variant ignores."""

    fields: tuple[tuple[str, dict[str, Any]], ...]
    recommends: bool
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServedVariant:
    """A loaded variant, the ``model_id`` values that reach it, and whether routed traffic may reach it."""

    name: str
    model_ids: tuple[str, ...]
    inputs: VariantInputs
    routed: bool


def _merged_fields(variants: Sequence[ServedVariant]) -> list[tuple[str, dict[str, Any]]] | None:
    """Fields that suit every one of the variants (each value must pass each variant's schema), or None
    when they take different inputs: then no routed request suits them all."""
    names = [name for name, _ in variants[0].inputs.fields]
    if any([name for name, _ in variant.inputs.fields] != names for variant in variants):
        return None
    merged = []
    for index, name in enumerate(names):
        schemas = []
        for variant in variants:
            schema = variant.inputs.fields[index][1]
            if schema not in schemas:
                schemas.append(schema)
        merged.append((name, schemas[0] if len(schemas) == 1 else {"allOf": schemas}))
    return merged


def predict_body(variants: Sequence[ServedVariant], max_rows: int, sticky_key: str | None) -> list[dict[str, Any]]:
    """Every body /predict answers with 200: per variant by ``model_id``, and routed when the routed
    variants take the same inputs."""
    forms = []
    for variant in variants:
        forms += predict_forms(
            list(variant.inputs.fields), list(variant.model_ids), max_rows, sticky_key, variant.inputs.ignored
        )
    routed = [variant for variant in variants if variant.routed]
    merged = _merged_fields(routed) if routed else None
    if merged is not None:
        # A routed record may reach any routed variant: it may carry only what each of them ignores.
        ignored = [name for name in routed[0].inputs.ignored if all(name in v.inputs.ignored for v in routed)]
        forms += predict_forms(merged, None, max_rows, sticky_key, tuple(ignored))
    return forms


def recommend_body(
    variants: Sequence[ServedVariant], max_rows: int, sticky_key: str | None
) -> list[dict[str, Any]]:
    """Every body /recommend answers with 200: by ``model_id`` of an ALS variant, and routed when every
    routed variant is one."""
    forms = []
    for variant in variants:
        if variant.inputs.recommends:
            forms += recommend_forms(list(variant.model_ids), max_rows, sticky_key)
    routed = [variant for variant in variants if variant.routed]
    if routed and all(variant.inputs.recommends for variant in routed):
        forms += recommend_forms(None, max_rows, sticky_key)
    return forms


def _set_body(operation: dict[str, Any], forms: list[dict[str, Any]]) -> None:
    schema = forms[0] if len(forms) == 1 else {"anyOf": forms}
    operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}


def contract_document(
    base: Mapping[str, Any],
    variants: Sequence[ServedVariant],
    variant_names: Sequence[str],
    max_rows: int,
    sticky_key: str | None,
) -> dict[str, Any]:
    """``base`` (FastAPI's document of the routes and answers) with the request bodies of this moment, the
    bearer scheme on the routes that change state, and the link from a submitted job to its status."""
    document = copy.deepcopy(dict(base))
    paths = document["paths"]
    unserved = []
    for path, forms in (
        ("/predict", predict_body(variants, max_rows, sticky_key)),
        ("/recommend", recommend_body(variants, max_rows, sticky_key)),
    ):
        if path not in paths:
            continue
        if forms:
            _set_body(paths[path]["post"], forms)
        else:  # no body gets a 200 now: the route is left out rather than documented as unusable
            unserved.append(path)
            del paths[path]
    if unserved:
        document["info"]["description"] += (
            f" Not listed now: {', '.join(unserved)} (no loaded version answers it; reload once one does)."
        )
    if "/admin/weights" in paths:
        weights = {
            "type": "object",
            "properties": {"weights": weights_schema(list(variant_names))},
            "required": ["weights"],
            "additionalProperties": False,
        }
        _set_body(paths["/admin/weights"]["post"], [weights])
    for path in ADMIN_PATHS:
        for operation in paths.get(path, {}).values():
            operation["security"] = [{BEARER: []}]
    if any(path in paths for path in ADMIN_PATHS):
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[BEARER] = {"type": "http", "scheme": "bearer", "description": "serving.token_env's secret"}
    status = paths.get("/train/{job_id}", {}).get("get")
    if status is not None and "/train" in paths:
        accepted = paths["/train"]["post"]["responses"]["202"]
        accepted["links"] = {
            "status": {"operationId": status["operationId"], "parameters": {"job_id": "$response.body#/id"}}
        }
    return document
