"""When a comparison lets b replace the champion a."""

from __future__ import annotations

import pytest

from comparison import Comparison, Verdict, promotion_decision


def _found(metric: str, verdict: Verdict, difference: float = 0.02, needed: int | None = None) -> Comparison:
    return Comparison(
        metric=metric,
        a=0.8,
        b=0.8 + difference,
        difference=difference,
        interval=(0.01, 0.03),
        test="t",
        p_value=0.004,
        verdict=verdict,
        samples=500,
        samples_needed=needed,
    )


def test_b_better_on_the_deciding_metric_and_worse_on_none_is_promoted() -> None:
    decision = promotion_decision([_found("accuracy", "b better"), _found("auc_roc", "no difference yet")])
    assert (decision.promote, decision.metric) == (True, "accuracy")
    assert decision.reason == "accuracy: b better by +0.02 (p = 0.004)"


def test_no_difference_yet_is_not_promoted_and_says_how_many_samples_would_tell() -> None:
    decision = promotion_decision([_found("accuracy", "no difference yet", needed=4200)])
    assert not decision.promote and decision.reason == "accuracy: no difference yet; about 4200 samples needed"
    assert promotion_decision([_found("accuracy", "a better")]).reason == "accuracy: a better"


def test_a_win_on_one_metric_does_not_excuse_a_loss_on_another() -> None:
    found = [_found("accuracy", "a better", -0.02), _found("auc_roc", "b better")]
    decision = promotion_decision(found, metric="auc_roc")
    assert not decision.promote and decision.reason == "auc_roc: b better, but a better on accuracy"


def test_a_metric_that_was_not_compared_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"--metric rmse: not compared here \(compared: accuracy, auc_roc\)"):
        promotion_decision([_found("accuracy", "b better"), _found("auc_roc", "b better")], metric="rmse")
    with pytest.raises(ValueError, match="no comparison"):
        promotion_decision([])
