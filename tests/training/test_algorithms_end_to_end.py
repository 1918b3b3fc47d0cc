"""Every algorithm trains through the CLI's code path on small data, beats a trivial baseline, and is
registered with the scorer the parity gate chose (ONNX, or Spark with the reason)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.algorithms import ALGORITHMS
from pipeline.evaluation import is_better, primary_metric
from pipeline.tracking import list_versions
from pipeline.training import render_report
from tests.conftest import example_config

# How much better than the trivial baseline each task's primary metric must be.
MARGINS = {"classification": 0.1, "regression": 0.25, "clustering": 0.2, "recommendation": 0.05}
# No ONNX converter (yet) for these; they are served by the Spark fallback, and say why.
SPARK_SCORED: dict[str, str] = {}


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_algorithm_trains_registers_and_beats_baseline(
    trainings: Any, lake: Path, tmp_path: Path, name: str
) -> None:
    config = example_config(
        name, lake, tracking={"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_location": str(tmp_path / "art")}
    )
    run = trainings.train_and_register(config)
    trained = run.trained
    task = ALGORITHMS[name].task
    metric = primary_metric(task)
    value, baseline = trained.metrics[metric], trained.baseline[metric]
    assert is_better(metric, value, baseline), (metric, value, baseline)
    relative = abs(value - baseline) / max(abs(baseline), 1e-9)
    assert relative >= MARGINS[task] or abs(value - baseline) >= MARGINS[task], (metric, value, baseline)
    assert run.registration.version == "1" and run.registration.alias == "champion"
    (version,) = list_versions(config.tracking)
    assert version.tags["data.delta_version"] == "0"
    assert f"test_{metric}" in version.metrics
    if name in SPARK_SCORED:
        assert version.tags["scorer"] == "spark" and SPARK_SCORED[name] in version.tags["scorer.reason"]
    else:
        assert version.tags["scorer"] == "onnx", version.tags.get("scorer.reason")
        assert int(version.tags["scorer.parity_rows"]) > 0
    report = render_report(trained)
    assert metric in report and "(better)" in report
    if task == "recommendation":  # beside the most-popular-items recommender's, on the same test users
        assert {"precision_at_k", "ndcg_at_k"} <= set(trained.metrics) & set(trained.baseline)
        assert all(0 <= trained.baseline[name] <= 1 for name in ("precision_at_k", "ndcg_at_k")), trained.baseline
        import mlflow

        logged = (
            mlflow.MlflowClient(tracking_uri=config.tracking.uri).get_run(run.registration.run_id).data.metrics
        )
        assert {"baseline_precision_at_k", "baseline_ndcg_at_k"} <= set(logged), logged
    if name in ("random_forest", "gbt", "decision_tree", "logistic_regression", "linear_regression", "glm"):
        assert trained.weights and all(isinstance(w, float) for _, w in trained.weights)
    _assert_plots_logged(config, run.registration.run_id, trained, task)


def _assert_plots_logged(config: Any, run_id: str, trained: Any, task: str) -> None:
    """The run's plots/ folder holds exactly the task's figures (and the weights' when there are any)."""
    import mlflow

    expected = {
        "classification": {"confusion_matrix.png"},
        "regression": {"predicted_vs_actual.png", "residuals.png"},
        "clustering": {"cluster_sizes.png"},
        "recommendation": set(),
    }[task]
    if task == "classification" and trained.prepared.label_classes == 2 and trained.sample.probability is not None:
        expected |= {"roc_curve.png", "pr_curve.png"}
    if trained.weights:
        expected.add("feature_importances.png" if trained.weights_kind == "importance" else "coefficients.png")
    if task != "recommendation":
        assert trained.sample.rows == trained.sample.of == trained.test_rows  # small data: every test row
    client = mlflow.MlflowClient(tracking_uri=config.tracking.uri)
    logged = {
        item.path.removeprefix("plots/"): item.file_size or 0 for item in client.list_artifacts(run_id, "plots")
    }
    assert set(logged) == expected
    assert all(size > 5000 for size in logged.values()), logged
