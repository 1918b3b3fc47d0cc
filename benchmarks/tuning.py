"""Tuning wall time: `pipeline tune` beside MLlib's own tuners on the same data and the same grid.

In one run, on the same generated Delta table and the same 8-config grid:
  (a)    pipeline tune, holdout validation     vs (b) MLlib TrainValidationSplit(parallelism=2)
  (a-cv) pipeline tune, 3-fold CV              vs (c) MLlib CrossValidator(numFolds=3, parallelism=2)
  (d)    a sequential loop: Pipeline.fit + evaluate per config
  (e)    ASHA (3 rungs, factor 2) over a growing data fraction, (e-it) over growing maxIter: the time
         from the first trial's start to a validation metric within 0.5% of the plain grid's best
MLlib's tuners get the whole Pipeline (features + estimator) as their estimator, as they are usually
used; they refit the features per config and fold, while the pipeline's actor fits them once per fold.
Every time includes the final refit of the best config on the training split. The pipeline's time
also includes MLflow logging and registration; its Spark start-up is shown apart.

    .venv/bin/python benchmarks/tuning.py                 # 500k rows, logistic regression grid
    .venv/bin/python benchmarks/tuning.py --rows 100000   # a quick look
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
from pipeline.tuning import check_tuning, run_sweep

GRID = {"regParam": [0.001, 0.01, 0.1, 1.0], "elasticNetParam": [0.0, 0.5]}  # 8 configs


def make_config(
    root: Path, rows: int, cv_folds: int | None, name: str, early_stopping: dict[str, Any] | None = None
) -> PipelineConfig:
    raw = {
        "ray": {"dashboard": False, "num_cpus": 4},
        "spark": {"num_executors": 1, "executor_cores": 2, "executor_memory": "4g",
                  "configs": {"spark.sql.shuffle.partitions": 8, "spark.ui.showConsoleProgress": False}},
        "data": {"source": {"path": str(root / "data")}, "label": "label",
                 "ingest": {"generate": {"generator": "classification", "rows": rows, "seed": 42}}},
        "model": {"algorithm": "logistic_regression", "hyperparameters": {"maxIter": 30}},
        "evaluation": {"cv_folds": cv_folds},
        "tuning": {"search": "grid", "space": GRID, "max_concurrent_trials": 2, "name": name,
                   "storage": str(root / "ray_results"), "early_stopping": early_stopping},
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db", "experiment": "bench", "registered_model": "bench"},
    }  # fmt: skip
    return config_from_dict(raw, base_dir=root, environ={}, checks=[check_model, check_tuning])


def mllib_runs(config: PipelineConfig, console: Console) -> dict[str, float]:
    """(b), (c) and (d) with a Spark session in this process (started after the sweeps' actors stopped)."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit

    # Its own app name: RayDP names the app master after it, and the sweeps' masters may still be going.
    spark = start_spark(config.spark.model_copy(update={"app_name": "mllib-tuners"}), local=True)
    try:
        prepared = prepare(spark, config)
        train = prepared.train.cache()
        train.count()
        pipeline = build_pipeline(prepared, config)
        estimator = pipeline.getStages()[-1]
        builder = ParamGridBuilder()
        for name, values in GRID.items():
            builder = builder.addGrid(estimator.getParam(name), values)
        grid = builder.build()
        evaluator = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="probability")
        times: dict[str, float] = {}
        tuners: dict[str, Any] = {
            "(b) MLlib TrainValidationSplit(parallelism=2)": TrainValidationSplit(
                estimator=pipeline,
                estimatorParamMaps=grid,
                evaluator=evaluator,
                trainRatio=0.8,
                parallelism=2,
                seed=42,
            ),
            "(c) MLlib CrossValidator(numFolds=3, parallelism=2)": CrossValidator(
                estimator=pipeline,
                estimatorParamMaps=grid,
                evaluator=evaluator,
                numFolds=3,
                parallelism=2,
                seed=42,
            ),
        }
        for label, tuner in tuners.items():
            with console.timed(label):
                begun = time.monotonic()
                tuner.fit(train)
                times[label] = time.monotonic() - begun
        with console.timed("(d) sequential loop"):
            begun = time.monotonic()
            fit_part, validation = train.randomSplit([0.8, 0.2], seed=42)
            scores = []
            for params in grid:
                model = pipeline.fit(fit_part, params)
                scores.append(evaluator.evaluate(model.transform(validation)))
            best = grid[max(range(len(scores)), key=scores.__getitem__)]
            pipeline.fit(train, best)
            times["(d) sequential loop"] = time.monotonic() - begun
        return times
    finally:
        stop_spark()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--no-mllib", action="store_true", help="only the pipeline's sweeps (a), (a-cv), (e)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as folder:
        root = Path(folder)
        holdout = make_config(root, args.rows, None, "holdout")
        folds = make_config(root, args.rows, 3, "cv3")
        rungs = {"rungs": 3, "reduction_factor": 2}
        asha = make_config(root, args.rows, None, "asha", early_stopping={**rungs, "budget": "data"})
        asha_iterations = make_config(root, args.rows, None, "asha-it", {**rungs, "budget": "iterations"})
        with Runtime(holdout, start_spark=False, console=console):
            # Data first, from a short-lived actor-free Spark in a helper process of Ray.
            _write_data(holdout, console)
            ours: dict[str, Any] = {}
            sweeps = (
                ("(a) pipeline tune, holdout", holdout),
                ("(a-cv) pipeline tune, 3-fold CV", folds),
                ("(e) pipeline tune, holdout + ASHA over data fraction", asha),
                ("(e-it) pipeline tune, holdout + ASHA over maxIter", asha_iterations),
            )
            for label, config in sweeps:
                with console.timed(label):
                    result = run_sweep(config, Console(quiet=True))
                ours[label] = result
            mllib = {} if args.no_mllib else mllib_runs(holdout, console)
            grid_best = ours["(a) pipeline tune, holdout"].best
            target = grid_best.metrics["auc_roc"] * (1 - 0.005) if grid_best else float("nan")
            reach = {label: _time_to_reach(Path(r.path), target) for label, r in ours.items() if "CV" not in label}

    print(f"\n{args.rows:,} rows, {len(list(itertools.product(*GRID.values())))} configs "
          "(logistic regression), 1 executor x 2 cores, 2 trials at a time")  # fmt: skip
    print(f"{'approach':<55} {'seconds':>8}  notes")
    for label, result in ours.items():
        seconds = result.trials_seconds + result.refit_seconds
        startup = result.seconds - seconds
        print(f"{label:<55} {seconds:>8.1f}  trials {result.trials_seconds:.1f} + refit/log/register "
              f"{result.refit_seconds:.1f}; Spark actor start-up and MLflow {startup:.1f} apart")  # fmt: skip
    for label, seconds in mllib.items():
        print(f"{label:<55} {seconds:>8.1f}")
    print("\nper trial (mean): Tune's trial time = the actor's fits + the rest (Tune, Ray, the actor call)")
    for label, result in ours.items():
        done = [trial for trial in result.trials if not trial.error]
        if done and "ASHA" not in label:  # an ASHA trial's fit_seconds is its last rung's alone
            total = sum(trial.seconds for trial in done) / len(done)
            fits = sum(trial.metrics.get("fit_seconds", 0.0) for trial in done) / len(done)
            print(f"  {label:<55} {total:>6.1f} s = fit {fits:.1f} s + {total - fits:.1f} s")
    a = ours["(a) pipeline tune, holdout"]
    a_cv = ours["(a-cv) pipeline tune, 3-fold CV"]
    if mllib:
        b = mllib["(b) MLlib TrainValidationSplit(parallelism=2)"]
        c = mllib["(c) MLlib CrossValidator(numFolds=3, parallelism=2)"]
        print(f"\nratio (a)/(b)       = {(a.trials_seconds + a.refit_seconds) / b:.2f}   (target <= 1.0)")
        print(f"ratio (a-cv)/(c)    = {(a_cv.trials_seconds + a_cv.refit_seconds) / c:.2f}   (target <= 1.0)")
    print(f"\ntime from the first trial's start to a validation auc_roc >= {target:.4f} (grid best - 0.5%):")
    for label, seconds in reach.items():
        print(f"  {label:<55} {seconds:>8.1f} s")
    holdout_auc, folds_auc = (r.best.metrics["auc_roc"] if r.best else float("nan") for r in (a, a_cv))
    print(f"best validation auc_roc: holdout {holdout_auc:.4f}, 3-fold {folds_auc:.4f}")


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
            return write_delta(frame, parsed.data.source.path).rows
        finally:
            stop_spark()

    with console.timed("Writing the data set"):
        rows = ray.get(write.remote(config.model_dump_json()))
    console.step(f"{rows:,} rows in {config.data.source.path}")


if __name__ == "__main__":
    main()
