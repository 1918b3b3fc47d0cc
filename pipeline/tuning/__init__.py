"""Ray Tune sweeps over MLlib estimators on one shared Spark session (a long-lived Ray actor)."""

from pipeline.tuning._result import SweepResult
from pipeline.tuning._space import (
    Concurrency,
    Dimension,
    Rung,
    SearchSpace,
    budget_levels,
    check_tuning,
    parse_space,
    trial_rungs,
    trials_at_a_time,
    tuning_objective,
)
from pipeline.tuning._trainer import TRAINER_NAME, SparkTrainer
from pipeline.tuning._tune import (
    SweepError,
    no_success_message,
    param_space,
    run_sweep,
    sweep_name,
)

__all__ = [
    "TRAINER_NAME",
    "Concurrency",
    "Dimension",
    "Rung",
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
    "trial_rungs",
    "trials_at_a_time",
    "tuning_objective",
]
