"""The leaderboard's rows (what leaderboard.csv holds and SweepResult.leaderboard shows), without MLflow."""

from __future__ import annotations

from pipeline.tracking import TrialRecord, best_config, leaderboard_rows


def test_rows_keep_the_order_and_give_every_hyperparameter_a_column() -> None:
    trials = [
        TrialRecord("t2", "random_forest", {"numTrees": 20}, {"auc_roc": 0.91, "fit_seconds": 2.0}, 3.04),
        TrialRecord("t1", "logistic_regression", {"regParam": 0.1}, {"auc_roc": 0.88}, 1.96),
        TrialRecord("t3", "glm", {"link": "identity"}, {}, 0.5, error="IllegalArgumentException: no"),
    ]
    rows = leaderboard_rows(trials, "auc_roc")
    assert [row["rank"] for row in rows] == [1, 2, 3] and [row["trial_id"] for row in rows] == ["t2", "t1", "t3"]
    assert rows[0] == {
        "rank": 1,
        "trial_id": "t2",
        "algorithm": "random_forest",
        "auc_roc": 0.91,
        "seconds": 3.0,
        "status": "ok",
        "error": None,
        "hp.link": None,
        "hp.numTrees": 20,
        "hp.regParam": None,
    }
    assert rows[2]["status"] == "failed" and rows[2]["auc_roc"] is None and rows[2]["hp.link"] == "identity"
    assert best_config(trials[0]) == {"algorithm": "random_forest", "hyperparameters": {"numTrees": 20}}
    assert best_config(None) == {}
