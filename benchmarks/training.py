"""Training throughput: the pipeline (RayDP Spark + MLlib) beside scikit-learn on the same rows.

For each row count it generates the demo transactions into a Delta table, then times
feature engineering + training through `pipeline.training.train` (the `train` command's code path,
without MLflow), and the same features and model in scikit-learn on the same train/test split.
Prints a table (fit seconds, rows/s, AUC, accuracy) and how time grows with rows.

    .venv/bin/python benchmarks/training.py                      # 1M and 4M rows, LR and RF, + sparse
    .venv/bin/python benchmarks/training.py --rows 200000 --no-sparse   # a quick look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline._console import Console
from pipeline.algorithms import check_model
from pipeline.config import GeneratedData, PipelineConfig, config_from_dict
from pipeline.data import generate, write_delta
from pipeline.runtime import Runtime
from pipeline.training import train

NUMERIC = [
    "amount",
    "customer_age",
    "account_age_days",
    "num_prev_transactions",
    "hour",
    "noise_1",
    "noise_2",
    "noise_3",
]
CATEGORICAL = ["merchant_category", "device", "country"]
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "lr": ("logistic_regression", {"maxIter": 50, "regParam": 0.01}),
    "rf": ("random_forest", {"numTrees": 50, "maxDepth": 8}),
}


@dataclass
class Row:
    rows: int
    case: str
    engine: str
    seconds: float  # fitting the features and the model
    total: float  # plus reading, checking and evaluating (pipeline only)
    train_rows: int
    auc: float
    accuracy: float

    @property
    def rows_per_second(self) -> float:
        return self.train_rows / self.seconds


def make_config(
    root: Path, table: Path, algorithm: str, params: dict[str, Any], features: dict[str, Any]
) -> PipelineConfig:
    raw = {
        "ray": {"dashboard": False},
        "spark": {
            "num_executors": 1,
            "executor_cores": 2,
            "executor_memory": "6g",
            "configs": {"spark.sql.shuffle.partitions": 8, "spark.ui.showConsoleProgress": False},
        },
        "data": {"source": {"path": str(table)}, "label": "label", "split": {"test_fraction": 0.2, "seed": 42}},
        "features": features,
        "model": {"algorithm": algorithm, "hyperparameters": params},
    }
    return config_from_dict(raw, base_dir=root, environ={}, checks=[check_model])


def declared_features() -> dict[str, Any]:
    columns = {name: {"type": "numeric"} for name in NUMERIC}
    columns.update({name: {"type": "categorical"} for name in CATEGORICAL})
    return {"columns": columns, "infer": False}


def sparse_features() -> dict[str, Any]:
    columns: dict[str, Any] = {name: {"type": "numeric"} for name in NUMERIC}
    columns["user_id"] = {"type": "hashed", "num_features": 10_000}
    columns["merchant_category"] = {"type": "hashed", "num_features": 10_000}
    return {"columns": columns, "infer": False}


def sklearn_run(train_df: Any, test_df: Any, case: str, model: str) -> tuple[float, float, float]:
    """Fit the equivalent scikit-learn pipeline; returns (fit seconds, AUC, accuracy)."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler())
    if case == "sparse":

        def hashed(column: str) -> Any:
            as_tokens = FunctionTransformer(lambda frame: [[str(v)] for v in frame[column]], validate=False)
            return make_pipeline(as_tokens, FeatureHasher(n_features=10_000, input_type="string"))

        transformers = [
            ("num", numeric, NUMERIC),
            ("user", hashed("user_id"), ["user_id"]),
            ("merchant", hashed("merchant_category"), ["merchant_category"]),
        ]
    else:
        fill = FunctionTransformer(lambda frame: frame.astype(object).where(frame.notna(), "missing"))
        categorical = make_pipeline(fill, OneHotEncoder(handle_unknown="ignore"))
        transformers = [("num", numeric, NUMERIC), ("cat", categorical, CATEGORICAL)]
    estimator = (
        # MLlib minimises mean loss + regParam/2 |w|^2; scikit-learn sum loss + 1/(2C) |w|^2.
        LogisticRegression(max_iter=50, C=1 / (0.01 * len(train_df)))
        if model == "lr"
        else RandomForestClassifier(n_estimators=50, max_depth=8, n_jobs=2, random_state=42)
    )
    pipeline = make_pipeline(ColumnTransformer(transformers), estimator)
    columns = [c for _, _, cols in transformers for c in cols]
    begun = time.perf_counter()
    pipeline.fit(train_df[columns], train_df["label"])
    seconds = time.perf_counter() - begun
    scores = pipeline.predict_proba(test_df[columns])[:, 1]
    auc = roc_auc_score(test_df["label"], scores)
    accuracy = accuracy_score(test_df["label"], (scores >= 0.5).astype(np.float64))
    return seconds, float(auc), float(accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--no-sparse", action="store_true", help="skip the 10,000-feature hashed case")
    parser.add_argument("--no-sklearn", action="store_true")
    args = parser.parse_args()

    results: list[Row] = []
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as folder:
        root = Path(folder)
        first = make_config(root, root / "t", "logistic_regression", {}, declared_features())
        with Runtime(first, console=console) as runtime:
            spark = runtime.spark
            for rows in args.rows:
                table = root / f"transactions-{rows}"
                with console.timed(f"Generating {rows:,} rows"):
                    write_delta(
                        generate(spark, GeneratedData(generator="classification", rows=rows, seed=42)), table
                    )
                cases = [(key, "dense", declared_features()) for key in args.models]
                if not args.no_sparse:
                    cases.append(("lr", "sparse", sparse_features()))
                for key, kind, features in cases:
                    algorithm, params = MODELS[key]
                    config = make_config(root, table, algorithm, params, features)
                    label = f"{key}-{kind}"
                    with console.timed(f"pipeline {label} on {rows:,} rows"):
                        trained = train(spark, config, Console(quiet=True))
                    metrics = trained.metrics
                    results.append(
                        Row(
                            rows,
                            label,
                            "pipeline (Spark)",
                            trained.fit_seconds,
                            trained.seconds,
                            trained.train_rows,
                            metrics["auc_roc"],
                            metrics["accuracy"],
                        )
                    )
                    if args.no_sklearn:
                        continue
                    needed = [*NUMERIC, *CATEGORICAL, "user_id", "label"]
                    with console.timed(f"Collecting the same split to pandas for scikit-learn ({label})"):
                        train_pd = trained.prepared.train.select(
                            *[c for c in needed if c in trained.prepared.train.columns]
                        ).toPandas()
                        test_pd = trained.prepared.test.select(
                            *[c for c in needed if c in trained.prepared.test.columns]
                        ).toPandas()
                    with console.timed(f"scikit-learn {label} on {rows:,} rows"):
                        seconds, auc, accuracy = sklearn_run(train_pd, test_pd, kind, key)
                    results.append(
                        Row(rows, label, "scikit-learn", seconds, seconds, len(train_pd), auc, accuracy)
                    )
                    del train_pd, test_pd

    print()
    print("fit s: fitting features + model; total s: also reading, checking, profiling and evaluating")
    print(
        f"{'rows':>10} {'case':<10} {'engine':<18} {'fit s':>8} {'total s':>8} {'fit rows/s':>11} "
        f"{'AUC':>7} {'accuracy':>9}"
    )
    for row in results:
        print(
            f"{row.rows:>10,} {row.case:<10} {row.engine:<18} {row.seconds:>8.1f} {row.total:>8.1f} "
            f"{row.rows_per_second:>11,.0f} {row.auc:>7.4f} {row.accuracy:>9.4f}"
        )
    if len(args.rows) > 1:
        print("\nTime growth from the smallest to the largest row count (x rows -> x time):")
        small, large = min(args.rows), max(args.rows)
        for case in sorted({r.case for r in results}):
            for engine in sorted({r.engine for r in results}):
                pair = {r.rows: r.seconds for r in results if r.case == case and r.engine == engine}
                if small in pair and large in pair:
                    growth = pair[large] / pair[small]
                    print(f"  {case:<10} {engine:<18} {large / small:.1f}x rows -> {growth:.2f}x time")


if __name__ == "__main__":
    main()
