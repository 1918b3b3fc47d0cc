"""The application's assembly: the ingress bound to one deployment per Spark-scored variant, the state
actor and the prediction log's table created first (on the driver, before any replica starts)."""

from typing import Any

from ray import serve

from serving._app import INGRESS_NAME, build_ingress
from serving._contract import VariantInputs
from serving._feedback import create_feedback_table
from serving._prediction_log import create_log_table
from serving._settings import AppSettings
from serving._state import start_state
from serving._variants import VariantAnswer, VariantInfo, VariantSlot
from serving._watch import start_watcher, stop_watcher


@serve.deployment(ray_actor_options={"num_cpus": 0})
class SparkVariant:
    """A variant scored by Spark (MLflow pyfunc, a local JVM): kept out of the ingress replicas."""

    def __init__(self, variant: str, settings: AppSettings) -> None:
        self.slot = VariantSlot(variant, settings.variants[variant].source, allow_spark=True)

    def info(self) -> VariantInfo:
        return self.slot.info()

    def reload(self) -> dict[str, Any]:
        return self.slot.reload()

    def score(self, payload: dict[str, Any], ignore: str | None) -> VariantAnswer:
        return self.slot.score(payload, ignore)

    def recommend(self, payload: dict[str, Any], ignore: str | None) -> VariantAnswer:
        return self.slot.recommend(payload, ignore)

    def inputs(self) -> VariantInputs | None:
        return self.slot.inputs()


def variant_deployment(variant: str) -> str:
    """Serve's name of a Spark-scored variant's deployment."""
    return f"variant-{variant}"


def _scaling(autoscaling: dict[str, Any] | None, replicas: int, max_per_node: int | None) -> dict[str, Any]:
    """A deployment's replica options: Serve's autoscaling or a fixed count, and the per-node cap."""
    options: dict[str, Any] = (
        {"autoscaling_config": autoscaling} if autoscaling is not None else {"num_replicas": replicas}
    )
    if max_per_node is not None:
        options["max_replicas_per_node"] = max_per_node
    return options


def build_application(settings: AppSettings, state_timeout: float | None = None) -> Any:
    """The Serve application: the ingress (scoring ONNX variants itself) bound to one deployment per
    Spark-scored variant; the state actor is started first (waiting at most ``state_timeout`` seconds)."""
    if settings.prediction_log is not None:  # first: a bucket that cannot be reached stops it all in one line
        create_log_table(settings.prediction_log)  # here, once: the replicas only append
    if settings.feedback is not None:
        create_feedback_table(settings.feedback)
    start_state(settings.app_name, settings.initial_weights, state_timeout)
    if settings.watch is not None:
        start_watcher(settings.watch)  # replaces the watcher of a previous deploy
    else:
        stop_watcher(settings.app_name)
    remote = {}
    for name, variant in settings.variants.items():
        if not variant.remote:
            continue
        options: dict[str, Any] = {
            "name": variant_deployment(name),
            "ray_actor_options": {"num_cpus": variant.cpus},
            "max_ongoing_requests": settings.max_ongoing_requests,
            "logging_config": {"enable_access_log": False},  # the ingress logs every HTTP request already
        }
        options.update(_scaling(variant.autoscaling, variant.replicas, settings.max_replicas_per_node))
        remote[name] = SparkVariant.options(**options).bind(name, settings)  # type: ignore[attr-defined]
    ingress: dict[str, Any] = {
        "name": INGRESS_NAME,
        "ray_actor_options": {"num_cpus": 0},
        # Serve's default (5) makes concurrent clients queue and back off: scoring takes well under 1 ms.
        "max_ongoing_requests": settings.max_ongoing_requests,
    }
    per_node = settings.max_replicas_per_node
    ingress.update(_scaling(settings.ingress_autoscaling, settings.ingress_replicas, per_node))
    router = serve.deployment(**ingress)(build_ingress(settings))
    return router.bind(remote, settings)
