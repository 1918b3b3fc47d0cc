"""The model registry without Spark: connecting to MLflow, the serving aliases, the registered versions.
Kept apart from the training side (which imports Spark and the ONNX export) so that the serving app's
experiment watcher can move aliases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import TrackingConfig
from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"


class RegistryError(PipelineError):
    """A registry operation that cannot be done (unknown model or version, unreachable store)."""


@dataclass(frozen=True)
class VersionSummary:
    version: str
    aliases: list[str]
    run_id: str
    algorithm: str
    metrics: dict[str, float]
    tags: dict[str, str]


def connect(tracking: TrackingConfig) -> MlflowClient:
    """Point MLflow at the configured store (creating a sqlite file's folder) and the experiment."""
    import mlflow

    if tracking.uri.startswith("sqlite:///"):
        Path(tracking.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking.uri)
    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    if client.get_experiment_by_name(tracking.experiment) is None:
        _create_experiment(client, tracking)
    mlflow.set_experiment(tracking.experiment)
    return client


def _create_experiment(client: MlflowClient, tracking: TrackingConfig) -> None:
    from mlflow.exceptions import MlflowException

    location = None
    if not tracking.uri.startswith(("http://", "https://")):  # a server keeps artifacts in its own store
        Path(tracking.artifact_location).mkdir(parents=True, exist_ok=True)
        location = Path(tracking.artifact_location).as_uri()
    try:
        client.create_experiment(tracking.experiment, artifact_location=location)
    except MlflowException as error:  # a job started at the same moment created it first
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def alias_version(client: MlflowClient, model: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def list_versions(tracking: TrackingConfig) -> list[VersionSummary]:
    """Every registered version of the configured model, newest first, with aliases and test metrics."""
    client = connect(tracking)
    versions = client.search_model_versions(f"name = '{tracking.registered_model}'")
    if not versions:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(tracking.registered_model).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    summaries = []
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        run = client.get_run(version.run_id) if version.run_id else None
        metrics = {k: v for k, v in (run.data.metrics if run else {}).items() if k.startswith("test_")}
        summaries.append(
            VersionSummary(
                version=str(version.version),
                aliases=sorted(aliases.get(str(version.version), [])),
                run_id=version.run_id or "",
                algorithm=version.tags.get("algorithm", ""),
                metrics=metrics,
                tags=dict(version.tags),
            )
        )
    return summaries
