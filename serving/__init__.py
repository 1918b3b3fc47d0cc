"""Ray Serve champion/challenger serving: ONNX variants scored inside the ingress replicas (one hop), Spark
fallback variants in deployments of their own. The scorer itself is the top-level ``scoring`` package."""

from serving._deploy import Endpoints, ServingError, app_from_args, app_settings, deploy, undeploy, wait_ready
from serving._state import shadow_log

__all__ = [
    "Endpoints",
    "ServingError",
    "app_from_args",
    "app_settings",
    "deploy",
    "shadow_log",
    "undeploy",
    "wait_ready",
]
