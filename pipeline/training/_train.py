"""Training: check the data, resolve features, fit the Spark pipeline, evaluate it against a baseline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline._console import Console
from pipeline.algorithms import AlgorithmSpec, Task, get_algorithm
from pipeline.config import PipelineConfig
from pipeline.data import Snapshot, read_table
from pipeline.errors import DataError
from pipeline.evaluation import (
    PredictionSample,
    baseline_metrics,
    classification_metrics,
    clustering_metrics,
    mean_and_std,
    prediction_sample,
    ranking_metrics,
    regression_metrics,
)
from pipeline.features import (
    FEATURES_COL,
    FeatureSpec,
    FeatureStages,
    build_feature_stages,
    infer_feature_spec,
    profile_columns,
    slot_names,
    value_kind,
)

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame, SparkSession

_TOP_WEIGHTS = 15


@dataclass
class PreparedData:
    """Checked data ready to train on: the split frames, the feature spec and what it came from."""

    snapshot: Snapshot
    task: Task
    algorithm: AlgorithmSpec
    hyperparameters: dict[str, Any]
    label: str | None
    train: DataFrame
    test: DataFrame
    spec: FeatureSpec | None  # None for ALS, which takes raw user/item columns
    input_columns: list[str]
    inferred: bool
    label_classes: int | None = None


@dataclass
class TrainedModel:
    prepared: PreparedData
    model: PipelineModel
    metrics: dict[str, float]
    baseline: dict[str, float]
    cv: dict[str, tuple[float, float]] = field(default_factory=dict)
    weights: list[tuple[str, float]] = field(default_factory=list)
    weights_kind: str | None = None
    kept_features: list[str] | None = None
    train_rows: int = 0
    test_rows: int = 0
    sample: PredictionSample | None = None  # test predictions for the plots (none for ALS)
    seconds: float = 0.0  # the whole training: reading, checks, profiling, fitting, evaluating
    fit_seconds: float = 0.0  # fitting the feature stages and the estimator on the training split


def prepare(spark: SparkSession, config: PipelineConfig, console: Console | None = None) -> PreparedData:
    """Read the data, check it can train this algorithm, resolve the features, split. No fitting yet."""
    console = console or Console(quiet=True)
    algorithm = get_algorithm(config.model.algorithm)
    hyperparameters = algorithm.merged(config.model.hyperparameters)
    snapshot = read_table(spark, config.data.source)
    frame = snapshot.df
    where = f"{snapshot.path}" + (f" (Delta version {snapshot.version})" if snapshot.version is not None else "")
    rows = snapshot.rows if snapshot.rows is not None else frame.count()
    if rows == 0:
        raise DataError(f"data.source: the table at {where} has no rows")
    label = config.data.label if algorithm.task != "clustering" else None
    if label is not None:
        frame = _checked_label(frame, label, algorithm, where)
    label_classes = None
    if algorithm.task == "classification":
        assert label is not None
        label_classes = _check_classes(frame, label, algorithm, where)
    if algorithm.task == "recommendation":
        columns = [config.model.user_column, config.model.item_column]
        _check_id_columns(frame, columns, where)
        spec = None
        input_columns = columns
        inferred = False
    else:
        exclude = {label} if label else set()
        candidates = [name for name in frame.columns if name not in exclude]
        with console.timed(f"Profiling {len(candidates)} columns"):
            # Sized by the rows before nulls in the label are dropped: a sample a little larger, no count.
            profiles = profile_columns(frame, candidates, config.features.auto.sample_rows, total_rows=rows)
        spec = infer_feature_spec(profiles, config.features, exclude)
        input_columns = list(spec.columns)
        inferred = any(reason != "declared" for reason in spec.reasons.values())
    keep = input_columns + ([label] if label else [])
    train, test = frame.select(*keep).randomSplit(
        [1 - config.data.split.test_fraction, config.data.split.test_fraction], seed=config.data.split.seed
    )
    return PreparedData(
        snapshot=snapshot,
        task=algorithm.task,
        algorithm=algorithm,
        hyperparameters=hyperparameters,
        label=label,
        train=train,
        test=test,
        spec=spec,
        input_columns=input_columns,
        inferred=inferred,
        label_classes=label_classes,
    )


def _checked_label(frame: DataFrame, label: str, algorithm: AlgorithmSpec, where: str) -> DataFrame:
    from pyspark.sql import functions as F

    if label not in frame.columns:
        raise DataError(f"data.label = {label!r}: no such column in {where}; columns: {frame.columns}")
    kind = value_kind(frame.schema[label].dataType)
    if kind not in ("integer", "float", "boolean"):
        raise DataError(
            f"data.label = {label!r}: {algorithm.name} needs a numeric label, the column holds {kind} values"
        )
    return frame.where(F.col(label).isNotNull()).withColumn(label, F.col(label).cast("double"))


def _check_classes(frame: DataFrame, label: str, algorithm: AlgorithmSpec, where: str) -> int:
    classes = [row[0] for row in frame.select(label).distinct().limit(1001).collect()]
    if not classes:
        raise DataError(f"data.label = {label!r}: every label in {where} is null")
    if len(classes) < 2:
        raise DataError(f"data.label = {label!r}: a single class ({classes[0]:g}) in {where}; need at least two")
    bad = [value for value in classes if value < 0 or not float(value).is_integer()]
    if bad or len(classes) > 1000:
        raise DataError(
            f"data.label = {label!r}: classes must be integers 0..k-1 (found {sorted(classes)[:5]}...)"
        )
    if algorithm.name == "gbt" and len(classes) > 2:
        raise DataError(f"model.algorithm = 'gbt': binary labels only, {label!r} has {len(classes)} classes")
    return int(max(classes)) + 1


def _check_id_columns(frame: DataFrame, columns: list[str], where: str) -> None:
    for name in columns:
        if name not in frame.columns:
            raise DataError(f"model: als needs column {name!r}, not in {where}; columns: {frame.columns}")
        if value_kind(frame.schema[name].dataType) != "integer":
            raise DataError(f"model: als needs integer ids, column {name!r} is {frame.schema[name].dataType}")


def make_estimator(
    prepared: PreparedData, config: PipelineConfig, algorithm: AlgorithmSpec, hyperparameters: dict[str, Any]
) -> Any:
    """The unfitted MLlib estimator, wired to the prepared data's columns."""
    estimator = algorithm.estimator_class()(**hyperparameters)
    if algorithm.task == "recommendation":
        estimator.setUserCol(config.model.user_column).setItemCol(config.model.item_column)
        return estimator.setRatingCol(prepared.label)
    estimator.setFeaturesCol(FEATURES_COL)
    if prepared.label is not None and algorithm.task != "clustering":
        estimator.setLabelCol(prepared.label)
    return estimator


def feature_stages(
    prepared: PreparedData, config: PipelineConfig, non_negative: bool = False, center: bool = True
) -> FeatureStages:
    """The unfitted feature stages (none for ALS, which reads raw id columns) and the names of the vector
    slots Spark cannot name; the flags are the algorithm's (``AlgorithmSpec.needs_non_negative_features``,
    ``AlgorithmSpec.centered_features``)."""
    if prepared.spec is None:
        return FeatureStages(stages=[], output_col=FEATURES_COL, slot_aliases={})
    kinds = {name: value_kind(prepared.train.schema[name].dataType) for name in prepared.spec.columns}
    features = build_feature_stages(
        prepared.spec,
        kinds,
        non_negative=non_negative,
        selection=config.features.selection,
        label_col=prepared.label,
        label_is_categorical=prepared.task == "classification",
        center=center,
    )
    return features


def build_pipeline(prepared: PreparedData, config: PipelineConfig) -> Any:
    """The unfitted Spark Pipeline: feature stages then the estimator."""
    return _pipeline(prepared, config)[0]


def _pipeline(prepared: PreparedData, config: PipelineConfig) -> tuple[Any, dict[str, str]]:
    """``build_pipeline``'s pipeline, and the names of the vector slots Spark cannot name."""
    from pyspark.ml import Pipeline

    algorithm, hyperparameters = prepared.algorithm, prepared.hyperparameters
    features = feature_stages(
        prepared, config, algorithm.needs_non_negative_features(hyperparameters), algorithm.centered_features
    )
    estimator = make_estimator(prepared, config, algorithm, hyperparameters)
    return Pipeline(stages=[*features.stages, estimator]), features.slot_aliases


def evaluate(prepared: PreparedData, model: Any, data: DataFrame, config: PipelineConfig) -> dict[str, float]:
    """Task metrics of ``model`` on ``data``."""
    # Classification and regression metrics are one aggregation job: caching would only add a pass.
    with _scored(prepared, model, data, cache=prepared.task == "clustering") as predictions:
        return _metrics(prepared, predictions, model, data, config)


@contextmanager
def _scored(prepared: PreparedData, model: Any, data: DataFrame, cache: bool) -> Iterator[DataFrame | None]:
    """``data`` scored by ``model``, narrowed to what metrics, plots and baselines read (label,
    prediction, probabilities; features for clustering), cached if asked; None for ALS, whose ranking
    metrics score users, not rows."""
    if prepared.task == "recommendation":
        yield None
        return
    scored = model.transform(data)
    wanted = (prepared.label, "prediction", "probability", "rawPrediction")
    kept = [name for name in wanted if name and name in scored.columns]
    if prepared.task == "clustering":
        kept.append(FEATURES_COL)
    predictions = scored.select(*kept)
    if not cache:
        yield predictions
        return
    predictions = predictions.cache()
    try:
        yield predictions
    finally:
        predictions.unpersist()


def _metrics(
    prepared: PreparedData, predictions: DataFrame | None, model: Any, data: DataFrame, config: PipelineConfig
) -> dict[str, float]:
    task, label = prepared.task, prepared.label
    if predictions is None:
        return _ranking_and_rmse(prepared, model, data, config)
    if task == "clustering":
        return clustering_metrics(predictions, FEATURES_COL)
    assert label is not None
    if task == "classification":
        return classification_metrics(predictions, label, binary=prepared.label_classes == 2)
    return regression_metrics(predictions, label)


def _ranking_and_rmse(
    prepared: PreparedData, model: Any, data: DataFrame, config: PipelineConfig
) -> dict[str, float]:
    label = prepared.label
    assert label is not None
    metrics = {"rmse": regression_metrics(model.transform(data), label)["rmse"]}
    metrics.update(
        ranking_metrics(
            model.stages[-1] if hasattr(model, "stages") else model,
            data,
            config.model.user_column,
            config.model.item_column,
            label,
            config.evaluation.ranking_k,
            config.evaluation.relevant_rating,
        )
    )
    return metrics


def train(
    spark: SparkSession,
    config: PipelineConfig,
    console: Console | None = None,
    prepared: PreparedData | None = None,
    cv: dict[str, tuple[float, float]] | None = None,
) -> TrainedModel:
    """Prepare, fit on the training split, evaluate on the test split (and k-fold CV if configured).

    A sweep's refit passes what it already has: ``prepared`` (the data read, checked, profiled and split
    once) and ``cv`` (the winner's mean and std over the same folds, from its trial).
    """
    console = console or Console(quiet=True)
    started = time.monotonic()
    prepared = prepared or prepare(spark, config, console)
    pipeline, slot_aliases = _pipeline(prepared, config)
    train_frame = prepared.train.cache()
    train_rows = train_frame.count()
    # Only whether the test split is empty, before fitting (its rows are counted once it is scored).
    if train_rows == 0 or prepared.test.limit(1).count() == 0:
        raise DataError(
            f"data.split: {train_rows} training rows and {'some' if train_rows == 0 else 'no'} test rows; "
            "need both non-empty (more rows or another test_fraction)"
        )
    if cv is None:
        cv = (
            _cross_validate(prepared, pipeline, train_frame, config, console) if config.evaluation.cv_folds else {}
        )
    with console.timed(f"Fitting {prepared.algorithm.name} on {train_rows} rows"):
        fit_started = time.monotonic()
        model = pipeline.fit(train_frame)
        fit_seconds = time.monotonic() - fit_started
    with (
        console.timed("Evaluating on the test split"),
        _scored(prepared, model, prepared.test, cache=True) as predictions,
    ):
        # One scoring pass, cached narrow: it counts the rows, then metrics, plots and baseline read it.
        test_rows = predictions.count() if predictions is not None else prepared.test.count()
        metrics = _metrics(prepared, predictions, model, prepared.test, config)
        sample = None if predictions is None else prediction_sample(predictions, prepared.label, test_rows)
        extra = {"k": prepared.hyperparameters.get("k", 2), "features": FEATURES_COL}
        if prepared.task == "recommendation":  # the same k and relevance as the model's ranking metrics
            extra = {
                "user": config.model.user_column,
                "item": config.model.item_column,
                "k": config.evaluation.ranking_k,
                "relevant": config.evaluation.relevant_rating,
            }
        baseline_input = prepared.test if predictions is None else predictions
        baseline = baseline_metrics(prepared.task, train_frame, baseline_input, prepared.label, **extra)
    scored_sample = model.transform(prepared.test.limit(1))  # only its schema's slot metadata is read
    weights, weights_kind = _model_weights(model, prepared, scored_sample, slot_aliases)
    kept = None
    if config.features.selection is not None and prepared.spec is not None:
        kept = slot_names(scored_sample, aliases=slot_aliases)
    train_frame.unpersist()
    return TrainedModel(
        prepared=prepared,
        model=model,
        metrics=metrics,
        baseline=baseline,
        cv=cv,
        weights=weights,
        weights_kind=weights_kind,
        kept_features=kept,
        sample=sample,
        train_rows=train_rows,
        test_rows=test_rows,
        seconds=time.monotonic() - started,
        fit_seconds=fit_seconds,
    )


_FOLD_COL = "__fold"


def assign_folds(frame: DataFrame, folds: int, seed: int) -> DataFrame:
    """``frame`` with each row's fold (0..folds-1): the one k-fold assignment, shared by ``train``'s CV and
    a sweep's folds, so the same seed over the same training split gives both the same folds."""
    from pyspark.sql import functions as F

    return frame.withColumn(_FOLD_COL, F.floor(F.rand(seed=seed) * folds))


def kfold_splits(assigned: DataFrame, folds: int) -> list[tuple[DataFrame, DataFrame]]:
    """The k (the other folds, this fold) pairs of a frame from :func:`assign_folds`."""
    from pyspark.sql import functions as F

    return [
        (
            assigned.where(F.col(_FOLD_COL) != fold).drop(_FOLD_COL),
            assigned.where(F.col(_FOLD_COL) == fold).drop(_FOLD_COL),
        )
        for fold in range(folds)
    ]


def _cross_validate(
    prepared: PreparedData, pipeline: Any, frame: DataFrame, config: PipelineConfig, console: Console
) -> dict[str, tuple[float, float]]:
    folds = config.evaluation.cv_folds or 0
    assigned = assign_folds(frame, folds, config.data.split.seed).cache()
    per_fold: dict[str, list[float]] = {}
    for fold, (fold_train, fold_test) in enumerate(kfold_splits(assigned, folds)):
        with console.timed(f"Cross-validation fold {fold + 1}/{folds}"):
            fitted = pipeline.fit(fold_train)
            for name, value in evaluate(prepared, fitted, fold_test, config).items():
                per_fold.setdefault(name, []).append(value)
    assigned.unpersist()
    return {name: mean_and_std(values) for name, values in per_fold.items()}


def _model_weights(
    model: Any, prepared: PreparedData, sample: DataFrame, slot_aliases: dict[str, str]
) -> tuple[list[tuple[str, float]], str | None]:
    """Top feature importances (trees) or coefficients (linear models), named by vector slot."""
    if prepared.spec is None:
        return [], None
    last = model.stages[-1]
    # Ask for the class count first: a multinomial model's `coefficients` raises in the JVM (not an
    # AttributeError, so hasattr would not shield it); its weights are one row per class.
    classes = last.numClasses if hasattr(last, "numClasses") else 2
    if hasattr(last, "featureImportances"):
        values, kind = last.featureImportances.toArray(), "importance"
    elif classes > 2 and hasattr(last, "coefficientMatrix"):
        matrix = last.coefficientMatrix.toArray()  # classes x features: each feature's largest, signed
        values, kind = matrix[abs(matrix).argmax(axis=0), range(matrix.shape[1])], "class coefficient"
    elif classes <= 2 and hasattr(last, "coefficients"):
        values, kind = last.coefficients.toArray(), "coefficient"
    else:
        return [], None
    names = slot_names(sample, aliases=slot_aliases)
    ranked = sorted(zip(names, values.tolist(), strict=False), key=lambda pair: -abs(pair[1]))
    return [(name, float(value)) for name, value in ranked[:_TOP_WEIGHTS]], kind
