"""The sweep's figures, from trial records alone (no engine): what each shows, failed trials included."""

from __future__ import annotations

import numpy as np

from pipeline.tracking import TrialRecord, hyperparameters_figure, trials_figure

TRIALS = [
    TrialRecord("t1", "random_forest", {"maxDepth": 8, "numTrees": 20}, {"auc_roc": 0.79}, 3.0),
    TrialRecord("t2", "random_forest", {"maxDepth": 4, "numTrees": 20}, {"auc_roc": 0.77}, 3.0),
    TrialRecord("t3", "logistic_regression", {"regParam": 0.1}, {"auc_roc": 0.764}, 2.0),
    TrialRecord("t4", "logistic_regression", {"regParam": 0.001}, {"auc_roc": 0.761}, 2.0),
    TrialRecord(
        "t5", "gbt", {"maxIter": 5}, {}, 1.0, error="IllegalArgumentException: maxIter given invalid value"
    ),
]


def test_the_trials_figure_has_a_dot_per_trial_best_on_top_and_failures_marked() -> None:
    axes = trials_figure(TRIALS, "auc_roc").axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels[0] == "random_forest maxDepth=8, numTrees=20"
    assert labels[-1].startswith("gbt FAILED: IllegalArgumentException")
    points = [
        (*np.asarray(line.get_xydata(), dtype=float)[0].tolist(), line.get_marker()) for line in axes.get_lines()
    ]
    assert [marker for _, _, marker in points] == ["o", "o", "o", "o", "x"]
    assert [x for x, _, _ in points[:4]] == [0.79, 0.77, 0.764, 0.761]
    low, high = axes.get_xlim()
    assert low < points[4][0] < 0.761 < 0.79 < high  # zoomed on the metrics, the failure at the left edge
    assert axes.get_ylim()[0] > axes.get_ylim()[1]  # inverted: position 0 (the best) on top
    legend = axes.get_legend()
    assert legend is not None  # gbt only failed: not in the legend
    assert [text.get_text() for text in legend.get_texts()] == ["random_forest", "logistic_regression"]


def test_the_hyperparameters_figure_has_a_panel_per_varied_numeric_hyperparameter() -> None:
    figure = hyperparameters_figure(TRIALS, "auc_roc")
    panels = {(axes.get_title(), axes.get_xlabel()): axes for axes in figure.axes}
    # numTrees did not vary, gbt failed: neither gets a panel
    assert set(panels) == {("random_forest", "maxDepth"), ("logistic_regression", "regParam")}
    assert panels[("logistic_regression", "regParam")].get_xscale() == "log"  # 0.001 to 0.1
    assert panels[("random_forest", "maxDepth")].get_xscale() == "linear"
    line = panels[("random_forest", "maxDepth")].get_lines()[0]
    assert np.asarray(line.get_xdata(), dtype=float).tolist() == [4.0, 8.0]
    assert np.asarray(line.get_ydata(), dtype=float).tolist() == [0.77, 0.79]


def test_a_sweep_without_a_varied_number_says_so_instead_of_an_empty_grid() -> None:
    figure = hyperparameters_figure(TRIALS[:1], "auc_roc")
    assert len(figure.axes) == 1
    assert figure.axes[0].texts[0].get_text() == "no numeric hyperparameter was varied"
