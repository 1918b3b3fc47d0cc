"""MLflow: one run per training, the fitted Spark pipeline as a registered version, aliases, lineage."""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.config import PipelineConfig, TrackingConfig
from pipeline.export import ExportResult
from pipeline.tracking._training_plots import training_figures
from pipeline.tracking._versions import (
    VersionSummary,
    connect,
    register_version,
)
from pipeline.tracking.facts import (
    LINEAGE_TAGS,
    SCORER_MAX_DIFFERENCE_TAG,
    SCORER_PARITY_ROWS_TAG,
    SCORER_REASON_TAG,
    SCORER_TAG,
    model_uri,
    version_uri,
)
from scoring import SCORER_ARTIFACT, SCORER_FACTORS, SCORER_ONNX, SCORER_SPEC

if TYPE_CHECKING:
    from pipeline.training import TrainedModel

MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class Registration:
    run_id: str
    experiment_id: str
    model_name: str
    version: str
    alias: str | None
    model_uri: str
    scorer: str = ""
    scorer_reason: str = ""


def config_hash(config: PipelineConfig) -> str:
    """A short, stable hash of the resolved config (what exactly was asked for)."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def log_training(
    config: PipelineConfig,
    trained: TrainedModel,
    exported: ExportResult,
    register: bool = True,
    parent_run_id: str | None = None,
) -> Registration:
    """Log one training and its exported scorer as an MLflow run (nested under ``parent_run_id`` if given)
    and register its model; the scorer tags say which scorer serves the version."""
    import mlflow

    client = connect(config.tracking)
    prepared = trained.prepared
    tags = {
        **prepared.snapshot.lineage(),
        "config_hash": config_hash(config),
        "task": prepared.task,
        "algorithm": prepared.algorithm.name,
        "train_rows": str(trained.train_rows),
        "test_rows": str(trained.test_rows),
    }
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    with mlflow.start_run(run_name=f"train-{prepared.algorithm.name}", tags=tags) as run:
        mlflow.log_params(
            {
                "algorithm": prepared.algorithm.name,
                **{f"hp.{key}": value for key, value in prepared.hyperparameters.items()},
                "test_fraction": config.data.split.test_fraction,
                "split_seed": config.data.split.seed,
                "cv_folds": config.evaluation.cv_folds or 0,
                "feature_columns": len(prepared.input_columns),
            }
        )
        mlflow.log_metrics(_flat_metrics(trained))
        with _artifact_dir() as folder:
            (folder / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
            if prepared.spec is not None:
                spec = {"features": prepared.spec.as_config(), "reasons": prepared.spec.reasons}
                spec["dropped"] = prepared.spec.dropped
                (folder / "feature_spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            if trained.weights:
                (folder / "weights.json").write_text(
                    json.dumps({"kind": trained.weights_kind, "top": trained.weights})
                )
            mlflow.log_artifacts(str(folder))
        for name, figure in training_figures(
            prepared.task, trained.sample, trained.weights, trained.weights_kind
        ).items():
            mlflow.log_figure(figure, f"plots/{name}")
        info = _log_spark_model(trained)
        _log_scorer(exported)
        scorer = scorer_tags(exported)
        tags.update(scorer)  # the registered version gets them too
        mlflow.set_tags(scorer)
        if not register:
            return Registration(
                run.info.run_id,
                run.info.experiment_id,
                "",
                "",
                None,
                info.model_uri,
                exported.scorer,
                exported.reason,
            )
        version, alias = register_version(client, config.tracking, info.model_uri, tags)
        return Registration(
            run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
            model_name=config.tracking.registered_model,
            version=version,
            alias=alias,
            model_uri=version_uri(config.tracking.registered_model, version),
            scorer=exported.scorer,
            scorer_reason=exported.reason,
        )


def _flat_metrics(trained: TrainedModel) -> dict[str, float]:
    metrics = {f"test_{name}": value for name, value in trained.metrics.items()}
    metrics.update({f"baseline_{name}": value for name, value in trained.baseline.items()})
    for name, (mean, std) in trained.cv.items():
        metrics[f"cv_{name}_mean"] = mean
        metrics[f"cv_{name}_std"] = std
    metrics["train_seconds"] = trained.seconds
    return metrics


@contextmanager
def _artifact_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pipeline-artifacts-") as folder:
        yield Path(folder)


def _log_spark_model(trained: TrainedModel) -> Any:
    """Log the PipelineModel with a signature and explicit requirements (fast: no JVM is started)."""
    import mlflow
    import pyspark
    from mlflow.models import infer_signature

    prepared = trained.prepared
    # From 20 scored rows, not from the Spark schema alone (tried: no Spark job, but an integer column
    # with nulls, which the pipeline imputes, is then typed integer and the Spark fallback refuses a
    # real row with a missing value; pandas reads such a column as float when the rows hold a null).
    sample = prepared.test.select(*prepared.input_columns).limit(20)
    scored: Any = trained.model.transform(sample).toPandas()
    output_cols = [c for c in ("prediction",) if c in scored.columns]
    with warnings.catch_warnings():
        # MLflow warns that integer columns cannot hold missing values; nulls are imputed by the pipeline.
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(scored[prepared.input_columns], scored[output_cols] if output_cols else None)
    return mlflow.spark.log_model(
        trained.model,
        artifact_path=MODEL_ARTIFACT,
        signature=signature,
        pip_requirements=[f"pyspark=={pyspark.__version__}"],
    )


def scorer_tags(exported: ExportResult) -> dict[str, str]:
    """Tags that tell serving which scorer to load, and why it is not ONNX when it is not."""
    tags = {SCORER_TAG: exported.scorer, SCORER_PARITY_ROWS_TAG: str(exported.rows_compared)}
    if exported.max_difference is not None:
        tags[SCORER_MAX_DIFFERENCE_TAG] = f"{exported.max_difference:.3g}"
    if exported.reason:
        tags[SCORER_REASON_TAG] = exported.reason[:4000]
    return tags


def _log_scorer(exported: ExportResult) -> None:
    """Log the exported graph (if any) and its input spec beside the Spark model."""
    import mlflow

    with _artifact_dir() as folder:
        (folder / SCORER_SPEC).write_text(exported.spec.to_json())
        if exported.onnx is not None:
            (folder / SCORER_ONNX).write_bytes(exported.onnx)
        if exported.factors is not None:
            (folder / SCORER_FACTORS).write_bytes(exported.factors)
        mlflow.log_artifacts(str(folder), artifact_path=SCORER_ARTIFACT)


def load_spark_model(tracking: TrackingConfig, reference: str) -> Any:
    """The registered PipelineModel by version number or alias (``champion``, ``@challenger``)."""
    import mlflow

    connect(tracking)
    return mlflow.spark.load_model(model_uri(tracking.registered_model, reference))


def model_inputs(tracking: TrackingConfig, version: str) -> list[tuple[str, str]]:
    """The registered version's input columns and their MLflow types (``double``, ``string``...), from the
    signature logged with it; [] for a version logged without one."""
    import mlflow

    connect(tracking)
    signature = mlflow.models.get_model_info(version_uri(tracking.registered_model, version)).signature
    if signature is None or signature.inputs is None:
        return []
    return [(str(column.name), str(column.type.name)) for column in signature.inputs.inputs]


def version_lineage(summary: VersionSummary) -> Mapping[str, str]:
    return {key: summary.tags[key] for key in LINEAGE_TAGS if key in summary.tags}
