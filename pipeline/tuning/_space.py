"""Search spaces: parse and validate them against the algorithm registry, expand grids, pick budgets.

Pure: no Ray import. :mod:`pipeline.tuning._tune` turns these into Ray Tune's objects.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.algorithms import ALGORITHMS, ParamSpec, get_algorithm
from pipeline.config import ConfigError, EarlyStopping, PipelineConfig, Problem, TuningConfig
from pipeline.evaluation import BINARY_ONLY, TASK_METRICS, direction, task_metrics

Distribution = Literal["grid", "uniform", "loguniform", "randint", "choice"]
_DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter's search range."""

    name: str
    kind: Distribution
    values: tuple[Any, ...]  # grid/choice: the options; uniform/loguniform/randint: (low, high)


@dataclass(frozen=True)
class SearchSpace:
    """Per algorithm, its dimensions. One algorithm is a plain sweep; several are model selection."""

    algorithms: dict[str, tuple[Dimension, ...]]

    def grid_points(self) -> list[dict[str, Any]]:
        """Every ``{"algorithm": a, "hyperparameters": {...}}`` of the full grid (lists only)."""
        points: list[dict[str, Any]] = []
        for algorithm, dimensions in self.algorithms.items():
            names = [d.name for d in dimensions]
            for combination in itertools.product(*(d.values for d in dimensions)):
                points.append(
                    {"algorithm": algorithm, "hyperparameters": dict(zip(names, combination, strict=True))}
                )
        return points


def tuning_objective(
    config: PipelineConfig, label_classes: int | None = None
) -> tuple[str, Literal["max", "min"]]:
    """The metric trials are ranked by and its direction (defaults from the task and, for classification,
    the label's number of classes). Raises ConfigError for a metric no trial could report (the area
    under the ROC or PR curve of a label with three classes or more)."""
    tuning = config.tuning or TuningConfig()
    task = get_algorithm(next(iter(_algorithm_spaces(config)))).task
    allowed = task_metrics(task, label_classes)
    metric = tuning.metric or allowed[0]
    if metric not in allowed:
        reason = f"choose one of {list(allowed)}"
        if metric in BINARY_ONLY:
            reason = (
                f"the label {config.data.label!r} has {label_classes} classes and {metric} ranks two; "
                f"{reason} (or leave tuning.metric out: {allowed[0]})"
            )
        raise ConfigError([f"tuning.metric = {metric!r}: {reason}"])
    return metric, tuning.mode or direction(metric)


def parse_space(config: PipelineConfig) -> SearchSpace:
    """The validated search space; raises ``ValueError`` with the problems (see :func:`check_tuning`)."""
    problems = check_tuning(config)
    if problems:
        raise ValueError("; ".join(f"{field} = {value!r}: {rule}" for field, value, rule in problems))
    return SearchSpace({name: _dimensions(space) for name, space in _algorithm_spaces(config).items()})


def check_tuning(config: PipelineConfig) -> list[Problem]:
    """Config check: known algorithms of one task, known hyperparameters, values within their ranges."""
    tuning = config.tuning
    if tuning is None:
        return []
    problems: list[Problem] = []
    spaces = _algorithm_spaces(config)
    where = "tuning.algorithms" if tuning.algorithms else "tuning.space"
    tasks = set()
    for algorithm, space in spaces.items():
        if algorithm not in ALGORITHMS:
            problems.append(
                (
                    f"{where}.{algorithm}" if tuning.algorithms else "model.algorithm",
                    algorithm,
                    f"unknown algorithm; choose one of {', '.join(ALGORITHMS)}",
                )
            )
            continue
        spec = ALGORITHMS[algorithm]
        tasks.add(spec.task)
        prefix = f"{where}.{algorithm}" if tuning.algorithms else where
        for name, entry in space.items():
            field = f"{prefix}.{name}"
            param = spec.params.get(name)
            if param is None:
                problems.append(
                    (field, entry, f"not a {algorithm} hyperparameter; allowed: {', '.join(spec.params)}")
                )
                continue
            problems += [(field, entry, rule) for rule in _entry_problems(entry, param, tuning.search)]
    if len(tasks) > 1:
        problems.append((where, sorted(spaces), f"model selection needs one task, got {sorted(tasks)}"))
    if tasks and tuning.metric is not None:
        allowed = TASK_METRICS[next(iter(tasks))]
        if tuning.metric not in allowed:
            problems.append(("tuning.metric", tuning.metric, f"choose one of {list(allowed)}"))
    if tuning.early_stopping is not None:
        problems += _rung_budget_problems(tuning.early_stopping, list(spaces))
    if not any(spaces.values()) and tuning.search == "grid":
        problems.append((where, {}, "empty search space: give at least one hyperparameter with values"))
    return problems


def budget_levels(maximum: int, rungs: int, factor: int) -> list[int]:
    """ASHA's budgets, smallest first: ``maximum / factor**(rungs-1) ... maximum`` (at least 1, distinct)."""
    levels = sorted({max(1, math.ceil(maximum / factor**step)) for step in range(rungs)})
    return levels


@dataclass(frozen=True)
class Rung:
    """One ASHA rung of a trial: fit on ``fraction`` of the training frame with ``hyperparameters``."""

    budget: float  # what the trial reports: the fraction, or the trees / iterations
    fraction: float
    hyperparameters: dict[str, Any]


def trial_rungs(early_stopping: EarlyStopping, algorithm: str, hyperparameters: Mapping[str, Any]) -> list[Rung]:
    """The rungs of one trial, smallest first. ``data``: the fraction of the training frame grows
    ``1/factor**(rungs-1) .. 1``; ``iterations``: the algorithm's budget parameter grows the same way
    (each rung is a fit of its own: MLlib cannot continue one)."""
    rungs, factor = early_stopping.rungs, early_stopping.reduction_factor
    if early_stopping.budget_of(algorithm) == "data":
        fractions = [1 / factor**step for step in reversed(range(rungs))]
        return [Rung(fraction, fraction, dict(hyperparameters)) for fraction in fractions]
    spec = get_algorithm(algorithm)
    if spec.budget_param is None:  # refused by check_tuning before anything starts
        raise ValueError(f"{algorithm} has no trees or iterations to grow")
    maximum = int(spec.merged(dict(hyperparameters))[spec.budget_param])
    return [
        Rung(level, 1.0, {**hyperparameters, spec.budget_param: level})
        for level in budget_levels(maximum, rungs, factor)
    ]


@dataclass(frozen=True)
class Concurrency:
    """How many trials run at a time, and the line that says why."""

    trials: int
    note: str


def trials_at_a_time(configured: int | None, planned_cores: int, spark_cores: int) -> Concurrency:
    """``tuning.max_concurrent_trials``, or by default one trial per executor core Spark really has
    (no more than the config plans: the Spark actor's threads are sized from it)."""
    if configured is None:
        trials = max(1, min(planned_cores, spark_cores))
        return Concurrency(trials, f"{trials} trial(s) at a time: one per executor core Spark has")
    if configured > spark_cores:
        return Concurrency(
            configured,
            f"{configured} trials at a time on {spark_cores} executor core(s): they share them (a FAIR pool each)",
        )
    return Concurrency(configured, f"{configured} trial(s) at a time (tuning.max_concurrent_trials)")


def _rung_budget_problems(early_stopping: EarlyStopping, algorithms: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    for algorithm, budget in early_stopping.algorithm_budgets.items():
        if algorithm not in algorithms:
            problems.append(
                (
                    f"tuning.early_stopping.algorithm_budgets.{algorithm}",
                    budget,
                    f"not an algorithm of this sweep; its algorithms: {algorithms}",
                )
            )
    for algorithm in algorithms:
        spec = ALGORITHMS.get(algorithm)
        if spec is None or spec.budget_param is not None or early_stopping.budget_of(algorithm) != "iterations":
            continue
        where = (
            f"tuning.early_stopping.algorithm_budgets.{algorithm}"
            if algorithm in early_stopping.algorithm_budgets
            else "tuning.early_stopping.budget"
        )
        problems.append((where, "iterations", f"{algorithm} has no trees or iterations to grow; use data"))
    return problems


def _algorithm_spaces(config: PipelineConfig) -> dict[str, Mapping[str, Any]]:
    tuning = config.tuning or TuningConfig()
    if tuning.algorithms:
        return dict(tuning.algorithms)
    return {config.model.algorithm: tuning.space}


def _entry_problems(entry: Any, param: ParamSpec, search: str) -> list[str]:
    if isinstance(entry, list):
        if not entry:
            return ["an empty list has nothing to try"]
        return [f"value {value!r} {rule}" for value in entry if (rule := param.problem(value))]
    if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in _DISTRIBUTIONS:
        return [f"give a list (grid) or one of {{{', '.join(_DISTRIBUTIONS)}: ...}}"]
    if search == "grid":
        return ["grid search takes lists of values; use search: random for distributions"]
    kind, values = next(iter(entry.items()))
    if not isinstance(values, list) or not values:
        return [f"{kind} takes a list"]
    if kind == "choice":
        return [f"value {value!r} {rule}" for value in values if (rule := param.problem(value))]
    if len(values) != 2:
        return [f"{kind} takes [low, high]"]
    low, high = values
    problems = [f"bound {value!r} {rule}" for value in (low, high) if (rule := param.problem(value))]
    if problems:
        return problems
    if not low < high:
        return [f"{kind} needs low < high"]
    if kind == "loguniform" and low <= 0:
        return ["loguniform needs low > 0"]
    if kind == "randint" and param.kind != "int":
        return ["randint is for integer hyperparameters"]
    if kind in ("uniform", "loguniform") and param.kind == "int":
        return [f"{kind} draws real numbers; use randint for an integer hyperparameter"]
    return []


def _dimensions(space: Mapping[str, Any]) -> tuple[Dimension, ...]:
    dimensions = []
    for name, entry in space.items():
        if isinstance(entry, list):
            dimensions.append(Dimension(name, "grid", tuple(entry)))
        else:
            kind, values = next(iter(entry.items()))
            dimensions.append(Dimension(name, kind, tuple(values)))
    return tuple(dimensions)
