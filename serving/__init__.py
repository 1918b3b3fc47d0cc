"""Ray Serve champion/challenger serving: ONNX variants scored inside the ingress replicas (one hop), Spark
fallback variants in deployments of their own. The scorer itself is the top-level ``scoring`` package."""

from serving._deploy import Endpoints, ServingError, app_from_args, app_settings, deploy, undeploy, wait_ready
from serving._experiment import (
    ExperimentRules,
    OnlineReport,
    experiment_rules,
    log_online_comparison,
    online_report,
)
from serving._feedback import FeedbackReport, Outcome, create_feedback_table, record_feedback
from serving._prediction_log import logged_request
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
    "log_online_comparison",
    "logged_request",
    "online_report",
    "record_feedback",
    "shadow_log",
    "undeploy",
    "wait_ready",
]
