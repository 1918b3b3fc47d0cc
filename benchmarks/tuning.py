"""Tuning wall time: `pipeline tune` beside MLlib's own tuners on the same data and the same grid.

In one run, on the same generated Delta table and the same 8-config grid:
  (a)    pipeline tune, holdout validation     vs (b) MLlib TrainValidationSplit(parallelism=2)
  (a-cv) pipeline tune, 3-fold CV              vs (c) MLlib CrossValidator(numFolds=3, parallelism=2)
  (d)    a sequential loop: Pipeline.fit + evaluate per config
  (e)    ASHA (3 rungs, factor 2) over a growing data fraction, (e-it) over growing maxIter: the time
         from the first trial's start to a validation metric within 0.5% of the plain grid's best
  (f)    pipeline tune, holdout, on costly features (the same rows plus a 50,000-value id hashed into
         10,000 slots and a memo as TF-IDF) vs (g) MLlib TrainValidationSplit(parallelism=2) on them
MLlib's tuners get the whole Pipeline (features + estimator) as their estimator, as they are usually
used; they refit the features per config and fold, while the pipeline's actor fits them once per fold.
Every time includes the final refit of the best config on the training split, and none includes
reading the table, checking it and caching the training split (MLlib's tuners get the cached split).
The pipeline's time counts its feature stages fitted on the folds, the trials and the refit's fit; its
start-up and what MLlib's tuners do not do (testing, plots, ONNX export, MLflow, registration) are
shown apart.

    .venv/bin/python benchmarks/tuning.py                 # 500k rows, logistic regression grid
    .venv/bin/python benchmarks/tuning.py --rows 100000   # a quick look
    .venv/bin/python benchmarks/tuning.py --rows 200000 --case costly   # (f) and (g) alone
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline._console import Console
from pipeline.algorithms import check_model
from pipeline.config import GeneratedData, PipelineConfig, config_from_dict
from pipeline.data import generate, write_delta
from pipeline.runtime import Runtime, find_java, prepare_process_environment, start_spark, stop_spark
from pipeline.training import build_pipeline, prepare
from pipeline.tuning import SweepResult, check_tuning, run_sweep

GRID = {"regParam": [0.001, 0.01, 0.1, 1.0], "elasticNetParam": [0.0, 0.5]}  # 8 configs


# The costly-features case: a 50,000-value id hashed into 10,000 slots and a 12-word memo as TF-IDF over
# 10,000 slots, beside the generated columns (which the features infer as usual).
COSTLY_FEATURES = {
    "merchant_id": {"type": "hashed", "num_features": 10_000},
    "memo": {"type": "text", "num_features": 10_000},
}


def make_config(
    root: Path,
    rows: int,
    cv_folds: int | None,
    name: str,
    early_stopping: dict[str, Any] | None = None,
    costly: bool = False,
) -> PipelineConfig:
    raw = {
        "ray": {"dashboard": False, "num_cpus": 4},
        "spark": {
            "num_executors": 1,
            "executor_cores": 2,
            "executor_memory": "4g",
            "configs": {"spark.sql.shuffle.partitions": 8, "spark.ui.showConsoleProgress": False},
        },
        "data": {
            "source": {"path": str(root / ("data-costly" if costly else "data"))},
            "label": "label",
            "ingest": {"generate": {"generator": "classification", "rows": rows, "seed": 42}},
        },
        "model": {"algorithm": "logistic_regression", "hyperparameters": {"maxIter": 30}},
        "features": {"columns": COSTLY_FEATURES if costly else {}},
        "evaluation": {"cv_folds": cv_folds},
        "tuning": {
            "search": "grid",
            "space": GRID,
            "max_concurrent_trials": 2,
            "name": name,
            "storage": str(root / "ray_results"),
            "early_stopping": early_stopping,
        },
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db", "experiment": "bench", "registered_model": "bench"},
    }
    return config_from_dict(raw, base_dir=root, environ={}, checks=[check_model, check_tuning])


def mllib_runs(config: PipelineConfig, console: Console, labels: tuple[str, ...] = ()) -> dict[str, float]:
    """(b), (c) and (d), each in a Spark session of its own in this process (started after the sweeps'
    actors stopped): each starts as cold as a sweep's actor, after the same untimed read, checks,
    profile and cached training split, so no approach runs on a JVM another one warmed up."""
    times: dict[str, float] = {}
    for label in labels or (TVS, CV, LOOP):
        # Its own app name: RayDP names the app master after it, and earlier masters may still be going.
        spark = start_spark(config.spark.model_copy(update={"app_name": f"mllib-{len(times)}"}), local=True)
        try:
            prepared = prepare(spark, config)
            train = prepared.train.cache()
            train.count()
            with console.timed(label):
                begun = time.monotonic()
                _mllib_approach(label, build_pipeline(prepared, config), train)
                times[label] = time.monotonic() - begun
        finally:
            stop_spark()
    return times


TVS = "(b) MLlib TrainValidationSplit(parallelism=2)"
CV = "(c) MLlib CrossValidator(numFolds=3, parallelism=2)"
LOOP = "(d) sequential loop"


def _mllib_approach(label: str, pipeline: Any, train: Any) -> None:
    """Tune ``pipeline`` (features + estimator) over GRID on ``train`` as ``label`` says, then refit."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit

    estimator = pipeline.getStages()[-1]
    builder = ParamGridBuilder()
    for name, values in GRID.items():
        builder = builder.addGrid(estimator.getParam(name), values)
    grid = builder.build()
    evaluator = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="probability")
    if label == TVS:
        TrainValidationSplit(
            estimator=pipeline,
            estimatorParamMaps=grid,
            evaluator=evaluator,
            trainRatio=0.8,
            parallelism=2,
            seed=42,
        ).fit(train)
    elif label == CV:
        CrossValidator(
            estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator, numFolds=3, parallelism=2, seed=42
        ).fit(train)
    else:
        fit_part, validation = train.randomSplit([0.8, 0.2], seed=42)
        scores = [evaluator.evaluate(pipeline.fit(fit_part, params).transform(validation)) for params in grid]
        pipeline.fit(train, grid[max(range(len(scores)), key=scores.__getitem__)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--no-mllib", action="store_true", help="only the pipeline's sweeps")
    parser.add_argument(
        "--case",
        choices=("all", "standard", "costly"),
        default="all",
        help="standard: (a)-(e); costly: the costly-features case (f)/(g); all: both",
    )
    args = parser.parse_args()
    console = Console()
    table: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as folder:
        root = Path(folder)
        with Runtime(make_config(root, args.rows, None, "-"), start_spark=False, console=console):
            if args.case in ("all", "standard"):
                table += standard_case(root, args.rows, not args.no_mllib, console)
            if args.case in ("all", "costly"):
                table += costly_case(root, args.rows, not args.no_mllib, console)
    print("\n".join(table))


def standard_case(root: Path, rows: int, with_mllib: bool, console: Console) -> list[str]:
    """(a)-(e) on the generated table; the lines of their table."""
    holdout = make_config(root, rows, None, "holdout")
    rungs = {"rungs": 3, "reduction_factor": 2}
    sweeps = (
        ("(a) pipeline tune, holdout", holdout),
        ("(a-cv) pipeline tune, 3-fold CV", make_config(root, rows, 3, "cv3")),
        (
            "(e) pipeline tune, holdout + ASHA over data fraction",
            make_config(root, rows, None, "asha", early_stopping={**rungs, "budget": "data"}),
        ),
        (
            "(e-it) pipeline tune, holdout + ASHA over maxIter",
            make_config(root, rows, None, "asha-it", {**rungs, "budget": "iterations"}),
        ),
    )
    _write_data(holdout, console)  # from a short-lived Spark in a helper process of Ray
    ours: dict[str, SweepResult] = {}
    for label, config in sweeps:
        with console.timed(label):
            ours[label] = run_sweep(config, Console(quiet=True))
    mllib = mllib_runs(holdout, console) if with_mllib else {}
    a, a_cv = ours["(a) pipeline tune, holdout"], ours["(a-cv) pipeline tune, 3-fold CV"]
    target = a.best.metrics["auc_roc"] * (1 - 0.005) if a.best else float("nan")

    lines = [
        f"\n{rows:,} rows, {len(list(itertools.product(*GRID.values())))} configs (logistic regression), "
        "1 executor x 2 cores, 2 trials at a time",
        f"{'approach':<55} {'seconds':>8}  notes",
    ]
    lines += [_sweep_line(label, result) for label, result in ours.items()]
    lines += [f"{label:<55} {seconds:>8.1f}" for label, seconds in mllib.items()]
    lines.append("\nper trial (mean): Tune's trial time = the actor's fits + the rest (Tune, Ray, the actor call)")
    for label, result in ours.items():
        done = [trial for trial in result.trials if not trial.error]
        if done and "ASHA" not in label:  # an ASHA trial's fit_seconds is its last rung's alone
            total = sum(trial.seconds for trial in done) / len(done)
            fits = sum(trial.metrics.get("fit_seconds", 0.0) for trial in done) / len(done)
            lines.append(f"  {label:<55} {total:>6.1f} s = fit {fits:.1f} s + {total - fits:.1f} s")
    if mllib:
        b, c, d = mllib[TVS], mllib[CV], mllib[LOOP]
        lines += [
            f"\nratio (a)/(b)       = {tuning_seconds(a) / b:.2f}   (target <= 0.8)",
            f"ratio (a)/(d)       = {tuning_seconds(a) / d:.2f}   (target <= 1.0)",
            f"ratio (a-cv)/(c)    = {tuning_seconds(a_cv) / c:.2f}   (target <= 0.8)",
        ]
    lines.append(
        f"\ntime from the first trial's start to a validation auc_roc >= {target:.4f} (grid best - 0.5%):"
    )
    for label, result in ours.items():
        if "CV" not in label:
            lines.append(f"  {label:<55} {_time_to_reach(Path(result.path), target):>8.1f} s")
    holdout_auc, folds_auc = (r.best.metrics["auc_roc"] if r.best else float("nan") for r in (a, a_cv))
    lines.append(f"best validation auc_roc: holdout {holdout_auc:.4f}, 3-fold {folds_auc:.4f}")
    return lines


def costly_case(root: Path, rows: int, with_mllib: bool, console: Console) -> list[str]:
    """(f) our holdout sweep and (g) TrainValidationSplit where the features cost most; their lines."""
    config = make_config(root, rows, None, "costly", costly=True)
    _write_data(config, console)
    label = "(f) pipeline tune, holdout, costly features"
    with console.timed(label):
        sweep = run_sweep(config, Console(quiet=True))
    lines = [
        f"\ncostly features ({rows:,} rows): the generated columns plus a 50,000-value id hashed into "
        "10,000 slots and a 12-word memo as TF-IDF (10,000 slots)",
        _sweep_line(label, sweep),
    ]
    if with_mllib:
        tvs = mllib_runs(config, console, (TVS,))[TVS]
        lines += [
            f"{'(g) MLlib TrainValidationSplit(parallelism=2)':<55} {tvs:>8.1f}",
            f"ratio (f)/(g)       = {tuning_seconds(sweep) / tvs:.2f}   (target <= 0.5)",
        ]
    return lines


def _sweep_line(label: str, result: SweepResult) -> str:
    seconds = tuning_seconds(result)
    refit_fit = result.refit.fit_seconds if result.refit else 0.0
    return (
        f"{label:<55} {seconds:>8.1f}  features {result.features_seconds:.1f} | trials "
        f"{result.trials_seconds:.1f} (overlapping: {result.search_seconds:.1f}) + refit {refit_fit:.1f}; "
        f"apart: reading/checking/caching "
        f"{result.startup_seconds:.1f}, test/plots/ONNX/MLflow/registration "
        f"{result.seconds - seconds - result.startup_seconds:.1f}"
    )


def tuning_seconds(result: SweepResult) -> float:
    """What MLlib's tuners do, timed on our side: the feature stages fitted on the folds and the trials
    (from the first's start to the last's end: Tune starts its workers while the actor fits the features),
    and the refit's fit. Reading, checking and caching the split (done before MLlib's timers start too)
    and what the tuners do not do at all (testing, plots, ONNX, MLflow, registration) are shown apart."""
    refit_fit = result.refit.fit_seconds if result.refit else 0.0
    return result.search_seconds + refit_fit


def _time_to_reach(experiment: Path, target: float) -> float:
    """Seconds from the sweep's first trial start to the first report at or above ``target``."""
    import json

    reports = [
        json.loads(line) for path in experiment.glob("*/result.json") for line in path.read_text().splitlines()
    ]
    if not reports:
        return float("nan")
    start = min(r["timestamp"] - r["time_total_s"] for r in reports)
    hits = [r["timestamp"] for r in reports if r.get("auc_roc", float("-inf")) >= target]
    return min(hits) - start if hits else float("nan")


def _write_data(config: PipelineConfig, console: Console) -> None:
    import ray

    @ray.remote(num_cpus=0)
    def write(config_json: str) -> int:
        parsed = PipelineConfig.model_validate_json(config_json)
        prepare_process_environment(find_java())
        spark = start_spark(parsed.spark, local=True)
        try:
            assert parsed.data.ingest.generate is not None
            frame = generate(spark, GeneratedData(**parsed.data.ingest.generate.model_dump()))
            if parsed.features.columns:
                frame = _with_costly_columns(frame)
            return write_delta(frame, parsed.data.source.path).rows
        finally:
            stop_spark()

    with console.timed("Writing the data set"):
        rows = ray.get(write.remote(config.model_dump_json()))
    console.step(f"{rows:,} rows in {config.data.source.path}")


def _with_costly_columns(frame: Any) -> Any:
    """COSTLY_FEATURES' columns, drawn from hashes of the transaction id (deterministic): a merchant id
    among 50,000 and a memo of 12 words from a skewed 3,000-word vocabulary, with "urgent" in 30% of the
    frauds' memos and 3% of the others'."""
    from pyspark.sql import functions as F

    def draw(salt: Any, modulo: int) -> Any:
        return F.pmod(F.xxhash64(F.col("transaction_id"), salt), F.lit(modulo))

    skewed = F.transform(  # the product of two draws favours small word numbers
        F.sequence(F.lit(1), F.lit(12)),
        lambda i: F.concat(F.lit("w"), (draw(i, 3000) * draw(i + 100, 3000) / 3000).cast("int").cast("string")),
    )
    urgent = F.when(draw(F.lit("u"), 100) < F.when(F.col("label") == 1, 30).otherwise(3), F.lit("urgent"))
    return frame.withColumns(
        {
            "merchant_id": F.concat(F.lit("m"), draw(F.lit("m"), 50_000).cast("string")),
            "memo": F.concat_ws(" ", F.array_union(skewed, F.array(urgent))),
        }
    )


if __name__ == "__main__":
    main()
