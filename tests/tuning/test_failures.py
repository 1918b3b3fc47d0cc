"""Which trial failures are the system's (retried) and which the model's (told once): no cluster needed, the
errors are Ray's own exception classes, built as ``ray.get`` raises them."""

from __future__ import annotations

import pytest
from ray.exceptions import (
    ActorDiedError,
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayTaskError,
    UnserializableException,
    UserCodeException,
    WorkerCrashedError,
)

from pipeline.tuning._failures import is_system_failure, root_cause

MLLIB_REFUSAL = (
    "pyspark.errors.exceptions.captured.IllegalArgumentException: GeneralizedLinearRegression: "
    "binomial family does not support identity link"
)


def _raised_by_actor(cause: BaseException, traceback: str) -> RayTaskError:
    """What ``ray.get`` raises for an exception of an actor's method (Ray's wrapper around the cause)."""
    return RayTaskError("SparkTrainer.fit", traceback, cause).as_instanceof_cause()


@pytest.mark.parametrize(
    "error",
    [
        ActorDiedError(),
        WorkerCrashedError(),
        NodeDiedError("node 1 died"),
        ObjectLostError("ab" * 14, b"owner", ""),
        OutOfMemoryError("a worker was killed for memory"),
    ],
    ids=["actor died", "worker crashed", "node died", "object lost", "out of memory"],
)
def test_ray_losing_an_actor_worker_node_or_object_is_a_system_failure(error: BaseException) -> None:
    assert is_system_failure(error)


def test_an_actor_method_that_lost_an_actor_it_called_is_a_system_failure() -> None:
    assert is_system_failure(_raised_by_actor(ActorDiedError(), "Traceback ...\nActorDiedError: died"))


def test_spark_work_lost_with_its_executor_is_a_system_failure() -> None:
    lost = (
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 7.0 failed 4 "
        "times, most recent failure: ExecutorLostFailure (executor 2 exited caused by one of the running "
        "tasks) Reason: Executor heartbeat timed out"
    )
    assert is_system_failure(_raised_by_actor(RuntimeError(lost), f"Traceback ...\n{lost}"))


def test_mllib_refusing_a_hyperparameter_is_the_models_failure_and_its_reason_is_told() -> None:
    error = _raised_by_actor(ValueError(MLLIB_REFUSAL), f"Traceback (most recent call last):\n{MLLIB_REFUSAL}")
    assert not is_system_failure(error)
    assert not is_system_failure(UserCodeException("a user's function raised"))
    # What ray.get really raised for MLlib's refusal in a sweep: PySpark's exception holds Java objects, so
    # Ray carries it as an UnserializableException (a RayError: the first version took it for a lost one).
    carried = _raised_by_actor(UnserializableException(MLLIB_REFUSAL), f"Traceback ...\n{MLLIB_REFUSAL}")
    assert not is_system_failure(carried)
    assert not is_system_failure(ValueError("not a Ray error at all"))
    # MLlib's own line, without the Python package path or Ray's wrapper.
    assert root_cause(error) == (
        "IllegalArgumentException: GeneralizedLinearRegression: binomial family does not support identity link"
    )
