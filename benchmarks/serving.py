"""Serving latency and throughput: our Ray Serve endpoint beside `mlflow models serve` and the bare scorer.

One run, one registered random-forest pipeline (trained here on the demo transactions):
  (a) our Serve app through routing (champion 1.0): single-row p50/p99 over sequential requests,
      throughput at concurrency 1/8/32, and one 10,000-row batch request;
  (b) `mlflow models serve` of the same version: the Spark pyfunc a user would otherwise run;
  (c) the ONNX scorer called in-process: the floor of the scoring itself;
  (d) Ray Serve's own floor on this machine: an empty FastAPI ingress calling an empty deployment
      through a handle (the same two hops as (a), and the same request body), doing no work at all.

    .venv/bin/python -m benchmarks.serving                  # 2,000 sequential requests per server
    .venv/bin/python -m benchmarks.serving --requests 500   # a quick look

No `from __future__ import annotations`: FastAPI must see the real `Request` type in (d)'s route,
whose class Ray pickles by value into the replica.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def make_config(root: Path, rows: int, port: int) -> PipelineConfig:
    raw = {
        "ray": {"dashboard": False, "num_cpus": 2},
        "spark": {"executor_memory": "2g", "configs": {"spark.sql.shuffle.partitions": 4}},
        "data": {"source": {"path": str(root / "data")}, "label": "label",
                 "ingest": {"generate": {"generator": "classification", "rows": rows, "seed": 42}}},
        "model": {"algorithm": "random_forest", "hyperparameters": {"numTrees": 50, "maxDepth": 8}},
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db", "experiment": "bench", "registered_model": "bench"},
        "serving": {"port": port, "variants": {"champion": {"weight": 1.0, "replicas": 2}},
                    "max_body_bytes": 64 * 1024 * 1024},
    }  # fmt: skip
    return config_from_dict(raw, base_dir=root, environ={}, checks=[check_model])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


JSON_HEADERS = {"content-type": "application/json"}


def sequential(url: str, payload: dict[str, Any], requests: int) -> list[float]:
    """Seconds per request, one after the other, over one kept-alive connection. The body is encoded
    once, before timing: what is measured is the server, not the client's JSON encoder."""
    times = []
    body = json.dumps(payload).encode()
    with httpx.Client(timeout=120, headers=JSON_HEADERS) as client:
        for _ in range(10):
            client.post(url, content=body).raise_for_status()  # warm-up
        for _ in range(requests):
            started = time.perf_counter()
            client.post(url, content=body).raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def throughput(url: str, payload: dict[str, Any], concurrency: int, seconds: float) -> float:
    """Requests per second with ``concurrency`` clients sending back to back."""

    async def run() -> int:
        done = 0
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=concurrency)
        body = json.dumps(payload).encode()
        async with httpx.AsyncClient(timeout=120, limits=limits, headers=JSON_HEADERS) as client:

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    (await client.post(url, content=body)).raise_for_status()
                    done += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    started = time.perf_counter()
    count = asyncio.run(run())
    return count / (time.perf_counter() - started)


def serve_floor(api: str) -> str:
    """Deploy (d), the empty two-hop app, beside ours; returns its URL. Defined in here so that Ray
    pickles the classes by value (the workers need not import this module)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from ray import serve

    floor_api = FastAPI()

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64,
                      logging_config={"enable_access_log": False})  # fmt: skip
    class Empty:
        def score(self, body: bytes) -> bytes:
            return b'{"predictions":[]}'

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
    @serve.ingress(floor_api)
    class EmptyIngress:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        @floor_api.post("/predict")
        async def predict(self, request: Request) -> Response:
            return Response(await self.inner.score.remote(await request.body()), media_type="application/json")

    serve.run(EmptyIngress.bind(Empty.bind()), name="serve-floor", route_prefix="/serve-floor")  # type: ignore[attr-defined]
    return f"{api}/serve-floor/predict"


def in_process(score: Callable[[list[dict[str, Any]]], Any], record: dict[str, Any], requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        score([record])
        times.append(time.perf_counter() - started)
    return times


def mlflow_server(config: PipelineConfig, version: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    # It execs `uvicorn` by name: this venv's bin must be on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": config.tracking.uri, "PATH": path}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/bench/{version}",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="training rows")
    parser.add_argument("--requests", type=int, default=2000, help="sequential single-row requests per server")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    args = parser.parse_args()
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    config = make_config(root, args.rows, free_port())
    results: dict[str, dict[str, float]] = {}
    with Runtime(config, console=console) as runtime:
        ingest(runtime.spark, config.data)
        run = train_and_register(runtime.spark, config, console)
        version = run.registration.version
        prepared = run.trained.prepared
        records = [row.asDict() for row in prepared.test.select(*prepared.input_columns).limit(10_000).collect()]
        record = records[0]
        print(f"registered bench v{version}, scorer {run.registration.scorer} {run.registration.scorer_reason}")

        scorer = load_model(ModelSource(config.tracking.uri, "bench", version=version))
        floor = in_process(scorer.score, record, args.requests)
        results["(c) ONNX in-process"] = {
            "p50_ms": percentile(floor, 0.5) * 1e3,
            "p99_ms": percentile(floor, 0.99) * 1e3,
        }

        with console.timed("Deploying the Serve app"):
            urls = deploy(config)
        url = f"{urls.api}/predict"
        single = {"instances": [record]}
        ours = sequential(url, single, args.requests)
        results["(a) Serve, routed"] = {
            "p50_ms": percentile(ours, 0.5) * 1e3,
            "p99_ms": percentile(ours, 0.99) * 1e3,
        }
        for concurrency in (1, 8, 32):
            results["(a) Serve, routed"][f"rps@{concurrency}"] = throughput(url, single, concurrency, args.seconds)
        batch_times = sequential(url, {"instances": records}, 5)
        results["(a) Serve, routed"]["batch10k_ms"] = statistics.median(batch_times) * 1e3

        floor_url = serve_floor(urls.api)
        empty = sequential(floor_url, single, args.requests)
        results["(d) Ray Serve, empty app"] = {"p50_ms": percentile(empty, 0.5) * 1e3,
                                               "p99_ms": percentile(empty, 0.99) * 1e3}  # fmt: skip
        for concurrency in (1, 8, 32):
            results["(d) Ray Serve, empty app"][f"rps@{concurrency}"] = throughput(
                floor_url, single, concurrency, args.seconds
            )
        # The same 10,000-row body carried in and a tiny answer out: what the transport alone costs.
        results["(d) Ray Serve, empty app"]["batch10k_ms"] = (
            statistics.median(sequential(floor_url, {"instances": records}, 5)) * 1e3
        )
        from ray import serve

        serve.delete("serve-floor")
        undeploy(config.serving.app_name)

    port = free_port()
    server = mlflow_server(config, version, port, root / "mlflow-serve.log")
    try:
        with console.timed("Starting `mlflow models serve` (Spark pyfunc)"):
            wait_http(f"http://127.0.0.1:{port}/ping", 300, server)
        theirs_url = f"http://127.0.0.1:{port}/invocations"
        theirs_payload = {"dataframe_records": [record]}
        theirs = sequential(theirs_url, theirs_payload, max(50, args.requests // 10))
        results["(b) mlflow models serve"] = {"p50_ms": percentile(theirs, 0.5) * 1e3,
                                              "p99_ms": percentile(theirs, 0.99) * 1e3}  # fmt: skip
        for concurrency in (1, 8):
            results["(b) mlflow models serve"][f"rps@{concurrency}"] = throughput(
                theirs_url, theirs_payload, concurrency, args.seconds
            )
        try:
            batch = sequential(theirs_url, {"dataframe_records": records}, 3)
            results["(b) mlflow models serve"]["batch10k_ms"] = statistics.median(batch) * 1e3
        except httpx.HTTPStatusError as error:  # reported, not fatal: the rest of the table still stands
            print(f"(b) 10,000-row batch refused: {error.response.status_code} {error.response.text[:300]}")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)

    columns = ["p50_ms", "p99_ms", "rps@1", "rps@8", "rps@32", "batch10k_ms"]
    print(f"\n{'':<26}" + "".join(f"{c:>13}" for c in columns))
    for name, values in results.items():
        print(f"{name:<26}" + "".join(f"{values[c]:>13.2f}" if c in values else f"{'-':>13}" for c in columns))
    a, b = results["(a) Serve, routed"], results["(b) mlflow models serve"]
    d = results["(d) Ray Serve, empty app"]
    print(f"\np50 (b)/(a): {b['p50_ms'] / a['p50_ms']:.1f}x   p99 (b)/(a): {b['p99_ms'] / a['p99_ms']:.1f}x   "
          f"rps@8 (a)/(b): {a['rps@8'] / b['rps@8']:.1f}x")  # fmt: skip
    print(f"ours over Ray Serve's empty two-hop app (a)-(d): p50 +{a['p50_ms'] - d['p50_ms']:.2f} ms, "
          f"p99 +{a['p99_ms'] - d['p99_ms']:.2f} ms")  # fmt: skip
    print(
        f"targets: p50 <= 6 ms: {a['p50_ms']:.2f}; p99 <= 15 ms: {a['p99_ms']:.2f}; "
        f"10k-row batch < 100 ms: {a['batch10k_ms']:.1f}; >= 10x faster than (b): {b['p50_ms'] / a['p50_ms']:.1f}x"
    )


if __name__ == "__main__":
    main()
