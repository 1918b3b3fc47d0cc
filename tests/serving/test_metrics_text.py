"""The Prometheus rendering: counters and cumulative histogram buckets per variant and version."""

from __future__ import annotations

from serving._metrics import LATENCY_BUCKETS, MetricsTable, RequestRecord


def test_counts_and_histograms_add_up() -> None:
    table = MetricsTable()
    for seconds in (0.0005, 0.003, 0.003, 0.2):
        table.record("champion", "3", "routed", 200, seconds, rows=2)
    table.record("champion", "3", "routed", 422, 0.001, rows=1)
    table.record("challenger", "4", "shadow", 200, 0.004, rows=2)
    text = table.render()
    assert 'pipeline_requests_total{variant="champion",version="3",role="routed",status="200"} 4' in text
    assert 'pipeline_errors_total{variant="champion",version="3",role="routed"} 1' in text
    assert 'pipeline_rows_total{variant="champion",version="3",role="routed"} 8' in text
    assert 'pipeline_request_seconds_count{variant="champion",version="3",role="routed"} 5' in text
    assert 'pipeline_request_seconds_bucket{variant="champion",version="3",role="routed",le="0.001"} 2' in text
    assert 'pipeline_request_seconds_bucket{variant="champion",version="3",role="routed",le="+Inf"} 5' in text
    assert 'role="shadow"' in text
    buckets = [
        line for line in text.splitlines() if line.startswith('pipeline_request_seconds_bucket{variant="ch')
    ]
    assert len(buckets) == 2 * (len(LATENCY_BUCKETS) + 1)


def test_the_table_survives_a_round_trip_through_json() -> None:
    table = MetricsTable()
    table.add(
        [
            RequestRecord("champion", "3", "routed", 200, 0.002, 4),
            RequestRecord("champion", "3", "direct", 404, 0.001, 1),
        ]
    )
    restored = MetricsTable.from_json(table.to_json())
    assert restored.render() == table.render()
    restored.record("champion", "3", "routed", 200, 0.002, 1)  # counting goes on from the stored figures
    assert (
        'pipeline_requests_total{variant="champion",version="3",role="routed",status="200"} 2' in restored.render()
    )
