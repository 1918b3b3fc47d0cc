"""The model registry without Spark: connecting to MLflow, the serving aliases, the registered versions.
Kept apart from the training side (which imports Spark and the ONNX export) so that the serving app's
experiment watcher can move aliases."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import StoreURI, TrackingConfig
from pipeline.errors import PipelineError
from pipeline.tracking.facts import ALGORITHM_TAG, CHALLENGER, CHAMPION, SAW_CHAMPION

if TYPE_CHECKING:
    from mlflow import MlflowClient

CONTENDING_SECONDS = 600
_ALIAS_ATTEMPTS = 5


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
    if isinstance(tracking.artifact_location, StoreURI):  # MLflow's own S3 store (boto3, the AWS environment)
        location = str(tracking.artifact_location)
    elif not tracking.uri.startswith(("http://", "https://")):  # a server keeps artifacts in its own store
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


def register_version(
    client: MlflowClient, tracking: TrackingConfig, model_uri: str, tags: dict[str, str]
) -> tuple[str, str | None]:
    """Register the logged model at ``model_uri`` as a new version of the configured model and apply the
    configured alias; returns the version and the alias it got. A version whose alias could not be set is
    deleted again, so that the registry never holds a version the config did not place."""
    import mlflow

    if tracking.alias == "auto":  # what this job saw, recorded in the same write as the version (see below)
        tags = {**tags, SAW_CHAMPION: alias_version(client, tracking.registered_model, CHAMPION) or "none"}
    version = str(mlflow.register_model(model_uri, tracking.registered_model, tags=tags).version)
    return version, _set_alias(client, tracking, version)


def _set_alias(client: MlflowClient, tracking: TrackingConfig, version: str) -> str | None:
    """Apply the configured alias; if that fails, remove the new version so the registry stays consistent."""
    try:
        alias: str | None
        if tracking.alias == "none":
            alias = None
        elif tracking.alias == "auto":
            return _auto_alias(client, tracking.registered_model, version)
        else:
            alias = tracking.alias
        if alias is not None:
            set_alias(client, tracking.registered_model, alias, version)
        return alias
    except BaseException:
        client.delete_model_version(tracking.registered_model, version)
        raise


def _auto_alias(client: MlflowClient, model: str, version: str) -> str:
    """@champion for a version registered while the model had none, @challenger otherwise.

    Jobs registering at the same moment may all find no champion, and the registry has no compare-and-set
    (reading the alias back after setting it let two jobs each be told @champion: seen 1 round in 6 with
    four jobs on the PostgreSQL server). Version numbers are the registry's one atomic order, and each
    version carries what its job saw (``SAW_CHAMPION``), written with it: of the versions that saw none, the
    lowest wins, and every other job sees it, since a version is committed before the next number exists.
    Versions older than ``CONTENDING_SECONDS`` no longer contend (a job that died before setting its alias
    must not keep the next from becoming champion)."""
    mine = client.get_model_version(model, version)
    if mine.tags.get(SAW_CHAMPION) == "none":
        since = int(mine.creation_timestamp or 0) - CONTENDING_SECONDS * 1000
        earlier = [
            other.version
            for other in client.search_model_versions(f"name = '{model}'")
            if int(other.version) < int(version)
            and other.tags.get(SAW_CHAMPION) == "none"
            and int(other.creation_timestamp or 0) >= since
        ]
        if not earlier:
            set_alias(client, model, CHAMPION, version)
            return CHAMPION
    set_alias(client, model, CHALLENGER, version)
    return CHALLENGER


def set_alias(client: MlflowClient, model: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``. MLflow's server sets an alias by a read, then an insert or an update:
    two jobs setting the same new alias at once make the second insert fail on the table's key
    (``UniqueViolation`` on PostgreSQL; seen in CI, and the likely cause of issue 28's exit 1). The row
    exists by then, so the same call again updates it: retried a few times, briefly."""
    from mlflow.exceptions import MlflowException

    for attempt in range(_ALIAS_ATTEMPTS):
        try:
            client.set_registered_model_alias(model, alias, version)
            return
        except MlflowException as error:
            said = str(error)
            collided = "UniqueViolation" in said or "UNIQUE constraint" in said or "IntegrityError" in said
            if not collided or attempt == _ALIAS_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.25))


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
                algorithm=version.tags.get(ALGORITHM_TAG, ""),
                metrics=metrics,
                tags=dict(version.tags),
            )
        )
    return summaries
