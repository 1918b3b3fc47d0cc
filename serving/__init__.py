"""Ray Serve champion/challenger serving: ONNX variants scored inside the ingress replicas (one hop), Spark
fallback variants in deployments of their own. The scorer itself is the top-level ``scoring`` package.

What this package exports is its public surface (``deploy``/``undeploy``, the routing rule, the prediction
log's readers, the online comparison); the rest is private, one job a module:

- one ingress replica is ``_app`` (the ``Router`` class and ``build_ingress``, which only assembles its
  routes) over parts that hold the logic: ``_directory`` (the loaded versions, what a ``model_id`` reaches,
  the bounded call to a variant), ``_accounting`` (request counts and Ray metrics), ``_log_writer`` (the
  prediction log's writes ahead and commits; ``_prediction_log`` its table, ``_wal`` its files),
  ``_shadowing``, ``_admin`` (weights, feedback, the bearer token), ``_training`` (``POST /train`` as a Ray
  Job); the pure ones are ``_requests`` (request checks), ``_contract`` (the OpenAPI document),
  ``_settings`` and ``routing``;
- ``_variants`` is a loaded version answering requests, ``_registry`` the MLflow client that finds it;
- ``_state`` holds the live weights and counts, ``_watch`` the experiment watcher that promotes or rolls
  back by itself (the analysis in ``_experiment``, its record in ``pipeline.tracking.registry``);
- ``_assembly`` binds the deployments, ``_deploy`` runs them within ``serving.ready_timeout_s``.

Of ``pipeline`` it uses the public surfaces only (``pipeline.tracking.registry`` and ``facts``,
``pipeline.runtime.java`` and ``resources``, ``pipeline.config``): never Spark.
"""

from serving._deploy import Endpoints, ServingError, app_from_args, app_settings, deploy, undeploy, wait_ready
from serving._experiment import (
    ExperimentRules,
    OnlineReport,
    experiment_rules,
    log_online_comparison,
    online_report,
)
from serving._feedback import FeedbackReport, Outcome, create_feedback_table, record_feedback
from serving._prediction_log import is_delta_table, logged_request
from serving._state import shadow_log

__all__ = [
    "Endpoints",
    "ExperimentRules",
    "FeedbackReport",
    "OnlineReport",
    "Outcome",
    "ServingError",
    "app_from_args",
    "app_settings",
    "create_feedback_table",
    "deploy",
    "experiment_rules",
    "is_delta_table",
    "log_online_comparison",
    "logged_request",
    "online_report",
    "record_feedback",
    "shadow_log",
    "undeploy",
    "wait_ready",
]
