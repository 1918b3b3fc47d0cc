"""ASHA's rungs per trial and the checks of their budgets; trials at a time (no engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import EarlyStopping
from pipeline.tuning import Rung, check_tuning, trial_rungs, trials_at_a_time
from tests.conftest import example_config


def test_a_data_budget_grows_a_nested_fraction_of_the_training_frame_for_any_algorithm() -> None:
    early = EarlyStopping(rungs=3, reduction_factor=2)
    rungs = trial_rungs(early, "naive_bayes", {"smoothing": 0.5})
    assert rungs == [
        Rung(0.25, 0.25, {"smoothing": 0.5}),
        Rung(0.5, 0.5, {"smoothing": 0.5}),
        Rung(1.0, 1.0, {"smoothing": 0.5}),
    ]
    assert [rung.fraction for rung in trial_rungs(EarlyStopping(rungs=2, reduction_factor=3), "gbt", {})] == [
        1 / 3,
        1.0,
    ]


def test_an_iterations_budget_grows_the_trees_on_the_whole_frame() -> None:
    early = EarlyStopping(rungs=3, reduction_factor=2, algorithm_budgets={"random_forest": "iterations"})
    rungs = trial_rungs(early, "random_forest", {"numTrees": 20, "maxDepth": 4})
    assert [(rung.budget, rung.fraction) for rung in rungs] == [(5, 1.0), (10, 1.0), (20, 1.0)]
    assert all(rung.hyperparameters["maxDepth"] == 4 for rung in rungs)
    # The registry's default maxIter (when the space does not set it), and distinct levels only.
    (tiny,) = {
        r.budget for r in trial_rungs(early.model_copy(update={"budget": "iterations"}), "gbt", {"maxIter": 1})
    }
    assert tiny == 1


def _problems(tmp_path: Path, early_stopping: dict[str, Any]) -> list[tuple[str, Any, str]]:
    tuning = {
        "search": "grid",
        "early_stopping": early_stopping,
        "algorithms": {"naive_bayes": {"smoothing": [0.5, 1.0]}, "random_forest": {"numTrees": [5]}},
    }
    return check_tuning(example_config("random_forest", tmp_path, tuning=tuning))


def test_rung_budgets_are_checked_against_the_sweeps_algorithms(tmp_path: Path) -> None:
    assert _problems(tmp_path, {"rungs": 2}) == []  # data: every algorithm
    assert _problems(tmp_path, {"algorithm_budgets": {"random_forest": "iterations"}}) == []
    assert _problems(tmp_path, {"budget": "iterations"}) == [
        ("tuning.early_stopping.budget", "iterations", "naive_bayes has no trees or iterations to grow; use data")
    ]
    assert _problems(tmp_path, {"algorithm_budgets": {"naive_bayes": "iterations", "gbt": "data"}}) == [
        (
            "tuning.early_stopping.algorithm_budgets.gbt",
            "data",
            "not an algorithm of this sweep; its algorithms: ['naive_bayes', 'random_forest']",
        ),
        (
            "tuning.early_stopping.algorithm_budgets.naive_bayes",
            "iterations",
            "naive_bayes has no trees or iterations to grow; use data",
        ),
    ]


def test_trials_at_a_time_follow_the_cores_spark_has_unless_configured() -> None:
    assert trials_at_a_time(None, planned_cores=4, spark_cores=4).trials == 4
    short = trials_at_a_time(None, planned_cores=4, spark_cores=2)  # two executors never started
    assert (short.trials, short.note) == (2, "2 trial(s) at a time: one per executor core Spark has")
    assert trials_at_a_time(None, planned_cores=2, spark_cores=8).trials == 2  # the actor's threads: planned
    crowded = trials_at_a_time(6, planned_cores=2, spark_cores=2)
    assert (crowded.trials, crowded.note) == (
        6,
        "6 trials at a time on 2 executor core(s): they share them (a FAIR pool each)",
    )
    assert trials_at_a_time(2, planned_cores=2, spark_cores=2).trials == 2
