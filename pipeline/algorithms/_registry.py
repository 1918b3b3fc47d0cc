"""The 14 MLlib estimators: task, sensible defaults and the hyperparameters each accepts.

Pure data and checks (no Spark import), so configs are validated before any engine starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["classification", "regression", "clustering", "recommendation"]
ParamKind = Literal["int", "float", "str", "bool"]
TASKS: tuple[Task, ...] = ("classification", "regression", "clustering", "recommendation")


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter: its type and allowed range (inclusive) or choices."""

    kind: ParamKind
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or None when it is."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind == "str":
            if not isinstance(value, str):
                return f"must be one of {list(self.choices or ())}"
            if self.choices is not None and value not in self.choices:
                return f"must be one of {list(self.choices)}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {'an integer' if self.kind == 'int' else 'a number'}"
        if self.kind == "int" and not float(value).is_integer():
            return "must be an integer"
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}"
        return None

    def describe(self) -> str:
        if self.choices is not None:
            return "|".join(self.choices)
        if self.kind in ("int", "float") and (self.minimum is not None or self.maximum is not None):
            low = "-inf" if self.minimum is None else f"{self.minimum:g}"
            high = "inf" if self.maximum is None else f"{self.maximum:g}"
            return f"{self.kind} in [{low}, {high}]"
        return self.kind


def _int(low: float, high: float) -> ParamSpec:
    return ParamSpec("int", low, high)


def _float(low: float, high: float | None = None) -> ParamSpec:
    return ParamSpec("float", low, high)


def _choice(*options: str) -> ParamSpec:
    return ParamSpec("str", choices=options)


_BOOL = ParamSpec("bool")
_SEED = ParamSpec("int")
_TREE = {
    "maxDepth": _int(1, 30),
    "maxBins": _int(2, 10_000),
    "minInstancesPerNode": _int(1, 1_000_000),
    "minInfoGain": _float(0.0),
    "seed": _SEED,
}
_FOREST = {
    **_TREE,
    "subsamplingRate": _float(1e-6, 1.0),
    "numTrees": _int(1, 5_000),
    "featureSubsetStrategy": _choice("auto", "all", "onethird", "sqrt", "log2"),
    "bootstrap": _BOOL,
}
_BOOSTED = {
    **_TREE,
    "maxIter": _int(1, 5_000),
    "stepSize": _float(1e-6, 1.0),
    "subsamplingRate": _float(1e-6, 1.0),
}
_LINEAR = {
    "maxIter": _int(1, 100_000),
    "regParam": _float(0.0),
    "elasticNetParam": _float(0.0, 1.0),
    "tol": _float(0.0),
    "fitIntercept": _BOOL,
    "standardization": _BOOL,
}
_CLUSTERS = {"k": _int(2, 10_000), "maxIter": _int(1, 100_000), "seed": _SEED}
# GLM: which links each family accepts (tweedie takes linkPower instead of link).
GLM_LINKS: Mapping[str, tuple[str, ...]] = {
    "gaussian": ("identity", "log", "inverse"),
    "binomial": ("logit", "probit", "cloglog"),
    "poisson": ("log", "identity", "sqrt"),
    "gamma": ("inverse", "identity", "log"),
    "tweedie": (),
}


@dataclass(frozen=True)
class AlgorithmSpec:
    """An MLlib estimator as the pipeline knows it."""

    name: str
    task: Task
    estimator: str  # import path of the pyspark.ml class
    defaults: Mapping[str, Any]
    params: Mapping[str, ParamSpec]
    budget_param: str | None = None  # grows training effort (trees, iterations): for early stopping
    summary: str = ""
    extra_checks: tuple[str, ...] = field(default=())
    # Standard scaling subtracts the mean unless False. Spark's bisecting k-means splits a cluster by
    # nudging its center in proportion to the center's norm: data centred at the origin never splits.
    centered_features: bool = True

    def merged(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults with ``overrides`` applied (as given to the estimator)."""
        values = {**self.defaults, **overrides}
        if "glm_link" in self.extra_checks and "family" in overrides and "link" not in overrides:
            canonical = GLM_LINKS.get(values["family"], ())
            values.pop("link", None)  # tweedie has no link; others get their canonical one
            if canonical:
                values["link"] = canonical[0]
        return {k: (int(v) if self.params[k].kind == "int" else v) for k, v in values.items()}

    def needs_non_negative_features(self, overrides: Mapping[str, Any]) -> bool:
        """Multinomial, complement and Bernoulli naive Bayes reject negative feature values."""
        model_type = self.merged(overrides).get("modelType")
        return self.name == "naive_bayes" and model_type in ("multinomial", "complement", "bernoulli")

    def estimator_class(self) -> Any:
        module, _, name = self.estimator.rpartition(".")
        return getattr(importlib.import_module(module), name)


ALGORITHMS: Mapping[str, AlgorithmSpec] = {
    spec.name: spec
    for spec in (
        AlgorithmSpec(
            "logistic_regression",
            "classification",
            "pyspark.ml.classification.LogisticRegression",
            {"maxIter": 100, "regParam": 0.01, "elasticNetParam": 0.0},
            {**_LINEAR, "family": _choice("auto", "binomial", "multinomial"), "threshold": _float(0.0, 1.0)},
            budget_param="maxIter",
            summary="regularised logistic regression (binomial or multinomial)",
        ),
        AlgorithmSpec(
            "random_forest",
            "classification",
            "pyspark.ml.classification.RandomForestClassifier",
            {"numTrees": 50, "maxDepth": 8, "seed": 42},
            {**_FOREST, "impurity": _choice("gini", "entropy")},
            budget_param="numTrees",
            summary="random forest classifier",
        ),
        AlgorithmSpec(
            "decision_tree",
            "classification",
            "pyspark.ml.classification.DecisionTreeClassifier",
            {"maxDepth": 6, "seed": 42},
            {**_TREE, "impurity": _choice("gini", "entropy")},
            summary="single decision tree classifier",
        ),
        AlgorithmSpec(
            "gbt",
            "classification",
            "pyspark.ml.classification.GBTClassifier",
            {"maxIter": 30, "maxDepth": 5, "stepSize": 0.1, "seed": 42},
            {
                **_BOOSTED,
                "lossType": _choice("logistic"),
                "featureSubsetStrategy": _FOREST["featureSubsetStrategy"],
            },
            budget_param="maxIter",
            summary="gradient-boosted trees, binary classification",
        ),
        AlgorithmSpec(
            "naive_bayes",
            "classification",
            "pyspark.ml.classification.NaiveBayes",
            {"smoothing": 1.0, "modelType": "multinomial"},
            {
                "smoothing": _float(0.0),
                "modelType": _choice("multinomial", "gaussian", "complement", "bernoulli"),
            },
            summary="naive Bayes (multinomial by default: numeric features become one-hot quantile buckets)",
        ),
        AlgorithmSpec(
            "linear_regression",
            "regression",
            "pyspark.ml.regression.LinearRegression",
            {"maxIter": 100, "regParam": 0.0, "elasticNetParam": 0.0},
            {**_LINEAR, "loss": _choice("squaredError", "huber"), "solver": _choice("auto", "normal", "l-bfgs")},
            budget_param="maxIter",
            summary="(regularised) linear regression",
        ),
        AlgorithmSpec(
            "random_forest_regressor",
            "regression",
            "pyspark.ml.regression.RandomForestRegressor",
            {"numTrees": 50, "maxDepth": 8, "seed": 42},
            dict(_FOREST),
            budget_param="numTrees",
            summary="random forest regressor",
        ),
        AlgorithmSpec(
            "decision_tree_regressor",
            "regression",
            "pyspark.ml.regression.DecisionTreeRegressor",
            {"maxDepth": 6, "seed": 42},
            dict(_TREE),
            summary="single decision tree regressor",
        ),
        AlgorithmSpec(
            "gbt_regressor",
            "regression",
            "pyspark.ml.regression.GBTRegressor",
            {"maxIter": 30, "maxDepth": 5, "stepSize": 0.1, "seed": 42},
            {**_BOOSTED, "lossType": _choice("squared", "absolute")},
            budget_param="maxIter",
            summary="gradient-boosted trees regressor",
        ),
        AlgorithmSpec(
            "glm",
            "regression",
            "pyspark.ml.regression.GeneralizedLinearRegression",
            {"family": "gaussian", "link": "identity", "maxIter": 25, "regParam": 0.0},
            {
                "family": _choice(*GLM_LINKS),
                "link": _choice("identity", "log", "inverse", "logit", "probit", "cloglog", "sqrt"),
                "maxIter": _int(1, 100_000),
                "regParam": _float(0.0),
                "tol": _float(0.0),
                "fitIntercept": _BOOL,
                "variancePower": _float(0.0),
                "linkPower": _float(-10.0, 10.0),
            },
            budget_param="maxIter",
            summary="generalised linear model; family and link configurable",
            extra_checks=("glm_link",),
        ),
        AlgorithmSpec(
            "kmeans",
            "clustering",
            "pyspark.ml.clustering.KMeans",
            {"k": 4, "maxIter": 20, "seed": 42},
            {**_CLUSTERS, "initMode": _choice("k-means||", "random"), "tol": _float(0.0)},
            budget_param="maxIter",
            summary="k-means",
        ),
        AlgorithmSpec(
            "bisecting_kmeans",
            "clustering",
            "pyspark.ml.clustering.BisectingKMeans",
            {"k": 4, "maxIter": 20, "seed": 42},
            {**_CLUSTERS, "minDivisibleClusterSize": _float(1e-9)},
            budget_param="maxIter",
            summary="bisecting k-means (hierarchical)",
            centered_features=False,
        ),
        AlgorithmSpec(
            "gmm",
            "clustering",
            "pyspark.ml.clustering.GaussianMixture",
            {"k": 4, "maxIter": 100, "seed": 42},
            {**_CLUSTERS, "tol": _float(0.0)},
            budget_param="maxIter",
            summary="Gaussian mixture model",
        ),
        AlgorithmSpec(
            "als",
            "recommendation",
            "pyspark.ml.recommendation.ALS",
            {"rank": 10, "maxIter": 10, "regParam": 0.1, "coldStartStrategy": "drop", "seed": 42},
            {
                "rank": _int(1, 1_000),
                "maxIter": _int(1, 1_000),
                "regParam": _float(0.0),
                "alpha": _float(0.0),
                "implicitPrefs": _BOOL,
                "nonnegative": _BOOL,
                "coldStartStrategy": _choice("drop", "nan"),
                "seed": _SEED,
            },
            budget_param="maxIter",
            summary="alternating least squares matrix factorisation (user, item, rating)",
        ),
    )
}


def algorithm_names(task: Task | None = None) -> list[str]:
    return [name for name, spec in ALGORITHMS.items() if task is None or spec.task == task]


def get_algorithm(name: str) -> AlgorithmSpec:
    """The spec for ``name``; ``KeyError`` lists the valid names."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise KeyError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}") from None


def hyperparameter_problems(algorithm: str, hyperparameters: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """``(field, value, rule)`` for each unusable hyperparameter; empty when all are fine."""
    if algorithm not in ALGORITHMS:
        return [("algorithm", algorithm, f"unknown algorithm; choose one of {', '.join(ALGORITHMS)}")]
    spec = ALGORITHMS[algorithm]
    problems: list[tuple[str, Any, str]] = []
    for name, value in hyperparameters.items():
        param = spec.params.get(name)
        if param is None:
            allowed = ", ".join(f"{key} ({p.describe()})" for key, p in spec.params.items())
            problems.append(
                (f"hyperparameters.{name}", value, f"not a {algorithm} hyperparameter; allowed: {allowed}")
            )
            continue
        rule = param.problem(value)
        if rule:
            problems.append((f"hyperparameters.{name}", value, rule))
    if not problems and "glm_link" in spec.extra_checks:
        merged = spec.merged(hyperparameters)
        links = GLM_LINKS[merged["family"]]
        if links and merged.get("link") not in links:
            problems.append(
                (
                    "hyperparameters.link",
                    merged.get("link"),
                    f"family {merged['family']!r} takes links {list(links)}",
                )
            )
    return problems
