"""Serving latency and throughput, measured with `wrk` (a C load generator; `apt-get install wrk`).

One run, one registered random forest (50 trees, depth 8, trained here on the demo transactions), our app
with 2 ingress replicas, and in the same run and mode the floor: Ray Serve's empty one-hop FastAPI app
(2 replicas answering a fixed body). Rows:
  (a) ours, Serve's high-throughput mode (HAProxy ingress; ONNX scored inside the ingress replicas), with
      the prediction log on (the default: each answer written ahead to its replica's file), (a-) the same
      with it off: the log's cost, and (a+) with `wait_for_disk` (each answer waits for its fdatasync)
      (each the mean of two runs, measured on, off, disk, on, off, disk)
  (d) Ray Serve's empty one-hop app, the same mode: the floor (a) is held against
  (a0) ours, Serve's default mode (Python proxy), and (d0) the empty app in that mode: for the record
  (b) `mlflow models serve` of the same version (the Spark pyfunc a user would otherwise run)
  (c) the ONNX scorer called in-process: the cost of the scoring itself

    .venv/bin/python -m benchmarks.serving_latency                # 8 s per wrk run
    .venv/bin/python -m benchmarks.serving_latency --seconds 4    # a quick look
    .venv/bin/python -m benchmarks.serving_latency --log-only     # rows (a), (a-), (a+), (d) only

No `from __future__ import annotations`: FastAPI must see the real `Request` type in the floor's route,
whose class Ray pickles by value into the replicas.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from pipeline._console import Console
from pipeline.algorithms import check_model
from pipeline.config import PipelineConfig, config_from_dict
from pipeline.data import ingest
from pipeline.jobs import train_and_register
from pipeline.runtime import Runtime, free_port
from serving import deploy, undeploy
from serving._registry import ModelSource, load_model

REPLICAS = 2


def make_config(root: Path, rows: int, port: int, high_throughput: bool) -> PipelineConfig:
    raw = {
        "ray": {"dashboard": False, "num_cpus": 2},
        "spark": {"executor_memory": "2g", "configs": {"spark.sql.shuffle.partitions": 4}},
        "data": {
            "source": {"path": str(root / "data")},
            "label": "label",
            "ingest": {"generate": {"generator": "classification", "rows": rows, "seed": 42}},
        },
        "model": {"algorithm": "random_forest", "hyperparameters": {"numTrees": 50, "maxDepth": 8}},
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db", "experiment": "bench", "registered_model": "bench"},
        "serving": {
            "port": port,
            "variants": {"champion": {"weight": 1.0}},
            "ingress_replicas": REPLICAS,
            "high_throughput": high_throughput,
            "max_body_bytes": 64 * 1024 * 1024,
        },
    }
    return config_from_dict(raw, base_dir=root, environ={}, checks=[check_model])


def wrk(url: str, body: bytes, clients: int, seconds: float, folder: Path) -> dict[str, float]:
    """p50/p99 latency (ms) and requests/s from one `wrk` run POSTing ``body`` with ``clients`` connections."""
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
    )
    # A 30 s timeout: the Spark pyfunc server queues 32 clients for seconds (wrk's default gives up at 2 s).
    command = [
        "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{seconds:g}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")

    def latency(share: str) -> float:
        found = re.search(rf"^\s+{share}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        assert found, output
        return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rps, output
    return {"p50_ms": latency("50"), "p99_ms": latency("99"), "rps": float(rps.group(1))}


def measure(url: str, body: bytes, batch: bytes | None, seconds: float, folder: Path) -> dict[str, float]:
    """Latency at 1 client, throughput at 1 and 32 clients, and a 10,000-record request's time."""
    wrk(url, body, 1, 1, folder)  # warm-up
    one = wrk(url, body, 1, seconds, folder)
    many = wrk(url, body, 32, seconds, folder)
    row = {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"], "rps@1": one["rps"], "rps@32": many["rps"]}
    if batch is not None:
        row["batch10k_ms"] = batch_ms(url, batch)
    return row


def batch_ms(url: str, body: bytes, repeats: int = 7) -> float:
    """Median end-to-end time of one large request (body encoded beforehand; the answer is not parsed)."""
    times = []
    with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as client:
        client.post(url, content=body).raise_for_status()
        for _ in range(repeats):
            started = time.perf_counter()
            client.post(url, content=body).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def serve_floor(api: str) -> str:
    """Deploy the empty one-hop app beside ours; returns its URL. Defined in here so that Ray pickles the
    class by value (the workers need not import this module)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from ray import serve

    floor_api = FastAPI()

    @serve.deployment(ray_actor_options={"num_cpus": 0}, num_replicas=REPLICAS, max_ongoing_requests=64)
    @serve.ingress(floor_api)
    class EmptyIngress:
        @floor_api.post("/predict")
        async def predict(self, request: Request) -> Response:
            await request.body()
            return Response(b'{"predictions":[]}', media_type="application/json")

    serve.run(EmptyIngress.bind(), name="serve-floor", route_prefix="/serve-floor")  # type: ignore[attr-defined]
    return f"{api}/serve-floor/predict"


def without_log(config: PipelineConfig) -> PipelineConfig:
    """The same app with the prediction log off."""
    serving = config.serving
    log = serving.prediction_log.model_copy(update={"enabled": False})
    return config.model_copy(update={"serving": serving.model_copy(update={"prediction_log": log})})


def waiting_for_disk(config: PipelineConfig) -> PipelineConfig:
    """The same app with each answer waiting for its log rows' fdatasync."""
    serving = config.serving
    log = serving.prediction_log.model_copy(update={"wait_for_disk": True})
    return config.model_copy(update={"serving": serving.model_copy(update={"prediction_log": log})})


def serve_rows(
    configs: list[PipelineConfig], body: bytes, batch: bytes, seconds: float, folder: Path
) -> list[dict[str, float]]:
    """Each config's app in turn, then the floor, on the running cluster (whose mode was set when it started)."""
    from ray import serve

    rows = []
    try:
        for config in configs:
            urls = deploy(config)
            try:
                rows.append(measure(f"{urls.api}/predict", body, batch, seconds, folder))
            finally:
                undeploy(config.serving.app_name)
        floor_url = serve_floor(urls.api)
        rows.append(measure(floor_url, body, batch, seconds, folder))
        serve.delete("serve-floor")
    finally:
        serve.shutdown()
    return rows


def mean_row(*rows: dict[str, float]) -> dict[str, float]:
    return {column: statistics.fmean(row[column] for row in rows) for column in rows[0]}


def logged_rows(path: Path | str) -> int:
    """Rows in the prediction log table (every answered record of the runs with the log on)."""
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pyarrow_table(columns=["row"]).num_rows


def mlflow_server(config: PipelineConfig, version: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    # It execs `uvicorn` by name: this venv's bin must be on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": config.tracking.uri, "PATH": path}
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/bench/{version}",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("wb") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def in_process(
    config: PipelineConfig, version: str, record: dict[str, Any], repeats: int = 2000
) -> dict[str, float]:
    model = load_model(ModelSource(config.tracking.uri, "bench", version=version))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.score([record])
        times.append(time.perf_counter() - started)
    times.sort()
    return {"p50_ms": times[len(times) // 2] * 1e3, "p99_ms": times[int(0.99 * len(times))] * 1e3}


def batch_breakdown(config: PipelineConfig, version: str, batch: bytes) -> dict[str, float]:
    """Where a 10,000-record request's time goes inside the replica: the product's own steps, in-process,
    with the scorer threads the app uses (median of 5, ms)."""
    import orjson

    from scoring import format_outputs, records_to_feeds
    from serving._requests import parse_json

    model = load_model(ModelSource(config.tracking.uri, "bench", version=version), threads=os.cpu_count() or 1)
    scorer: Any = model.score.__self__  # type: ignore[attr-defined]  # the OnnxScorer behind the version
    steps: dict[str, float] = {}

    def timed(name: str, step: Any) -> Any:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            value = step()
            times.append(time.perf_counter() - started)
        steps[name] = statistics.median(times) * 1e3
        return value

    payload = timed("parse", lambda: parse_json(batch))
    feeds = timed("feeds", lambda: records_to_feeds(scorer.spec.inputs, payload["instances"]))
    outputs = timed("onnxruntime", lambda: scorer.score_arrays(feeds))
    answer = timed("format", lambda: format_outputs(outputs, len(payload["instances"])))
    timed("to JSON", lambda: orjson.dumps(answer))
    return steps


def mlflow_row(
    config: PipelineConfig, version: str, record: dict[str, Any], seconds: float, root: Path
) -> dict[str, float]:
    port = free_port()
    server = mlflow_server(config, version, port, root / "mlflow-serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", 300, server)
        body = json.dumps({"dataframe_records": [record]}).encode()
        url = f"http://127.0.0.1:{port}/invocations"
        wrk(url, body, 1, 2, root)
        one = wrk(url, body, 1, seconds, root)
        many = wrk(url, body, 32, seconds, root)
        return {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"], "rps@1": one["rps"], "rps@32": many["rps"]}
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


COLUMNS = ["p50_ms", "p99_ms", "rps@1", "rps@32", "batch10k_ms"]


def table_row(name: str, values: dict[str, float]) -> str:
    return f"{name:<44}" + "".join(f"{values[c]:>13.2f}" if c in values else f"{'-':>13}" for c in COLUMNS)


class Results(dict[str, dict[str, float]]):
    """The rows so far; each is printed as it is measured, so a later failure loses nothing."""

    def __setitem__(self, name: str, values: dict[str, float]) -> None:
        super().__setitem__(name, values)
        print(table_row(name, values), flush=True)


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"\n{'':<44}" + "".join(f"{c:>13}" for c in COLUMNS))
    for name, values in results.items():
        print(table_row(name, values))
    a, d = results["(a) ours, high-throughput"], results["(d) empty one-hop app, high-throughput"]
    off, disk = results["(a-) ours, high-throughput, prediction log off"], results["(a+) ours, log waits for disk"]
    checks = [
        ("log on: p50 <= 1.1x log off's", a["p50_ms"] / off["p50_ms"], a["p50_ms"] <= 1.1 * off["p50_ms"]),
        ("log on: rps@32 >= 0.9x off's", a["rps@32"] / off["rps@32"], a["rps@32"] >= 0.9 * off["rps@32"]),
        ("disk wait: p50 <= 1.15x off's", disk_p50 := disk["p50_ms"] / off["p50_ms"], disk_p50 <= 1.15),
        ("disk wait: rps@32 >= 0.85x off's", disk_rps := disk["rps@32"] / off["rps@32"], disk_rps >= 0.85),
        ("p50 <= 1.5 ms", a["p50_ms"], a["p50_ms"] <= 1.5),
        ("p50 <= 1.5x floor's", a["p50_ms"] / d["p50_ms"], a["p50_ms"] <= 1.5 * d["p50_ms"]),
        ("p99 <= 10 ms", a["p99_ms"], a["p99_ms"] <= 10),
        ("rps@32 >= 1,500", a["rps@32"], a["rps@32"] >= 1500),
        ("rps@32 >= 0.6x floor's", a["rps@32"] / d["rps@32"], a["rps@32"] >= 0.6 * d["rps@32"]),
        ("10k batch <= 60 ms", a["batch10k_ms"], a["batch10k_ms"] <= 60),
    ]
    if (b := results.get("(b) mlflow models serve")) is not None:
        speedup = b["p50_ms"] / a["p50_ms"]
        checks.append((">= 100x faster than (b) at p50", speedup, speedup >= 100))
    print()
    for name, value, met in checks:
        print(f"{name:<32}{value:>10.2f}   {'met' if met else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="training rows")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each wrk run")
    parser.add_argument("--log-only", action="store_true", help="only the high-throughput rows: the log's cost")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmarks.serving_latency needs wrk: apt-get install wrk")
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    config = make_config(root, args.rows, free_port(), high_throughput=True)
    results = Results()
    with Runtime(config, console=console) as runtime:
        ingest(runtime.spark, config.data)
        run = train_and_register(runtime.spark, config, console)
        version = run.registration.version
        prepared = run.trained.prepared
        records = [row.asDict() for row in prepared.test.select(*prepared.input_columns).limit(10_000).collect()]
        print(f"registered bench v{version}, scorer {run.registration.scorer} {run.registration.scorer_reason}")
        body = json.dumps({"instances": records[:1]}).encode()
        batch = json.dumps({"instances": records}).encode()
        # On, off, disk, twice: they differ by less than this machine's drift, which alternating evens out.
        with console.timed(
            "High-throughput mode: ours (prediction log on, off, waiting for disk; twice), then the empty app"
        ):
            configs = [config, without_log(config), waiting_for_disk(config)] * 2
            on_1, off_1, disk_1, on_2, off_2, disk_2, floor = serve_rows(configs, body, batch, args.seconds, root)
        results["(a) ours, high-throughput"] = mean_row(on_1, on_2)
        results["(a-) ours, high-throughput, prediction log off"] = mean_row(off_1, off_2)
        results["(a+) ours, log waits for disk"] = mean_row(disk_1, disk_2)
        results["(d) empty one-hop app, high-throughput"] = floor
        print(f"prediction log: {logged_rows(config.serving.prediction_log.path):,} rows committed")
    if args.log_only:
        print_table(results)
        return
    default_mode = make_config(root, args.rows, free_port(), high_throughput=False)
    with Runtime(default_mode, start_spark=False, console=console), console.timed("Default mode"):
        ours, floor = serve_rows([default_mode], body, batch, args.seconds, root)
    results["(a0) ours, default mode"], results["(d0) empty one-hop app, default mode"] = ours, floor
    with console.timed("`mlflow models serve` (Spark pyfunc)"):
        results["(b) mlflow models serve"] = mlflow_row(config, version, records[0], args.seconds, root)
    results["(c) ONNX in-process"] = in_process(config, version, records[0])
    steps = batch_breakdown(config, version, batch)
    print_table(results)
    print("\n10,000 records in-process (ms): " + ", ".join(f"{name} {ms:.1f}" for name, ms in steps.items()))


if __name__ == "__main__":
    main()
