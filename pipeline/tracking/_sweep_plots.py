"""Pictures of a sweep (matplotlib figures, no pyplot state): logged to MLflow, shown by the Python API."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.tracking._sweeps import TrialRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_FAILED_COLOUR = (0.69, 0.69, 0.69, 1.0)


def _colours(algorithms: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {name: palette(index % 10) for index, name in enumerate(dict.fromkeys(algorithms))}


def trials_figure(trials: Sequence[TrialRecord], metric: str) -> Figure:
    """The validation metric of every trial, best first (leaderboard order), a dot per trial coloured by
    algorithm (dots, not bars: the axis is zoomed on the differences); failed trials are grey crosses at
    the left edge, labelled with the start of their error."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    colours = _colours([trial.algorithm for trial in trials])
    figure = Figure(figsize=(8, 0.9 + 0.32 * max(len(trials), 1)), layout="constrained")
    axes = figure.add_subplot()
    ok = [not trial.error and metric in trial.metrics for trial in trials]
    values = [trial.metrics[metric] for trial, good in zip(trials, ok, strict=True) if good]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    margin = max((high - low) * 0.1, abs(high) * 0.002, 1e-6)
    labels = []
    for position, (trial, good) in enumerate(zip(trials, ok, strict=True)):
        shown = ", ".join(f"{key}={_short(value)}" for key, value in sorted(trial.hyperparameters.items()))
        if good:
            axes.plot(trial.metrics[metric], position, "o", color=colours[trial.algorithm])
            labels.append(f"{trial.algorithm} {shown}")
        else:
            axes.plot(low - margin * 0.5, position, "x", color=_FAILED_COLOUR)
            labels.append(f"{trial.algorithm} FAILED: {(trial.error or '')[:40]}")
    axes.set_yticks(range(len(trials)), labels, fontsize=8)
    axes.set_ylim(len(trials) - 0.5, -0.5)  # the best on top, as in the leaderboard
    axes.set_xlim(low - margin, high + margin)
    axes.grid(axis="x", alpha=0.3)
    axes.set_xlabel(f"validation {metric}")
    axes.set_title(f"{len(trials)} trials, best first")
    shown_algorithms = {trial.algorithm for trial, good in zip(trials, ok, strict=True) if good}
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour, label=name)
        for name, colour in colours.items()
        if name in shown_algorithms
    ]
    if handles:
        axes.legend(handles=handles, fontsize=8, loc="best")
    return figure


def hyperparameters_figure(trials: Sequence[TrialRecord], metric: str) -> Figure:
    """The validation metric against each numeric hyperparameter that the sweep varied, one panel per
    (algorithm, hyperparameter); a log axis where the values span two decades or more."""
    from matplotlib.figure import Figure

    panels = _varied_numeric(trials, metric)
    columns = min(3, max(len(panels), 1))
    rows = max(math.ceil(len(panels) / columns), 1)
    figure = Figure(figsize=(4 * columns, 3.2 * rows), layout="constrained")
    if not panels:
        axes = figure.add_subplot()
        axes.text(0.5, 0.5, "no numeric hyperparameter was varied", ha="center", va="center")
        axes.set_axis_off()
        return figure
    colours = _colours([algorithm for algorithm, _ in panels])
    for index, ((algorithm, name), points) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(rows, columns, index)
        xs, ys = zip(*sorted(points), strict=True)
        axes.plot(xs, ys, "o", color=colours[algorithm])
        if min(xs) > 0 and max(xs) / min(xs) >= 100:
            axes.set_xscale("log")
        axes.set_xlabel(name)
        axes.set_ylabel(f"validation {metric}")
        axes.set_title(algorithm, fontsize=10)
    return figure


def _varied_numeric(
    trials: Sequence[TrialRecord], metric: str
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for trial in trials:
        if trial.error or metric not in trial.metrics:
            continue
        for name, value in trial.hyperparameters.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                points.setdefault((trial.algorithm, name), []).append((float(value), trial.metrics[metric]))
    return {key: found for key, found in points.items() if len({x for x, _ in found}) > 1}


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
