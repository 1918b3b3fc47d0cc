"""The registry commands of the CLI: list versions, compare two, promote (by hand or on a verdict), roll back."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.runtime import Runtime

if TYPE_CHECKING:
    from pipeline.jobs import ComparisonRun
    from pipeline.tracking import AliasMove


def models_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.tracking import list_versions, version_lineage

    versions = list_versions(config.tracking)
    if not versions:
        print(f"no registered versions of {config.tracking.registered_model!r} in {config.tracking.uri}")
        return 0
    print(f"{config.tracking.registered_model} ({config.tracking.uri})")
    for summary in versions:
        aliases = ",".join(f"@{a}" for a in summary.aliases) or "-"
        metrics = " ".join(f"{k.removeprefix('test_')}={v:.4f}" for k, v in sorted(summary.metrics.items()))
        lineage = version_lineage(summary)
        data = f"delta v{lineage['data.delta_version']}" if "data.delta_version" in lineage else "-"
        print(f"  v{summary.version:<4} {aliases:<24} {summary.algorithm:<24} {data:<10} {metrics}")
    return 0


def promote_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.tracking import promote

    if args.if_better:
        return _compare_and_apply(config, "@champion", str(args.version), args.alpha, args.metric)
    _print_move(config, promote(config.tracking, str(args.version)))
    return 0


def rollback_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.tracking import CHAMPION, rollback

    moved = rollback(config.tracking)
    print(f"{config.tracking.registered_model}: @{CHAMPION} -> version {moved.version} "
          f"(rolled back from version {moved.replaced})")  # fmt: skip
    return 0


def _print_move(config: PipelineConfig, moved: AliasMove) -> None:
    from pipeline.tracking import CHAMPION, PREVIOUS

    if moved.replaced is None:
        was = "(no champion before)"
    elif moved.replaced == moved.version:
        was = f"(was version {moved.replaced})"
    else:
        was = f"(was version {moved.replaced}, now @{PREVIOUS}: `rollback` restores it)"
    print(f"{config.tracking.registered_model}: @{CHAMPION} -> version {moved.version} {was}")


def compare_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    if args.apply:
        return _compare_and_apply(config, args.a, args.b, args.alpha, args.metric)
    _compared(config, args.a, args.b, args.alpha)
    return 0


def _compare_and_apply(config: PipelineConfig, a: str, b: str, alpha: float, metric: str | None) -> int:
    """Compare, then make b the champion only on a `b better` verdict (``comparison.promotion_decision``)."""
    from comparison import promotion_decision
    from pipeline.tracking import CHAMPION, find_version, promote

    if CHAMPION not in find_version(config.tracking, a).aliases:
        raise PipelineError(f"--apply: a = {a} is not @{CHAMPION}; promotion replaces the champion")
    run = _compared(config, a, b, alpha)
    try:
        decision = promotion_decision(run.comparisons, metric)
    except ValueError as error:
        raise PipelineError(str(error)) from None
    if not decision.promote:
        print(f"not promoted: {decision.reason}")
        return 0
    print(f"promoted: {decision.reason}")
    _print_move(
        config, promote(config.tracking, run.b.version, reason=decision.reason, comparison_run_id=run.run_id)
    )
    return 0


def _compared(config: PipelineConfig, a_reference: str, b_reference: str, alpha: float) -> ComparisonRun:
    """Run the offline comparison and print its table."""
    from pipeline.jobs import compare_versions
    from pipeline.tracking import find_version

    # Resolved before Spark starts, so a wrong name is one line at once.
    versions = [(reference, find_version(config.tracking, reference)) for reference in (a_reference, b_reference)]
    with Runtime(config) as runtime:
        run = compare_versions(runtime.spark, config, versions, runtime.console, alpha=alpha)
    a, b = run.a, run.b
    print(f"a = {a_reference} (version {a.version}, {a.algorithm}), "
          f"b = {b_reference} (version {b.version}, {b.algorithm})")  # fmt: skip
    print(f"on {run.rows} test rows of {run.data}, paired row by row; {1 - alpha:.0%} intervals of b - a")
    print(f"{'metric':<10} {'a':>9} {'b':>9} {'b - a':>9} {'interval':>22} {'p':>9}  {'test':<42} verdict")
    for found in run.comparisons:
        low, high = found.interval
        interval = f"[{low:+.4f}, {high:+.4f}]"
        print(f"{found.metric:<10} {found.a:>9.4f} {found.b:>9.4f} {found.difference:>+9.4f} {interval:>22} "
              f"{found.p_value:>9.3g}  {found.test:<42} {found.verdict}")  # fmt: skip
    print(f"mlflow run:    {run.run_id} (comparison.csv)")
    return run


def probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1 (exclusive)")
    return value
