"""The metric a sweep ranks by, and the one line a sweep without a success ends with (no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError
from pipeline.tracking import TrialRecord
from pipeline.tuning import no_success_message, tuning_objective
from tests.conftest import example_config

GRID = {"search": "grid", "algorithms": {"random_forest": {"numTrees": [5]}}}


def test_the_default_metric_follows_the_task_and_the_label_classes(tmp_path: Path) -> None:
    config = example_config("random_forest", tmp_path, tuning=GRID)
    assert tuning_objective(config) == ("auc_roc", "max")  # classes not known yet: the binary default
    assert tuning_objective(config, label_classes=2) == ("auc_roc", "max")
    assert tuning_objective(config, label_classes=3) == ("f1", "max")
    log_loss = example_config("random_forest", tmp_path, tuning={**GRID, "metric": "log_loss"})
    assert tuning_objective(log_loss, label_classes=3) == ("log_loss", "min")
    forest = {"search": "grid", "algorithms": {"random_forest_regressor": {"numTrees": [5]}}}
    regression = example_config("random_forest_regressor", tmp_path, tuning=forest)
    assert tuning_objective(regression, label_classes=None) == ("rmse", "min")


@pytest.mark.parametrize("metric", ["auc_roc", "auc_pr"])
def test_an_area_under_a_curve_of_a_multiclass_label_is_a_config_error(tmp_path: Path, metric: str) -> None:
    config = example_config("random_forest", tmp_path, tuning={**GRID, "metric": metric})
    with pytest.raises(ConfigError) as caught:
        tuning_objective(config, label_classes=3)
    (line,) = caught.value.problems
    assert line.startswith(f"tuning.metric = '{metric}': the label 'label' has 3 classes") and "'f1'" in line


def test_a_sweep_without_a_success_names_the_first_failure_in_one_line() -> None:
    trials = [
        TrialRecord(
            "t1",
            "glm",
            {"link": "identity", "family": "binomial"},
            {},
            1.0,
            error="IllegalArgumentException: the link identity is not valid for binomial",
        ),
        TrialRecord("t2", "glm", {"family": "binomial", "link": "log"}, {}, 1.0, error="IllegalArgumentException"),
    ]
    message = no_success_message("demo-sweep", trials, "run42")
    assert "\n" not in message
    assert message.startswith(
        "no trial of 'demo-sweep' succeeded: trial t1 (glm, "
        '{"family": "binomial", "link": "identity"}) failed: IllegalArgumentException: '
        "the link identity"
    )
    assert "1 more failed" in message and "run42" in message
