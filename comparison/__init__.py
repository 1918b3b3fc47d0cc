"""Statistics for comparing two models: offline tests paired on the same rows, an online test on routed
traffic that stays valid whenever it is read, and the verdict; and for trusting what is compared: served
inputs against the training data's profile (drift) and the routed split against the weights (sample ratio
mismatch). Pure (numpy, scipy, statsmodels): no Spark, Ray, MLflow or Serve, so the CLI and the serving app
can share it."""

from comparison._drift import (
    CategoricalProfile,
    DriftReport,
    DriftThresholds,
    FeatureDrift,
    NumericProfile,
    Profile,
    categorical_profile,
    drift_report,
    numeric_profile,
    profile_as_json,
    profile_from_json,
)
from comparison._multiple import holm, holm_corrected
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
from comparison._srm import SRM_ALPHA, SampleRatioCheck, sample_ratio_mismatch

__all__ = [
    "MIN_SAMPLES",
    "ONLINE_METRICS",
    "SRM_ALPHA",
    "Arm",
    "Breach",
    "CategoricalProfile",
    "Comparison",
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "Guardrail",
    "NumericProfile",
    "Profile",
    "PromotionDecision",
    "SampleRatioCheck",
    "Verdict",
    "auc",
    "categorical_profile",
    "compare_auc",
    "compare_correctness",
    "compare_errors",
    "compare_ndcg",
    "compare_routed",
    "compare_sequential",
    "compare_shadowed",
    "compare_silhouette",
    "decide",
    "drift_report",
    "guardrail",
    "half_width",
    "holm",
    "holm_corrected",
    "log_likelihood_ratio",
    "ndcg_at_k",
    "numeric_profile",
    "paired_samples_needed",
    "profile_as_json",
    "profile_from_json",
    "promotion_decision",
    "row_values",
    "sample_ratio_mismatch",
    "samples_for_power",
]
