"""Which offline tests compare two models of a task, on the rows both scored. Pure (numpy and the
`comparison` statistics): the Spark side only collects the paired predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comparison import Comparison, compare_auc, compare_correctness, compare_errors, holm_corrected
from pipeline.errors import PipelineError


@dataclass(frozen=True)
class PairedOutcomes:
    """The same rows scored by models a and b: the label, each prediction, and each model's class
    probabilities (rows x classes) where it gives them."""

    label: np.ndarray
    prediction_a: np.ndarray
    prediction_b: np.ndarray
    probability_a: np.ndarray | None = None
    probability_b: np.ndarray | None = None


@dataclass(frozen=True)
class PredictionSample:
    """A uniform sample of one model's test predictions (at most a fixed number of rows), for plots."""

    rows: int  # sampled
    of: int  # test rows in all
    prediction: np.ndarray
    label: np.ndarray | None = None  # none for clustering
    probability: np.ndarray | None = None  # rows x classes, for classifiers that give them


# The online experiment's metric each offline one measures in the same units (its mde applies to both).
SAME_UNITS = {"accuracy": "accuracy", "mae": "absolute_error", "mse": "squared_error"}


def offline_comparisons(
    task: str, outcomes: PairedOutcomes, alpha: float = 0.05, experiment: tuple[str, float] | None = None
) -> list[Comparison]:
    """Classification: McNemar on correctness, and for two classes the paired bootstrap of the AUC (by the
    probability of class 1). Regression: paired t-tests on absolute and on squared errors. Several metrics
    are read as one family: each verdict stands only on its Holm-adjusted p-value (``p_holm``). ``experiment``
    (its metric and minimum detectable effect) gives the metric in its units the rows still needed."""

    def mde(metric: str) -> float | None:
        return experiment[1] if experiment is not None and SAME_UNITS[metric] == experiment[0] else None

    label = outcomes.label
    if task == "classification":
        correct_a, correct_b = outcomes.prediction_a == label, outcomes.prediction_b == label
        found = [compare_correctness(correct_a, correct_b, alpha, mde("accuracy"))]
        a, b = outcomes.probability_a, outcomes.probability_b
        if a is not None and b is not None and a.shape[1] == 2 == b.shape[1] and len(np.unique(label)) == 2:
            found.append(compare_auc(label, a[:, 1], b[:, 1], alpha))
        return holm_corrected(found, alpha)
    if task == "regression":
        error_a, error_b = outcomes.prediction_a - label, outcomes.prediction_b - label
        errors = [
            compare_errors(np.abs(error_a), np.abs(error_b), "mae", alpha, mde("mae")),
            compare_errors(error_a**2, error_b**2, "mse", alpha, mde("mse")),
        ]
        return holm_corrected(errors, alpha)
    raise PipelineError(f"compare: {task} models are not compared yet (classification and regression are)")
