"""`POST /train` as Ray Jobs: submitting `python -m pipeline train` and reading a job's outcome."""

from __future__ import annotations

import shlex
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.tracking.facts import TrainOutcome
from serving._paths import PathNotAllowed, confine_path
from serving._requests import Refused, TrainRequest, parse_json
from serving._settings import AppSettings

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def result_file(app: AppSettings, job_id: str) -> Path:
    """Where the job writes its outcome (``python -m pipeline train --result``): JSON, read by GET /train/{id}."""
    assert app.jobs_dir is not None
    return Path(app.jobs_dir) / f"{job_id}.json"


def start_training(app: AppSettings, body: bytes) -> dict[str, str]:
    """Check a `POST /train` body and submit the job; raises Refused naming the field and the reason."""
    try:
        asked = TrainRequest.model_validate(parse_json(body))
    except ValidationError as error:
        first = error.errors()[0]
        raise Refused(422, ".".join(str(part) for part in first["loc"]) or "body", first["msg"]) from error
    if asked.algorithm not in app.algorithms:
        raise Refused(422, "algorithm", f"{asked.algorithm!r} is not one of {list(app.algorithms)}")
    try:
        data_path = confine_path(asked.data_path, app.data_roots)
    except PathNotAllowed as error:
        raise Refused(403, "data_path", str(error)) from error
    if app.config_file is None or app.dashboard_url is None:
        raise Refused(
            503, "train", "training jobs need the Ray dashboard and the deployed config (ray.dashboard: true)"
        )
    try:
        job_id = submit_training(app, asked, data_path)
    except (RuntimeError, ConnectionError) as error:
        raise Refused(503, "train", f"Ray Jobs did not take the job: {error}") from error
    return {"id": job_id, "status": "PENDING", "status_url": f"/train/{job_id}"}


def submit_training(app: AppSettings, asked: TrainRequest, data_path: str) -> str:
    """A Ray Job running `python -m pipeline train` on the deployed config with the request's overrides."""
    from ray.job_submission import JobSubmissionClient

    assert app.config_file is not None and app.dashboard_url is not None
    job_id = f"train-{uuid.uuid4().hex[:12]}"
    env = {
        "PIPELINE__MODEL__ALGORITHM": asked.algorithm,
        "PIPELINE__MODEL__HYPERPARAMETERS": "{}",
        "PIPELINE__DATA__SOURCE__PATH": data_path,
        "PIPELINE__RAY__ADDRESS": "auto",  # join this cluster, in a namespace of its own (RayDP: one app each)
        "PIPELINE__RAY__NAMESPACE": job_id,
    }
    if asked.format is not None:
        env["PIPELINE__DATA__SOURCE__FORMAT"] = asked.format
    entrypoint = (
        f"{shlex.quote(app.python)} -m pipeline train --config {shlex.quote(app.config_file)} "
        f"--result {shlex.quote(str(result_file(app, job_id)))}"
    )
    client = JobSubmissionClient(app.dashboard_url)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.submit_job(
                entrypoint=entrypoint,
                submission_id=job_id,
                runtime_env={"env_vars": env},
                metadata={"algorithm": asked.algorithm, "data_path": data_path},
            )
            return job_id
        except RuntimeError as error:
            # A fresh cluster's job agent takes a few seconds to come up ("No available agent").
            if "No available agent" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def training_status(app: AppSettings, job_id: str) -> dict[str, Any] | None:
    """The job's Ray status, with the outcome it wrote once it ended (version, alias, metrics or error);
    None for a job Ray does not know."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(app.dashboard_url)
    try:
        info = client.get_job_info(job_id)
    except RuntimeError:
        return None
    status = str(info.status.value if hasattr(info.status, "value") else info.status)
    result: dict[str, Any] = {"id": job_id, "status": status, **(info.metadata or {})}
    if status not in TERMINAL:
        return result
    outcome = TrainOutcome.read(result_file(app, job_id))  # None: it died first (killed, out of memory)
    if outcome is not None:
        result.update({key: value for key, value in outcome.as_record().items() if key != "status"})
    if status != "SUCCEEDED" and not result.get("error"):
        result["error"] = info.message or "the job failed before it wrote a result; see its logs in the dashboard"
    return result
