"""Which offline tests compare two models of a task (pure; the statistics are tested in tests/comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation import PairedOutcomes, offline_comparisons


def test_binary_classifiers_get_mcnemar_and_the_auc_multiclass_only_mcnemar() -> None:
    rng = np.random.default_rng(0)
    label = (rng.random(400) < 0.5).astype(float)
    good = np.where(rng.random(400) < 0.9, label, 1 - label)
    bad = np.where(rng.random(400) < 0.6, label, 1 - label)
    probability = np.column_stack([1 - good * 0.8, good * 0.8])
    outcomes = PairedOutcomes(label, bad, good, np.column_stack([1 - bad * 0.6, bad * 0.6]), probability)
    found = {item.metric: item for item in offline_comparisons("classification", outcomes)}
    assert set(found) == {"accuracy", "auc_roc"}
    assert found["accuracy"].verdict == "b better" and found["accuracy"].test.startswith("McNemar")
    three = PairedOutcomes(
        np.array([0.0, 1, 2, 2]),
        np.array([0.0, 1, 2, 1]),
        np.array([0.0, 1, 1, 2]),
        np.ones((4, 3)) / 3,
        np.ones((4, 3)) / 3,
    )
    assert [item.metric for item in offline_comparisons("classification", three)] == ["accuracy"]


def test_regressors_get_paired_tests_on_absolute_and_squared_errors() -> None:
    label = np.linspace(0, 10, 200)
    found = offline_comparisons("regression", PairedOutcomes(label, label + 1.0, label + np.sin(label) * 0.1))
    assert [item.metric for item in found] == ["mae", "mse"]
    assert all(item.verdict == "b better" and not item.higher_is_better for item in found)


def test_tasks_without_a_comparison_are_named() -> None:
    with pytest.raises(PipelineError, match="clustering models are not compared yet"):
        offline_comparisons("clustering", PairedOutcomes(np.zeros(3), np.zeros(3), np.zeros(3)))
