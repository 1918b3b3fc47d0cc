"""Ray Tune sweeps over MLlib estimators on one shared Spark session (a long-lived Ray actor)."""

from pipeline.tuning._space import (
    Dimension,
    SearchSpace,
    budget_levels,
    check_tuning,
    parse_space,
    tuning_objective,
)
from pipeline.tuning._trainer import TRAINER_NAME, SparkTrainer
from pipeline.tuning._tune import (
    SweepError,
    SweepResult,
    no_success_message,
    param_space,
    run_sweep,
    sweep_name,
)

__all__ = [
    "TRAINER_NAME",
    "Dimension",
    "SearchSpace",
    "SparkTrainer",
    "SweepError",
    "SweepResult",
    "budget_levels",
    "check_tuning",
    "no_success_message",
    "param_space",
    "parse_space",
    "run_sweep",
    "sweep_name",
    "tuning_objective",
]
