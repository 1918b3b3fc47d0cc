"""The algorithm registry: 14 estimators, defaults that are valid, config errors that list choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.algorithms import (
    ALGORITHMS,
    TASKS,
    algorithm_names,
    check_model,
    get_algorithm,
    hyperparameter_problems,
)
from pipeline.config import ConfigError, config_from_dict, load_config
from tests.conftest import PROJECT_ROOT

EXAMPLES = sorted((PROJECT_ROOT / "config" / "examples").glob("*.yaml"))


def test_fourteen_algorithms_across_four_tasks() -> None:
    assert len(ALGORITHMS) == 14
    assert {spec.task for spec in ALGORITHMS.values()} == set(TASKS)
    assert algorithm_names("clustering") == ["kmeans", "bisecting_kmeans", "gmm"]


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_defaults_are_valid_and_name_real_estimator_params(name: str) -> None:
    spec = ALGORITHMS[name]
    assert hyperparameter_problems(name, spec.defaults) == []
    estimator = spec.estimator_class()  # the class only: no Spark needed
    for param in spec.params:
        assert hasattr(estimator, param), f"{spec.estimator} has no param {param}"


def test_unknown_algorithm_lists_choices() -> None:
    with pytest.raises(KeyError, match="choose one of logistic_regression"):
        get_algorithm("xgboost")
    ((field, value, rule),) = hyperparameter_problems("xgboost", {})
    assert (field, value) == ("algorithm", "xgboost")
    assert "kmeans" in rule


@pytest.mark.parametrize(
    ("algorithm", "params", "field", "rule"),
    [
        ("random_forest", {"numTrees": 0}, "hyperparameters.numTrees", "must be >= 1"),
        ("random_forest", {"numTrees": 2.5}, "hyperparameters.numTrees", "must be an integer"),
        ("random_forest", {"numTrees": True}, "hyperparameters.numTrees", "must be an integer"),
        ("logistic_regression", {"elasticNetParam": 1.5}, "hyperparameters.elasticNetParam", "must be <= 1"),
        ("naive_bayes", {"modelType": "poisson"}, "hyperparameters.modelType", "must be one of"),
        ("kmeans", {"clusters": 3}, "hyperparameters.clusters", "not a kmeans hyperparameter; allowed: k (int"),
        ("glm", {"family": "poisson", "link": "logit"}, "hyperparameters.link", "family 'poisson' takes links"),
        ("als", {"implicitPrefs": "yes"}, "hyperparameters.implicitPrefs", "must be true or false"),
    ],
)
def test_bad_hyperparameters_are_reported(
    algorithm: str, params: dict[str, object], field: str, rule: str
) -> None:
    problems = hyperparameter_problems(algorithm, params)
    assert [(f, r[: len(rule)]) for f, _, r in problems] == [(field, rule)]


def test_glm_family_alone_gets_its_canonical_link() -> None:
    assert hyperparameter_problems("glm", {"family": "binomial"}) == []
    assert ALGORITHMS["glm"].merged({"family": "poisson"})["link"] == "log"
    assert "link" not in ALGORITHMS["glm"].merged({"family": "tweedie", "variancePower": 1.5})


def test_naive_bayes_non_negative_rule() -> None:
    spec = ALGORITHMS["naive_bayes"]
    assert spec.needs_non_negative_features({})
    assert not spec.needs_non_negative_features({"modelType": "gaussian"})


def test_config_load_runs_registry_checks(tmp_path: Path) -> None:
    raw = {"data": {"source": {"path": "t"}}, "model": {"algorithm": "gbt", "hyperparameters": {"maxDepth": 99}}}
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw, base_dir=tmp_path, origin="job.yaml", checks=[check_model])
    assert caught.value.problems == ["job.yaml: model.hyperparameters.maxDepth = 99: must be <= 30"]
    raw = {"data": {"source": {"path": "t"}, "label": None}, "model": {"algorithm": "random_forest"}}
    with pytest.raises(ConfigError, match=r"data\.label = None: random_forest \(classification\) needs a label"):
        config_from_dict(raw, base_dir=tmp_path, checks=[check_model])


def test_every_algorithm_has_an_example_config() -> None:
    assert sorted(path.stem for path in EXAMPLES) == sorted(ALGORITHMS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_configs_load_and_validate(path: Path) -> None:
    config = load_config(path, environ={}, checks=[check_model])
    assert config.model.algorithm == path.stem
    assert config.root == PROJECT_ROOT
