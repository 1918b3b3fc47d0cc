"""Request counters and latency histograms per variant and version, rendered as Prometheus text. Pure."""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass, field

# The prediction log's rows by outcome, its failed commits, and the feedback outcomes taken or unknown.
LOG_OUTCOMES = ("written", "dropped", "failed_writes", "feedback_accepted", "feedback_unknown")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    observations: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds
        self.observations += 1


def _labels(**values: str) -> str:
    escaped = (
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in values.items()
    )
    return "{" + ",".join(escaped) + "}"


@dataclass(frozen=True)
class RequestRecord:
    """One answered (or refused) request, as an ingress replica reports it."""

    variant: str
    version: str
    role: str  # routed, direct (model_id) or shadow
    status: int
    seconds: float
    rows: int


@dataclass
class MetricsTable:
    """Everything /metrics reports; one table per app, fed by every ingress replica."""

    requests: dict[tuple[str, str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    rows: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    latency: dict[tuple[str, str, str], _Histogram] = field(default_factory=lambda: defaultdict(_Histogram))
    log: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOG_OUTCOMES, 0))

    def record(self, variant: str, version: str, role: str, status: int, seconds: float, rows: int) -> None:
        """One scored (or refused) request. ``role``: routed, direct (model_id) or shadow."""
        self.requests[(variant, version, role, str(status))] += 1
        if status < 400:
            self.rows[(variant, version, role)] += rows
        self.latency[(variant, version, role)].observe(seconds)

    def add(self, records: list[RequestRecord], log: dict[str, int] | None = None) -> None:
        for item in records:
            self.record(item.variant, item.version, item.role, item.status, item.seconds, item.rows)
        for outcome, count in (log or {}).items():
            self.log[outcome] = self.log.get(outcome, 0) + count

    def to_json(self) -> str:
        """Everything counted so far, to be stored where it outlives the process holding it."""
        return json.dumps(
            {
                "requests": [[*key, count] for key, count in self.requests.items()],
                "rows": [[*key, count] for key, count in self.rows.items()],
                "latency": [[*key, h.counts, h.total, h.observations] for key, h in self.latency.items()],
                "log": self.log,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> MetricsTable:
        raw = json.loads(text)
        table = cls()
        for *key, count in raw["requests"]:
            table.requests[tuple(key)] = count
        for *key, count in raw["rows"]:
            table.rows[tuple(key)] = count
        for *key, counts, total, observations in raw["latency"]:
            table.latency[tuple(key)] = _Histogram(counts, total, observations)
        table.log.update(raw.get("log", {}))
        return table

    def render(self) -> str:
        lines = [
            "# HELP pipeline_requests_total Prediction requests by variant, model version, role and HTTP status.",
            "# TYPE pipeline_requests_total counter",
        ]
        for (variant, version, role, status), count in sorted(self.requests.items()):
            labels = _labels(variant=variant, version=version, role=role, status=status)
            lines.append(f"pipeline_requests_total{labels} {count}")
        lines += [
            "# HELP pipeline_errors_total Prediction requests answered with an error status (4xx or 5xx).",
            "# TYPE pipeline_errors_total counter",
        ]
        errors: dict[tuple[str, str, str], int] = defaultdict(int)
        for (variant, version, role, status), count in self.requests.items():
            if int(status) >= 400:
                errors[(variant, version, role)] += count
        for (variant, version, role), count in sorted(errors.items()):
            lines.append(f"pipeline_errors_total{_labels(variant=variant, version=version, role=role)} {count}")
        lines += [
            "# HELP pipeline_rows_total Rows scored by variant, model version and role.",
            "# TYPE pipeline_rows_total counter",
        ]
        for (variant, version, role), count in sorted(self.rows.items()):
            lines.append(f"pipeline_rows_total{_labels(variant=variant, version=version, role=role)} {count}")
        lines += [
            "# HELP pipeline_request_seconds Time to answer a prediction request, as seen by the ingress.",
            "# TYPE pipeline_request_seconds histogram",
        ]
        for (variant, version, role), histogram in sorted(self.latency.items()):
            base = {"variant": variant, "version": version, "role": role}
            running = 0
            for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], histogram.counts, strict=True):
                running += count
                lines.append(f"pipeline_request_seconds_bucket{_labels(**base, le=bound)} {running}")
            lines.append(f"pipeline_request_seconds_sum{_labels(**base)} {histogram.total:.6f}")
            lines.append(f"pipeline_request_seconds_count{_labels(**base)} {histogram.observations}")
        lines += [
            "# HELP pipeline_prediction_log_rows_total Prediction log rows committed, or dropped (backlog full).",
            "# TYPE pipeline_prediction_log_rows_total counter",
            f'pipeline_prediction_log_rows_total{{outcome="written"}} {self.log.get("written", 0)}',
            f'pipeline_prediction_log_rows_total{{outcome="dropped"}} {self.log.get("dropped", 0)}',
            "# HELP pipeline_prediction_log_failed_writes_total Prediction log commits that failed (retried).",
            "# TYPE pipeline_prediction_log_failed_writes_total counter",
            f"pipeline_prediction_log_failed_writes_total {self.log.get('failed_writes', 0)}",
            "# HELP pipeline_feedback_rows_total Outcomes posted: accepted, or unknown (not in the log).",
            "# TYPE pipeline_feedback_rows_total counter",
            f'pipeline_feedback_rows_total{{outcome="accepted"}} {self.log.get("feedback_accepted", 0)}',
            f'pipeline_feedback_rows_total{{outcome="unknown"}} {self.log.get("feedback_unknown", 0)}',
        ]
        return "\n".join(lines) + "\n"
