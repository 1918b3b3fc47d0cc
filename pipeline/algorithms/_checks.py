"""Config checks against the registry, run at config load (before any engine starts)."""

from __future__ import annotations

from pipeline.algorithms._registry import ALGORITHMS, hyperparameter_problems
from pipeline.config import PipelineConfig, Problem


def check_model(config: PipelineConfig) -> list[Problem]:
    """Unknown algorithm or hyperparameter, out-of-range values, and a label the task needs."""
    model = config.model
    problems = [
        (f"model.{field}", value, rule)
        for field, value, rule in hyperparameter_problems(model.algorithm, model.hyperparameters)
    ]
    spec = ALGORITHMS.get(model.algorithm)
    if spec is not None and spec.task != "clustering" and config.data.label is None:
        what = "the rating column" if spec.task == "recommendation" else "a label column"
        problems.append(("data.label", None, f"{model.algorithm} ({spec.task}) needs {what}"))
    return problems
