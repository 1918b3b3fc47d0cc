"""An online experiment's evidence: the prediction log joined with the feedback table (delta-rs, no Spark),
turned into the comparisons and guardrails of ``comparison``."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from comparison import (
    Breach,
    Comparison,
    Guardrail,
    SampleRatioCheck,
    compare_routed,
    compare_shadowed,
    guardrail,
    sample_ratio_mismatch,
)
from pipeline.config import ExperimentConfig, TrackingConfig
from pipeline.storage import delta_storage_options


@dataclass(frozen=True)
class ExperimentRules:
    """What the comparison is asked (from the config's ``experiment`` section)."""

    metric: str
    mde: float
    alpha: float = 0.05
    min_samples: int = 100
    max_error_rate: float = 0.01
    max_p99_ms: float = 250.0
    lookback_days: int = 30


def experiment_rules(experiment: ExperimentConfig, alpha: float | None = None) -> ExperimentRules:
    """The rules of the config's ``experiment`` section (``alpha`` overriding its own)."""
    return ExperimentRules(
        experiment.metric,
        experiment.mde,
        alpha or experiment.alpha,
        experiment.min_samples,
        experiment.max_error_rate,
        experiment.max_p99_ms,
        experiment.lookback_days,
    )


@dataclass(frozen=True)
class OnlineReport:
    """Version b against version a on served traffic with outcomes."""

    a: str
    b: str
    comparisons: list[Comparison]  # routed traffic first, then shadow pairs (if any)
    guardrails: list[Guardrail]  # a's, then b's
    outcomes: dict[str, int] = field(default_factory=dict)  # routed rows with an outcome, per version
    breaches: list[Breach] = field(default_factory=list)  # each limit a version passes
    # The routed requests per variant against the configured weights (None: no weights given, or one variant)
    split: SampleRatioCheck | None = None

    @property
    def trusted(self) -> bool:
        """Whether the traffic split fits the weights (a mismatch biases every comparison of the variants)."""
        return self.split is None or not self.split.mismatch

    def breaches_of(self, version: str) -> list[Breach]:
        return [breach for breach in self.breaches if breach.version == version]


def _log_rows(log_path: str | Path, versions: tuple[str, str], since: str) -> pa.Table:
    from deltalake import DeltaTable

    wanted = pc.field("date") >= since
    wanted = wanted & (pc.field("route") == "predict") & pc.field("version").isin(list(versions))
    columns = ["request_id", "row", "role", "variant", "version", "output", "latency_ms"]
    log = DeltaTable(str(log_path), storage_options=delta_storage_options(log_path))
    return log.to_pyarrow_dataset().to_table(columns=columns, filter=wanted)


def _latest_outcomes(feedback_path: str | Path) -> dict[tuple[str, int], float]:
    """Each (request id, row)'s outcome; the last one posted wins."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        feedback = DeltaTable(str(feedback_path), storage_options=delta_storage_options(feedback_path))
    except TableNotFoundError:  # no outcome has come back yet
        return {}
    table = feedback.to_pyarrow_table(columns=["request_id", "row", "outcome", "time"])
    table = table.sort_by("time")
    return dict(
        zip(
            zip(table["request_id"].to_pylist(), table["row"].to_pylist(), strict=True),
            table["outcome"].to_pylist(),
            strict=True,
        )
    )


def _prediction(output: str) -> tuple[float | None, bool]:
    """The logged answer's prediction, and whether the row failed (logged with an ``error``)."""
    answer: Any = orjson.loads(output)
    if isinstance(answer, dict) and "error" in answer:
        return None, True
    value = answer.get("prediction") if isinstance(answer, dict) else None
    return (float(value) if value is not None else None), False


def online_report(
    log_path: str | Path,
    feedback_path: str | Path,
    a: str,
    b: str,
    rules: ExperimentRules,
    today: dt.date | None = None,
    weights: Mapping[str, float] | None = None,
) -> OnlineReport:
    """Compare versions ``a`` and ``b`` on what they answered in the last ``rules.lookback_days`` days; with
    the variants' configured ``weights``, check that the requests routed to the variants serving them fit
    those weights (sample ratio mismatch)."""
    since = ((today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=rules.lookback_days)).isoformat()
    rows = _log_rows(log_path, (a, b), since).to_pylist()
    outcomes = _latest_outcomes(feedback_path)
    routed: dict[str, tuple[list[float], list[float]]] = {a: ([], []), b: ([], [])}
    latency: dict[str, list[float]] = {a: [], b: []}
    failed: dict[str, list[bool]] = {a: [], b: []}
    requests: Counter[str] = Counter()  # routed requests (their first record) per variant
    # (request, row) -> role -> (version, prediction): the requests both versions answered
    answers: dict[tuple[str, int], dict[str, tuple[str, float]]] = {}
    for row in rows:
        version, key = row["version"], (row["request_id"], row["row"])
        prediction, error = _prediction(row["output"])
        failed[version].append(error)
        if row["role"] != "shadow":  # a shadow answer's time is nobody's wait
            latency[version].append(row["latency_ms"])
        if row["role"] == "routed" and row["row"] == 0:
            requests[row["variant"]] += 1
        if prediction is None or key not in outcomes:
            continue
        if row["role"] == "routed":
            routed[version][0].append(prediction)
            routed[version][1].append(outcomes[key])
        if row["role"] in ("routed", "shadow"):
            answers.setdefault(key, {})[row["role"]] = (version, prediction)
    comparisons = [compare_routed(rules.metric, routed[a], routed[b], rules.mde, rules.alpha, rules.min_samples)]
    pairs = [
        (key, both)
        for key, both in answers.items()
        if {both.get("routed", ("", 0))[0], both.get("shadow", ("", 0))[0]} == {a, b}
    ]
    if pairs:
        by_version = [{version: prediction for version, prediction in both.values()} for _, both in pairs]
        shadowed = compare_shadowed(
            rules.metric,
            [found[a] for found in by_version],
            [found[b] for found in by_version],
            [outcomes[key] for key, _ in pairs],
            rules.alpha,
        )
        if shadowed is not None:
            comparisons.append(shadowed)
    guardrails = [guardrail(version, latency[version], failed[version]) for version in (a, b)]
    breaches = [line for found in guardrails for line in found.breaches(rules.max_error_rate, rules.max_p99_ms)]
    counted = {version: len(routed[version][0]) for version in (a, b)}
    split = _split(requests, weights)
    return OnlineReport(a, b, comparisons, guardrails, counted, breaches, split)


def _split(requests: Mapping[str, int], weights: Mapping[str, float] | None) -> SampleRatioCheck | None:
    """The sample-ratio check over the variants that served the two versions in the window (another
    variant's traffic is not in these rows), against their configured weights."""
    if weights is None:
        return None
    serving = {name: weights.get(name, 0.0) for name in requests}
    if len(serving) < 2:
        return None
    return sample_ratio_mismatch(requests, serving)


def log_online_comparison(
    tracking: TrackingConfig, report: OnlineReport, rules: ExperimentRules, data: str, **context: str
) -> str:
    """The comparison's MLflow run, the same whether `compare --online` or the app's own move made it: the
    versions, what was read (``data``), the rules, the breaches, the table (comparison.csv) and per version
    its guardrails and each metric's values; ``context`` adds params (the references given, a move's
    reason). Returns the run's id."""
    from pipeline.tracking.registry import log_comparison

    params: dict[str, Any] = {
        "a_version": report.a,
        "b_version": report.b,
        **context,
        "data": data,
        "alpha": rules.alpha,
        "mde": rules.mde,
        "metric": rules.metric,
        "breaches": "; ".join(map(str, report.breaches)) or "none",
        "traffic_split": report.split.describe() if report.split is not None else "not checked",
    }
    figures = {f"{found.version}_p99_ms": found.p99_ms for found in report.guardrails}
    figures.update({f"{found.version}_error_rate": found.error_rate for found in report.guardrails})
    for compared in report.comparisons:
        name = compared.metric.replace(" ", "_").replace("(", "").replace(")", "")
        figures.update({f"{name}_a": compared.a, f"{name}_b": compared.b, f"{name}_p_value": compared.p_value})
    return log_comparison(tracking, params, [found.as_row() for found in report.comparisons], figures)
