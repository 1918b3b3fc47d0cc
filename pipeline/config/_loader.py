"""Load a YAML config, apply environment overrides, validate, and explain failures in one line each."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.config._models import ROOT_CONTEXT_KEY, PipelineConfig

ENV_PREFIX = "PIPELINE__"
"""``PIPELINE__SPARK__NUM_EXECUTORS=2`` overrides ``spark.num_executors``; values are parsed as YAML."""


class ConfigError(ValueError):
    """A config that cannot be used. ``str(error)`` is one line per problem, naming file, field and rule."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


Problem = tuple[str, Any, str]
"""``(dotted field, bad value, rule)``"""
ConfigCheck = Callable[[PipelineConfig], list[Problem]]
"""A check beyond the schema (e.g. against the algorithm registry), run after validation."""


def load_config(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    checks: Sequence[ConfigCheck] = (),
    overrides: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Read, override from the environment and validate the config at ``path``, then run ``checks``.

    ``root`` in the file (default ``.``) is taken relative to the file's folder, and every other
    relative path in the config relative to that root. ``overrides`` (nested mappings, or dotted keys
    such as ``"spark.num_executors"``) are applied last, over the file and the environment.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError([f"{file}: config file not found"])
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError([f"{file}: invalid YAML at {where}: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{file}: the top level must be a mapping of sections, got {type(raw).__name__}"])
    return config_from_dict(
        raw, base_dir=file.resolve().parent, origin=str(file), environ=environ, checks=checks, overrides=overrides
    )


def config_from_dict(
    raw: Mapping[str, Any],
    base_dir: Path,
    origin: str = "<config>",
    environ: Mapping[str, str] | None = None,
    checks: Sequence[ConfigCheck] = (),
    overrides: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Validate an already parsed config; relative paths resolve against ``base_dir / root``."""
    merged, from_env = _apply_env_overrides(copy.deepcopy(dict(raw)), os.environ if environ is None else environ)
    for dotted in _apply_overrides(merged, overrides or {}, origin):
        from_env[dotted] = "overrides"
    root_value = merged.get("root", ".")
    if not isinstance(root_value, str | os.PathLike):
        raise ConfigError([f"{origin}: root = {root_value!r}: must be a path"])
    root = (base_dir / Path(root_value)).resolve()
    merged["root"] = str(root)
    try:
        config = PipelineConfig.model_validate(merged, context={ROOT_CONTEXT_KEY: root})
    except ValidationError as error:
        raise ConfigError(_explain(error, origin, from_env)) from None
    problems = [problem for check in checks for problem in check(config)]
    if problems:
        raise ConfigError(
            [
                f"{origin}: {field} = {_short(value)}{_env_note(field, from_env)}: {rule}"
                for field, value, rule in problems
            ]
        )
    return config


def _apply_overrides(
    raw: dict[str, Any], overrides: Mapping[str, Any], origin: str, prefix: str = ""
) -> list[str]:
    """Set ``overrides`` in ``raw``; return the dotted fields set.

    A mapping under a plain key merges into the section key by key (``{"spark": {"num_executors": 2}}``
    keeps the other Spark settings); a dotted key replaces what it names whole
    (``{"tuning.algorithms": {...}}`` drops the file's algorithms).
    """
    if not isinstance(overrides, Mapping):
        raise ConfigError([f"{origin}: overrides = {_short(overrides)}: must be a mapping of fields to values"])
    touched: list[str] = []
    for key, value in overrides.items():
        if not isinstance(key, str) or not all(key.split(".")):
            raise ConfigError(
                [f"{origin}: overrides key {key!r}: must be a field name such as 'spark.num_executors'"]
            )
        *path, last = key.split(".")
        node = raw
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        dotted = f"{prefix}{key}"
        if not path and isinstance(value, Mapping) and isinstance(node.get(last), dict):
            touched += _apply_overrides(node[last], value, origin, f"{dotted}.")
        else:
            node[last] = copy.deepcopy(value)
            touched.append(dotted)
    return touched


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the config with ``PIPELINE__A__B=value`` set at ``a.b``, and which env var set which path."""
    from_env: dict[str, str] = {}
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        node = raw
        keys: list[str] = []
        parts = name[len(ENV_PREFIX) :].split("__")
        for index, part in enumerate(parts):
            # Env names are upper case: match an existing key whatever its case (numTrees), else lower.
            key = next((k for k in node if isinstance(k, str) and k.lower() == part.lower()), part.lower())
            keys.append(key)
            if index == len(parts) - 1:
                node[key] = yaml.safe_load(text) if text.strip() else None
                break
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        from_env[".".join(keys)] = name
    return raw, from_env


def _explain(error: ValidationError, origin: str, from_env: Mapping[str, str]) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        loc = [part for part in item["loc"] if not isinstance(part, str) or not part.startswith("function-")]
        dotted = ".".join(str(part) for part in loc) or "<top level>"
        rule = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(PipelineConfig, loc[:-1])
            rule = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        elif item["type"] == "missing":
            rule = "required field is missing"
        value = "" if item["type"] == "missing" else f" = {_short(item.get('input'))}"
        lines.append(f"{origin}: {dotted}{value}{_env_note(dotted, from_env)}: {rule}")
    return lines


def _env_note(dotted: str, from_env: Mapping[str, str]) -> str:
    if dotted not in from_env:
        return ""
    source = from_env[dotted]
    return " (from overrides)" if source == "overrides" else f" (from env {source})"


def _allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """Field names of the model found by walking ``loc`` from ``model``; empty if it leads elsewhere."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
