"""Ray Serve champion/challenger serving with a JVM-free (ONNX) scorer and a Spark fallback.

Light imports only here: ``serving.scoring`` and ``serving.routing`` are pure and used outside Serve.
"""

from serving._deploy import Endpoints, ServingError, app_settings, deploy, undeploy, wait_ready

__all__ = ["Endpoints", "ServingError", "app_settings", "deploy", "undeploy", "wait_ready"]
