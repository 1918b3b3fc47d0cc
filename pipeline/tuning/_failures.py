"""What a trial's failure was: the system's (retried by Tune) or the model's (told once, never retried).

Tune retries every failure up to ``max_failures`` alike. A trial whose worker, node or Spark actor was lost
may well succeed again; an MLlib error (a hyperparameter MLlib refuses) fails the same way every time, so
the trial ends with it as its result instead of raising: Tune has nothing to retry.
"""

from __future__ import annotations

import re

# The key of a trial's last result when MLlib refused it (a trial with this key failed; see run_trial).
TRIAL_ERROR = "trial_error"

# Spark's words for work lost with its executor (a node died) when the job gave up on it: not the model's.
_LOST_EXECUTOR = ("ExecutorLostFailure", "Executor lost", "executor lost")
_EXCEPTION_LINE = re.compile(r"([\w.$]+(?:Exception|Error)): (.*\S)")


def is_system_failure(error: BaseException) -> bool:
    """A lost actor, worker, node or object (Ray's own errors), or Spark work lost with an executor; not an
    exception that the model's code raised (whether Ray could carry it across whole or not)."""
    from ray.exceptions import RayTaskError

    lost = _lost_kinds()
    if isinstance(error, RayTaskError):
        # The cause is an actor method's exception; a lost kind there means it lost something itself (an actor
        # it called died). PySpark's exceptions hold Java objects and arrive as UnserializableException: the
        # model's, like any other exception of the method.
        return isinstance(getattr(error, "cause", None), lost) or any(m in str(error) for m in _LOST_EXECUTOR)
    return isinstance(error, lost)


def _lost_kinds() -> tuple[type[BaseException], ...]:
    from ray import exceptions

    return (
        exceptions.RayActorError,
        exceptions.WorkerCrashedError,
        exceptions.NodeDiedError,
        exceptions.LocalRayletDiedError,
        exceptions.ObjectLostError,
        exceptions.OutOfMemoryError,
        exceptions.ActorPlacementGroupRemoved,
        exceptions.TaskPlacementGroupRemoved,
    )


def root_cause(error: BaseException) -> str:
    """The underlying exception's line (MLlib's own message), not Ray's or Tune's wrappers."""
    candidates = [
        f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"
        for match in map(_EXCEPTION_LINE.search, str(error).splitlines())
        if match
        and not any(wrapper in match.group(1) for wrapper in ("RayTaskError", "TuneError", "RayActorError"))
    ]
    if candidates:
        return candidates[-1][:500]
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:500]}"
