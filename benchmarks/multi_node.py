"""What spreading over Ray nodes costs: the same sweep on one node vs two nodes with the same total CPUs.

In one run, on this machine, each on a fresh cluster started with `ray start` (the CLI joins it through
`ray.address`, as it would join any cluster):
  (a) one node with 4 CPUs: Spark's 2 executors and the trials share one raylet
  (b) two nodes with 2 CPUs each: executors placed with `placement_strategy: SPREAD`, trials on both
Both sweep the same 8-config logistic-regression grid (2 trials at a time) over the same Delta table.
Every node is on this machine, so (b) measures the machinery of several raylets (object transfers, Spark
shuffles and RPCs between nodes), not a network; the CPUs are the same cores in both.

    .venv/bin/python benchmarks/multi_node.py                # 200k rows
    .venv/bin/python benchmarks/multi_node.py --rows 50000   # a quick look
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import RayConfig
from pipeline.runtime import free_port, start_detached_head, start_worker_node, stop_detached_head, stop_haproxy

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GRID = {"regParam": [0.001, 0.01, 0.1, 1.0], "elasticNetParam": [0.0, 0.5]}  # 8 configs


def write_config(root: Path, address: str, rows: int, name: str) -> Path:
    raw: dict[str, Any] = {
        "root": str(root),
        "ray": {"address": address},
        "spark": {
            "num_executors": 2,
            "executor_cores": 1,
            "executor_memory": "2g",
            "placement_strategy": "SPREAD",
            "configs": {"spark.sql.shuffle.partitions": 8, "spark.ui.showConsoleProgress": False},
        },
        "data": {
            "source": {"path": "data/bench"},
            "label": "label",
            "ingest": {"generate": {"generator": "classification", "rows": rows, "seed": 42}},
        },
        "model": {"algorithm": "logistic_regression", "hyperparameters": {"maxIter": 30}},
        "tuning": {"search": "grid", "space": GRID, "max_concurrent_trials": 2, "trial_cpus": 1, "name": name},
        "tracking": {"experiment": "bench", "registered_model": "bench"},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cli(*args: str) -> float:
    """Run ``python -m pipeline ARGS``; its wall time in seconds (fails loudly)."""
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"pipeline {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def on_cluster(root: Path, nodes: int, cpus_per_node: int, rows: int, ingest: bool) -> float:
    """Start a head (+ workers), optionally ingest, time the sweep, stop everything."""
    logs = root / "logs"
    head = start_detached_head(
        RayConfig(dashboard=False, num_cpus=cpus_per_node), logs / f"head-{nodes}.log", high_throughput=False
    )
    workers = [
        start_worker_node(head.address, logs / f"worker-{nodes}-{i}.log", cpus_per_node, f"127.0.0.{i + 2}")
        for i in range(nodes - 1)
    ]
    try:
        time.sleep(10)  # the workers register with the head
        name = f"sweep-{nodes}-nodes-{free_port()}"
        config = write_config(root, head.address, rows, name)
        if ingest:
            cli("ingest", "--config", str(config))
        return cli("tune", "--config", str(config))
    finally:
        for worker in workers:
            stop_detached_head(worker.pid)
        stop_detached_head(head.pid)
        stop_haproxy(head.haproxy_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as folder:
        root = Path(folder)
        one = on_cluster(root, nodes=1, cpus_per_node=4, rows=args.rows, ingest=True)
        two = on_cluster(root, nodes=2, cpus_per_node=2, rows=args.rows, ingest=False)
    print(
        f"\nsweep of {len(GRID['regParam']) * len(GRID['elasticNetParam'])} configs over {args.rows} rows "
        "(wall time of `pipeline tune`, Spark start-up, refit and registration included)"
    )
    print(f"{'case':<34}{'seconds':>10}{'vs (a)':>9}")
    print(f"{'(a) 1 node x 4 CPUs':<34}{one:>10.1f}{1.0:>9.2f}")
    print(f"{'(b) 2 nodes x 2 CPUs, SPREAD':<34}{two:>10.1f}{two / one:>9.2f}")


if __name__ == "__main__":
    main()
