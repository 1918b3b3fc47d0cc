"""The MLlib estimators the pipeline trains: a registry of names, tasks, defaults and valid hyperparameters."""

from pipeline.algorithms._checks import check_model
from pipeline.algorithms._registry import (
    ALGORITHMS,
    TASKS,
    AlgorithmSpec,
    ParamSpec,
    Task,
    algorithm_names,
    get_algorithm,
    hyperparameter_problems,
)

__all__ = [
    "ALGORITHMS",
    "TASKS",
    "AlgorithmSpec",
    "ParamSpec",
    "Task",
    "algorithm_names",
    "check_model",
    "get_algorithm",
    "hyperparameter_problems",
]
