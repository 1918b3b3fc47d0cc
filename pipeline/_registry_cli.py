"""The registry commands of the CLI: list versions, compare two, promote (by hand or on a verdict), roll back,
and trace a served answer back to its model version, MLflow run and training data."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipeline._experiment_cli import online_compared, print_comparisons, reload_running_app
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
    reload_running_app(config)
    return 0


def rollback_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.tracking import CHAMPION, rollback

    moved = rollback(config.tracking)
    print(
        f"{config.tracking.registered_model}: @{CHAMPION} -> version {moved.version} "
        f"(rolled back from version {moved.replaced})"
    )
    reload_running_app(config)
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
        return _compare_and_apply(config, args.a, args.b, args.alpha, args.metric, args.online)
    if args.online:
        online_compared(config, args.a, args.b, args.alpha)
    else:
        _compared(config, args.a, args.b, args.alpha or OFFLINE_ALPHA)
    return 0


def _compare_and_apply(
    config: PipelineConfig, a: str, b: str, alpha: float | None, metric: str | None, online: bool = False
) -> int:
    """Compare, then make b the champion only on a `b better` verdict (``comparison.promotion_decision``) and,
    online, with no guardrail breached by b; a running app then reloads."""
    from comparison import promotion_decision
    from pipeline.tracking import CHAMPION, find_version, promote

    if CHAMPION not in find_version(config.tracking, a).aliases:
        raise PipelineError(f"--apply: a = {a} is not @{CHAMPION}; promotion replaces the champion")
    if online:
        found = online_compared(config, a, b, alpha)
        comparisons, b_version, run_id = found.report.comparisons, found.b_version, found.run_id
        breached = [f"guardrail: {breach}" for breach in found.report.breaches_of(b_version)]
        if not found.report.trusted and found.report.split is not None:  # a wrong split biases any verdict
            breached.append(f"traffic: {found.report.split.describe()}")
    else:
        offline = _compared(config, a, b, alpha or OFFLINE_ALPHA)
        comparisons, b_version, run_id, breached = offline.comparisons, offline.b.version, offline.run_id, []
    try:
        decision = promotion_decision(comparisons, metric)
    except ValueError as error:
        raise PipelineError(str(error)) from None
    if not decision.promote or breached:
        print(f"not promoted: {decision.reason}" + "".join(f"; {line}" for line in breached))
        return 0
    print(f"promoted: {decision.reason}")
    _print_move(config, promote(config.tracking, b_version, reason=decision.reason, comparison_run_id=run_id))
    reload_running_app(config)
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
    print(
        f"a = {a_reference} (version {a.version}, {a.algorithm}), "
        f"b = {b_reference} (version {b.version}, {b.algorithm})"
    )
    print(f"on {run.rows} test rows of {run.data}, paired row by row; {1 - alpha:.0%} intervals of b - a")
    print_comparisons(run.comparisons)
    print(f"mlflow run:    {run.run_id} (comparison.csv)")
    return run


OFFLINE_ALPHA = 0.05


def probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1 (exclusive)")
    return value


def trace_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    """A request of the prediction log: what each variant answered, with which version, from which MLflow run,
    trained on which Delta version of which table."""
    from pipeline.tracking import find_version, version_lineage
    from serving import logged_request

    log = config.serving.prediction_log
    try:
        rows = logged_request(log.path, args.request_id)
    except FileNotFoundError as error:
        raise PipelineError(f"trace: {error} (serving.prediction_log.path; is the log enabled?)") from None
    if not rows:
        raise PipelineError(
            f"trace: request {args.request_id!r} is not in the prediction log at {log.path} (each replica "
            f"commits its answers every {log.flush_seconds:g} s and at a graceful stop)"
        )
    first = rows[0]
    print(
        f"request {args.request_id}: {first['route']} at {first['time']:%Y-%m-%d %H:%M:%S.%f} UTC, "
        f"answered in {first['latency_ms']:.2f} ms"
    )
    answers: dict[tuple[str, str, str, str], list[dict[str, object]]] = {}
    for row in rows:
        answers.setdefault((row["role"], row["variant"], row["model"], row["version"]), []).append(row)
    for (role, variant, model, version), answered in answers.items():
        print(f"{role} answer by variant {variant}: {model} version {version} (scorer {answered[0]['scorer']})")
        if model == config.tracking.registered_model:
            summary = find_version(config.tracking, version)
            lineage = version_lineage(summary)
            aliases = " ".join(f"@{alias}" for alias in summary.aliases) or "no alias now"
            print(f"  MLflow run {summary.run_id} ({summary.algorithm}; {aliases}) in {config.tracking.uri}")
            print(
                f"  trained on {lineage.get('data.path', '?')} at Delta version "
                f"{lineage.get('data.delta_version', '?')} ({lineage.get('data.rows', '?')} rows)"
            )
        else:
            print(f"  (not {config.tracking.registered_model!r}, the configured model: its run is not looked up)")
        for row in answered:
            print(f"  row {row['row']}: {row['input']} -> {row['output']}")
    return 0
