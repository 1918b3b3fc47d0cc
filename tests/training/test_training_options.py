"""k-fold CV, feature selection and very wide sparse features, through the training code path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline._console import Console
from pipeline.features import FEATURES_COL
from pipeline.training import render_report, train
from tests.conftest import example_config


def test_cross_validation_reports_mean_and_std(spark: Any, lake: Path) -> None:
    config = example_config(
        "random_forest",
        lake,
        model={"algorithm": "random_forest", "hyperparameters": {"numTrees": 5, "maxDepth": 4}},
        evaluation={"cv_folds": 3},
    )
    trained = train(spark, config, Console(quiet=True))
    mean, std = trained.cv["auc_roc"]
    assert 0.5 < mean <= 1.0 and 0.0 <= std < 0.2
    assert set(trained.cv) == set(trained.metrics)
    assert "cv mean ± std" in render_report(trained)


def test_feature_selection_lists_kept_features(spark: Any, lake: Path) -> None:
    config = example_config(
        "logistic_regression",
        lake,
        features={
            "selection": {"variance_threshold": 0.0, "univariate": {"mode": "numTopFeatures", "threshold": 5}}
        },
    )
    trained = train(spark, config, Console(quiet=True))
    assert trained.kept_features is not None and len(trained.kept_features) == 5
    assert all(not name.startswith("f") or "_" in name for name in trained.kept_features)  # real names
    assert "Feature selection kept 5" in render_report(trained)


def test_ten_thousand_sparse_features_stay_sparse(spark: Any, lake: Path) -> None:
    from pyspark.ml.linalg import SparseVector

    config = example_config(
        "logistic_regression",
        lake,
        data={"source": {"path": str(lake / "data" / "demo" / "transactions")}, "label": "label"},
        features={
            "columns": {
                "user_id": {"type": "hashed", "num_features": 16384},
                "transaction_id": {"type": "hashed", "num_features": 16384},
                "amount": {"type": "numeric"},
            },
            "infer": False,
        },
        model={"algorithm": "logistic_regression", "hyperparameters": {"maxIter": 20}},
    )
    trained = train(spark, config, Console(quiet=True))
    vector = trained.model.transform(trained.prepared.test.limit(1)).first()[FEATURES_COL]
    assert vector.size == 16384 + 1
    assert isinstance(vector, SparseVector) and len(vector.indices) <= 3
    assert trained.metrics["auc_roc"] > 0.5
