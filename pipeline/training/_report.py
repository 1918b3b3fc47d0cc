"""The end-of-training report: metrics beside the baseline, CV, weights, the inferred feature spec."""

from __future__ import annotations

import io

import yaml
from rich.console import Console as RichConsole
from rich.table import Table

from pipeline.evaluation import TASK_METRICS, is_better
from pipeline.training._train import TrainedModel


def render_report(trained: TrainedModel, show_spec: bool = True) -> str:
    """Plain text (no colour codes) so it reads the same in a terminal, a log file or CI."""
    buffer = io.StringIO()
    out = RichConsole(file=buffer, width=110, color_system=None, force_terminal=False)
    prepared = trained.prepared
    if show_spec and prepared.spec is not None and prepared.inferred:
        out.print("Inferred feature spec (copy under `features:` to pin it):")
        out.print(yaml.safe_dump(prepared.spec.as_config(), sort_keys=False).rstrip(), markup=False)
        dropped = ", ".join(f"{name} ({why})" for name, why in prepared.spec.dropped.items())
        out.print(f"Left out: {dropped or 'nothing'}", markup=False)
    table = Table(title=f"{prepared.algorithm.name} on {trained.train_rows} rows, tested on {trained.test_rows}")
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("baseline", justify="right")
    if trained.cv:
        table.add_column("cv mean ± std", justify="right")
    for name in TASK_METRICS[prepared.task]:
        if name not in trained.metrics:
            continue
        value = trained.metrics[name]
        base = trained.baseline.get(name)
        mark = "" if base is None else (" (better)" if is_better(name, value, base) else " (NOT better)")
        row = [name, f"{value:.4f}", "-" if base is None else f"{base:.4f}{mark}"]
        if trained.cv:
            mean_std = trained.cv.get(name)
            row.append("-" if mean_std is None else f"{mean_std[0]:.4f} ± {mean_std[1]:.4f}")
        table.add_row(*row)
    out.print(table)
    if trained.weights:
        weights = Table(title=f"Top feature {trained.weights_kind}s")
        weights.add_column("feature")
        weights.add_column(trained.weights_kind or "weight", justify="right")
        for name, value in trained.weights:
            weights.add_row(name, f"{value:+.4f}")
        out.print(weights)
    if trained.kept_features is not None:
        out.print(f"Feature selection kept {len(trained.kept_features)}: {', '.join(trained.kept_features[:40])}")
    return buffer.getvalue()
