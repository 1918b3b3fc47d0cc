"""The experiment commands of the CLI: load outcomes of served predictions as feedback, compare two versions
online (on what they answered and the outcomes that came back), have a running app reload after an alias
moved, and score a whole source with a registered version."""

from __future__ import annotations

import argparse
import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import PipelineConfig, StoreURI, data_location
from pipeline.errors import PipelineError
from pipeline.storage import LocationError

if TYPE_CHECKING:
    from comparison import Comparison
    from serving import OnlineReport


def _checked_column(table: pa.Table, name: str, option: str, kind: str) -> list[Any]:
    column = table.column(name)
    nulls = column.null_count
    if nulls:
        raise PipelineError(f"{option} {name}: {nulls} of {table.num_rows} rows are empty; every row needs one")
    typed = column.type
    if kind == "number" and not (
        pa.types.is_integer(typed) or pa.types.is_floating(typed) or pa.types.is_boolean(typed)
    ):
        raise PipelineError(
            f"{option} {name}: a {typed} column; outcomes must be numbers (the label index a "
            f"classifier answers with, or a regressor's value)"
        )
    if kind == "integer" and not pa.types.is_integer(typed):
        raise PipelineError(f"{option} {name}: a {typed} column; a row index must be an integer")
    if kind == "integer" and table.num_rows and pc.min(column).as_py() < 0:
        raise PipelineError(f"{option} {name}: {pc.min(column).as_py()} is negative; row indexes start at 0")
    if kind == "number":
        return [float(value) for value in column.to_pylist()]
    return column.to_pylist() if kind == "integer" else [str(value) for value in column.to_pylist()]


def feedback_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    """Outcomes from a Delta, Parquet or CSV source into the feedback table (those the log knows)."""
    from pipeline.data import read_columns, source_format
    from serving import Outcome, create_feedback_table, is_delta_table, record_feedback

    log, feedback = config.serving.prediction_log, config.serving.feedback
    if not is_delta_table(log.path):
        raise PipelineError(
            f"feedback: no prediction log at {log.path} (serve with serving.prediction_log on first)"
        )
    outcome = args.outcome or config.data.label
    if outcome is None:
        raise PipelineError("feedback: give --outcome COLUMN (the config has no data.label)")
    columns = [args.key, outcome, *([args.row] if args.row else [])]
    source = _location(args.source, "--from")
    kind = args.format or source_format(source)
    table = read_columns(source, list(dict.fromkeys(columns)), kind)
    keys = _checked_column(table, args.key, "--key", "text")
    values = _checked_column(table, outcome, "--outcome", "number")
    rows = _checked_column(table, args.row, "--row", "integer") if args.row else [0] * table.num_rows
    bad = next((index for index, value in enumerate(values) if not math.isfinite(value)), None)
    if bad is not None:
        raise PipelineError(f"--outcome {outcome}: row {bad} is {values[bad]}; outcomes must be finite numbers")
    outcomes = [Outcome(key, row, value) for key, row, value in zip(keys, rows, values, strict=True)]
    create_feedback_table(feedback.path)
    report = record_feedback(log.path, feedback.path, outcomes, feedback.lookback_days, f"{kind}:{args.source}")
    print(f"feedback: {report.accepted} of {len(outcomes)} outcomes from {args.source} written to {feedback.path}")
    if report.unknown:
        first = ", ".join(f"{item.request_id} row {item.row}" for item in report.unknown[:5])
        print(
            f"  {len(report.unknown)} unknown (not in the prediction log of the last {feedback.lookback_days} "
            f"days; a running app commits its answers every {log.flush_seconds:g} s): {first}"
        )
    return 0


def print_comparisons(comparisons: Sequence[Comparison]) -> None:
    """The comparison table: each metric's values, b - a with its interval, p-value (and Holm's, when the
    metrics are read as one family), test and verdict."""
    width = max([10, *(len(found.metric) for found in comparisons)])
    holm = any(found.p_holm is not None for found in comparisons)
    p_columns = f"{'p':>9} {'Holm p':>9}" if holm else f"{'p':>9}"
    print(f"{'metric':<{width}} {'a':>9} {'b':>9} {'b - a':>9} {'interval':>22} {p_columns}  {'test':<42} verdict")
    for found in comparisons:
        low, high = found.interval
        interval = f"[{low:+.4f}, {high:+.4f}]"
        needed = f" (about {found.samples_needed} more samples)" if found.samples_needed else ""
        adjusted = found.p_value if found.p_holm is None else found.p_holm
        p_values = f"{found.p_value:>9.3g}" + (f" {adjusted:>9.3g}" if holm else "")
        print(
            f"{found.metric:<{width}} {found.a:>9.4f} {found.b:>9.4f} {found.difference:>+9.4f} {interval:>22} "
            f"{p_values}  {found.test:<42} {found.verdict}{needed}"
        )


@dataclass(frozen=True)
class OnlineRun:
    """An online comparison as the CLI ran it: the report, b's version and the MLflow run recording it."""

    report: OnlineReport
    b_version: str
    run_id: str


def online_compared(config: PipelineConfig, a_reference: str, b_reference: str, alpha: float | None) -> OnlineRun:
    """Compare two registered versions on what they answered (prediction log) and the outcomes that came back
    (feedback), print the table and the guardrails, and log it all to MLflow."""
    from pipeline.tracking import find_version
    from serving import experiment_rules, is_delta_table, log_online_comparison, online_report

    a, b = find_version(config.tracking, a_reference), find_version(config.tracking, b_reference)
    if a.version == b.version:
        raise PipelineError(
            f"--a {a_reference} and --b {b_reference} are both version {a.version}: nothing to compare"
        )
    log, feedback, experiment = config.serving.prediction_log, config.serving.feedback, config.experiment
    if not is_delta_table(log.path):
        raise PipelineError(f"compare --online: no prediction log at {log.path} (serve with the log on)")
    rules = experiment_rules(experiment, alpha)
    weights = {name: variant.weight for name, variant in config.serving.variants.items()}
    report = online_report(log.path, feedback.path, a.version, b.version, rules, weights=weights)
    print(
        f"a = {a_reference} (version {a.version}, {a.algorithm}), b = {b_reference} (version {b.version}, "
        f"{b.algorithm})"
    )
    print(
        f"online: what each answered in the last {rules.lookback_days} days ({log.path}) with its outcome "
        f"({feedback.path}); routed rows with an outcome: a {report.outcomes[a.version]}, "
        f"b {report.outcomes[b.version]}; minimum detectable effect {rules.mde:g}, "
        f"alpha {rules.alpha:g}"
    )
    print_comparisons(report.comparisons)
    if report.split is not None:
        print(f"traffic: {report.split.describe()} (serving.variants' weights)")
    for found in report.guardrails:
        print(
            f"guardrail version {found.version}: {found.errors} of {found.rows} rows failed "
            f"({found.error_rate:.2%}), p99 latency {found.p99_ms:.1f} ms"
        )
    for breach in report.breaches:
        print(f"guardrail breached: {breach}")
    run_id = log_online_comparison(
        config.tracking,
        report,
        rules,
        f"online: {log.path} + {feedback.path}",
        a_reference=a_reference,
        b_reference=b_reference,
    )
    print(f"mlflow run:    {run_id} (comparison.csv)")
    return OnlineRun(report, b.version, run_id)


def reload_running_app(config: PipelineConfig) -> None:
    """After an alias moved: the app serving on ``serving.host:port`` re-resolves its aliases on every replica
    (``POST /admin/reload`` with the token from ``serving.token_env``); none running is not an error."""
    serving = config.serving
    host = "127.0.0.1" if serving.host in ("0.0.0.0", "::") else serving.host
    url = f"http://{host}:{serving.port}/admin/reload"
    token = os.environ.get(serving.token_env, "")
    if not token:
        print(f"a running app takes the new aliases on POST {url} (with the token of {serving.token_env})")
        return
    request = urllib.request.Request(url, method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            versions = json.loads(answer.read())["versions"]
    except urllib.error.HTTPError as error:
        print(f"the app at {url} did not reload: HTTP {error.code} (POST /admin/reload by hand)")
        return
    except (urllib.error.URLError, OSError):
        print(f"no app answering at {url}: nothing to reload")
        return
    print(
        f"reloaded the app at {url}: "
        + ", ".join(f"{name} -> version {v}" for name, v in sorted(versions.items()))
    )


def score_command(config: PipelineConfig, args: argparse.Namespace) -> int:
    """Score a source with a registered version in Spark; the rows, their predictions and lineage to Delta."""
    from pipeline.config import TableSource
    from pipeline.data import source_format
    from pipeline.jobs import score_source
    from pipeline.runtime import Runtime
    from pipeline.tracking import find_version

    version = find_version(config.tracking, args.model)  # before Spark starts: a wrong name is one line at once
    where = _location(args.input, "--input")
    kind = args.format or source_format(where, "--input")
    if args.version is not None and kind != "delta":
        raise PipelineError(f"--version {args.version}: only a Delta source has versions ({where} is {kind})")
    source = TableSource.model_validate({"format": kind, "path": where, "version": args.version})
    output = (
        _location(args.output, "--output")
        if args.output
        else config.root / "scores" / config.tracking.registered_model
    )
    with Runtime(config) as runtime:
        run = score_source(runtime.spark, config, version, source, output, runtime.console, args.mode)
    model = f"{config.tracking.registered_model} version {version.version} ({args.model})"
    print(
        f"scored {run.written.rows} rows of {run.source} with {model} into {run.written.path}: "
        f"Delta version {run.written.version}"
    )
    return 0


def _location(text: str, flag: str) -> Path | StoreURI:
    """A flag's location: an object-store URI as given (checked), a local path resolved against the working
    directory; one line naming the flag otherwise."""
    try:
        return data_location(text, flag, Path.cwd())
    except LocationError as error:
        raise PipelineError(str(error)) from None
