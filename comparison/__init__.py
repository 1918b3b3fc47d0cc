"""Statistics for comparing two models: offline tests paired on the same rows, an online test on routed
traffic that stays valid whenever it is read, and the verdict. Pure (numpy, scipy, statsmodels): no
Spark, Ray, MLflow or Serve, so the CLI and the serving app can share it."""

from comparison._offline import (
    auc,
    compare_auc,
    compare_correctness,
    compare_errors,
    compare_ndcg,
    compare_silhouette,
    ndcg_at_k,
    paired_samples_needed,
)
from comparison._online import (
    ONLINE_METRICS,
    Breach,
    Guardrail,
    compare_routed,
    compare_shadowed,
    guardrail,
    row_values,
)
from comparison._promotion import PromotionDecision, promotion_decision
from comparison._result import Comparison, Verdict, decide
from comparison._sequential import (
    MIN_SAMPLES,
    Arm,
    compare_sequential,
    half_width,
    log_likelihood_ratio,
    samples_for_power,
)

__all__ = [
    "MIN_SAMPLES",
    "ONLINE_METRICS",
    "Arm",
    "Breach",
    "Comparison",
    "Guardrail",
    "PromotionDecision",
    "Verdict",
    "auc",
    "compare_auc",
    "compare_correctness",
    "compare_errors",
    "compare_ndcg",
    "compare_routed",
    "compare_sequential",
    "compare_shadowed",
    "compare_silhouette",
    "decide",
    "guardrail",
    "half_width",
    "log_likelihood_ratio",
    "ndcg_at_k",
    "paired_samples_needed",
    "promotion_decision",
    "row_values",
    "samples_for_power",
]
