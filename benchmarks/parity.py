"""ONNX parity per algorithm: train every example config on its demo data and print the parity gate's verdict.

For each of the 14 algorithms: the scorer the gate chose (onnx or spark, with the reason), the rows
compared, the largest difference against Spark's `transform` (probabilities, or relative for
regression), and the single-row ONNX scoring time in-process beside Spark's `transform` of one row.

    .venv/bin/python -m benchmarks.parity                 # 20,000 rows per data set at most
    .venv/bin/python -m benchmarks.parity --rows 5000     # a quick look
    .venv/bin/python -m benchmarks.parity --only als gmm  # some algorithms only
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from pipeline._console import Console
from pipeline.algorithms import ALGORITHMS, check_model
from pipeline.config import PipelineConfig, config_from_dict
from pipeline.data import ingest
from pipeline.export import export_scorer
from pipeline.runtime import Runtime
from pipeline.training import train
from scoring import OnnxScorer

EXAMPLES = Path(__file__).resolve().parents[1] / "config" / "examples"


def example(name: str, root: Path, rows: int) -> PipelineConfig:
    raw = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    raw["root"] = str(root)
    raw["ray"] = {"dashboard": False}
    generate = raw["data"]["ingest"]["generate"]
    generate["rows"] = min(generate.get("rows", rows), rows)
    return config_from_dict(raw, base_dir=root, environ={}, checks=[check_model])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--only", nargs="+", choices=list(ALGORITHMS), help="these algorithms only")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-parity-"))
    console = Console()
    lines = []
    with Runtime(example("logistic_regression", root, args.rows), console=console) as runtime:
        spark = runtime.spark
        ingested: set[str] = set()
        for name in args.only or list(ALGORITHMS):
            config = example(name, root, args.rows)
            if str(config.data.source.path) not in ingested:
                ingest(spark, config.data)
                ingested.add(str(config.data.source.path))
            with console.timed(f"{name}: train and export"):
                trained = train(spark, config)
                exported = export_scorer(trained)
            prepared = trained.prepared
            one = prepared.test.select(*prepared.input_columns).limit(1)
            record = one.collect()[0].asDict()
            started = time.perf_counter()
            for _ in range(5):
                trained.model.transform(one).select("prediction").collect()
            spark_ms = (time.perf_counter() - started) / 5 * 1e3
            onnx_ms = None
            if exported.onnx is not None:
                scorer = OnnxScorer(exported.onnx, exported.spec)
                started = time.perf_counter()
                for _ in range(200):
                    scorer.score([record])
                onnx_ms = (time.perf_counter() - started) / 200 * 1e3
            difference = "-" if exported.max_difference is None else f"{exported.max_difference:.2g}"
            onnx_text = "-" if onnx_ms is None else f"{onnx_ms:.3f}"
            lines.append(
                f"| `{name}` | {exported.scorer} | {difference} ({exported.rows_compared}) | "
                f"{onnx_text} | {spark_ms:.0f} | {exported.reason or ''} |"
            )
    print("\n| algorithm | scorer | largest difference (rows) | ONNX ms/row | Spark ms/row | reason |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
