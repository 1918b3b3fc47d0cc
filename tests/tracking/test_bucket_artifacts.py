"""MLflow artifacts in a bucket (``tracking.artifact_location: s3://...``, on moto's S3 server): a registered
version's Spark model and ONNX scorer are written there, and nothing in a local artifact folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from pipeline.storage import filesystem, parse_location
from pipeline.tracking import load_spark_model
from tests.conftest import S3_SECRET, example_config


def test_a_version_registered_with_artifacts_in_a_bucket_loads_back_from_it(
    trainings: Any, lake: Path, tmp_path: Path, bucket: str
) -> None:
    tracking = {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_location": f"s3://{bucket}/artifacts"}
    config = example_config("logistic_regression", lake, tracking=tracking)
    run = trainings.train_and_register(config)
    version = run.registration.version

    fs, root = filesystem(parse_location(f"s3://{bucket}/artifacts", "t"))
    keys = [info.path for info in fs.get_file_info(pafs.FileSelector(root, recursive=True))]
    assert any(key.endswith("/MLmodel") for key in keys), keys  # the models' descriptors, in the bucket
    assert any(key.endswith(".onnx") for key in keys), keys
    assert not any(path.name == "MLmodel" for path in tmp_path.rglob("*")), "an artifact was written locally"

    model = load_spark_model(config.tracking, str(version))  # downloaded from the bucket
    frame = run.trained.prepared.test.limit(20)
    expected = [row.prediction for row in run.trained.model.transform(frame).select("prediction").collect()]
    assert [row.prediction for row in model.transform(frame).select("prediction").collect()] == expected
    assert S3_SECRET not in str(config.model_dump()) and S3_SECRET not in (
        tmp_path / "mlflow.db"
    ).read_bytes().decode("latin-1")
