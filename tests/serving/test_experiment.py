"""The online experiment's evidence read from a real prediction log and feedback table (delta-rs), no Serve."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson

from serving._experiment import ExperimentRules, online_report
from serving._feedback import Outcome, append_feedback, create_feedback_table
from serving._prediction_log import AnsweredRequest, PredictionLog, create_log_table


def _answer(
    request_id: str,
    version: str,
    role: str,
    prediction: float | None,
    latency: float = 0.002,
    route: str = "predict",
) -> AnsweredRequest:
    output = [{"prediction": prediction}] if prediction is not None else [{"error": 500}]
    body = orjson.dumps({"instances": [{"x": 1}]})
    return AnsweredRequest(
        request_id,
        time.time(),
        route,
        f"v{version}",
        role,
        "m",
        version,
        0,
        "onnx",
        body,
        orjson.dumps(output),
        latency,
        None,
        1,
    )


def test_routed_answers_shadow_pairs_and_guardrails_from_the_log_and_feedback(tmp_path: Path) -> None:
    log_path, feedback_path = tmp_path / "prediction_log", tmp_path / "feedback"
    create_log_table(log_path)
    create_feedback_table(feedback_path)
    log = PredictionLog(str(log_path), max_buffer_rows=10_000)
    rng = np.random.default_rng(11)
    outcomes = []
    for index in range(400):  # version 1 right 60% of the time, version 2 right 90%
        truth = float(rng.integers(0, 2))
        version = "1" if index % 2 else "2"
        right = rng.random() < (0.6 if version == "1" else 0.9)
        log.offer(_answer(f"r{index}", version, "routed", truth if right else 1 - truth))
        if version == "1":  # version 2 shadows what version 1 answered
            log.offer(_answer(f"r{index}", "2", "shadow", truth if rng.random() < 0.9 else 1 - truth, latency=9))
        outcomes.append(Outcome(f"r{index}", 0, truth))
    log.offer(_answer("failed", "2", "routed", None))  # a variant failure: counted by the guardrail
    log.offer(_answer("other-version", "7", "routed", 1.0))  # neither version: left out
    log.offer(_answer("r0", "1", "routed", 1.0, route="recommend"))  # not a prediction: left out
    log.commit()
    append_feedback(feedback_path, [Outcome("r0", 0, 1 - outcomes[0].outcome)], "api")  # a first, wrong outcome
    append_feedback(feedback_path, outcomes, "api")  # ... corrected later: the last one counts
    rules = ExperimentRules(metric="accuracy", mde=0.1, min_samples=100, max_error_rate=0.001, max_p99_ms=100)

    report = online_report(log_path, feedback_path, "1", "2", rules)
    assert report.outcomes == {"1": 200, "2": 200}
    routed, shadow = report.comparisons
    assert routed.verdict == "b better" and routed.samples == 400 and 0.5 < routed.a < 0.7 < 0.85 < routed.b
    assert shadow.metric == "accuracy (shadow pairs)" and shadow.samples == 200 and shadow.verdict == "b better"
    one, two = report.guardrails
    assert (one.version, one.rows, one.errors) == ("1", 200, 0)
    assert (two.version, two.rows, two.errors) == ("2", 401, 1)  # routed, shadow and the failure
    assert two.p99_ms == 2.0  # the shadow answers' 9 ms were nobody's wait
    assert [str(breach) for breach in report.breaches] == ["version 2: error rate 0.25% > 0.10%"]
    assert report.breaches_of("2") == report.breaches and report.breaches_of("1") == []

    fewer = online_report(
        log_path, feedback_path, "1", "2", ExperimentRules(metric="accuracy", mde=0.1, min_samples=500)
    )
    assert fewer.comparisons[0].verdict == "no difference yet" and fewer.comparisons[0].samples_needed


def test_the_routed_split_is_held_against_the_configured_weights(tmp_path: Path) -> None:
    """Sample ratio mismatch over the variants that served the two versions: 300 requests to v1 and 200 to v2
    fit weights 0.6/0.4 and not 0.5/0.5 (chi-square p = 8e-6), whose report is then not trusted."""
    log_path, feedback_path = tmp_path / "prediction_log", tmp_path / "feedback"
    create_log_table(log_path)
    log = PredictionLog(str(log_path), max_buffer_rows=10_000)
    for index in range(500):
        log.offer(_answer(f"r{index}", "1" if index < 300 else "2", "routed", 1.0))
    log.offer(_answer("r0", "2", "shadow", 1.0))  # a shadow answer is no routed request
    log.offer(_answer("r-other", "7", "routed", 1.0))  # nor is another version's (its variant is not compared)
    log.commit()
    rules = ExperimentRules(metric="accuracy", mde=0.1)
    assert online_report(log_path, feedback_path, "1", "2", rules).split is None  # no weights: not checked
    fits = online_report(log_path, feedback_path, "1", "2", rules, weights={"v1": 0.6, "v2": 0.4, "v7": 1.0})
    assert fits.split is not None and fits.split.counts == {"v1": 300, "v2": 200} and fits.trusted
    skewed = online_report(log_path, feedback_path, "1", "2", rules, weights={"v1": 0.5, "v2": 0.5})
    assert skewed.split is not None and not skewed.trusted
    assert skewed.split.describe() == (
        "sample ratio mismatch: v1 300 (60.0% vs 50.0%), v2 200 (40.0% vs 50.0%); chi-square p = 7.7e-06 "
        "(threshold 0.001)"
    )
