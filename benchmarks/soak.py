"""A soak of the Serve app under SIGKILLs (issue 28): a bounded load while, every 30-60 s, a random one of
the app's processes is SIGKILLed (each kind once per round, in a random order); then what survived.

One run: a local Ray (2 CPUs) with Spark, a random forest registered as @champion (ONNX, scored in the
ingress replicas) and one with a hashed column (no ONNX converter: scored by Spark in a deployment of its
own) routed 10% of requests as variant 'fallback'; Serve's high-throughput mode (HAProxy), the prediction
log on. The load is ``--clients`` HTTP clients sending one-record /predict requests back to back (Python
clients, not wrk: each answer's request id is kept, to find it in the prediction log afterwards). The
kills are drawn from: an ingress replica, the Spark-scored variant's replica, the state actor, the Serve
controller and HAProxy. Reported: requests sent, answers by status, and per kill the failures it caused and
the time until the app answered 200 again for good; then every 200 answer looked up in the prediction log
(answered but unlogged must be 0, and none twice).

    .venv/bin/python -m benchmarks.soak                          # 10 minutes, a kill every 30-60 s
    .venv/bin/python -m benchmarks.soak --minutes 3 --every 20 30
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pipeline._console import Console
from pipeline.config import PipelineConfig
from pipeline.data import ingest
from pipeline.jobs import train_and_register
from pipeline.runtime import Runtime, free_port
from serving import deploy, undeploy

if not __package__:  # run as a script: its folder comes first on sys.path, the project root is not on it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.serving_latency import make_config  # after the path above
from tests.serving._processes import actor_pid, haproxy_pid  # the fault tests' finders

TOKEN = "soak-token"  # the admin routes' token of this run's own app
TARGETS: dict[str, Callable[[], int]] = {
    "ingress replica": lambda: actor_pid("ServeReplica:pipeline:router"),
    "Spark-scored variant replica": lambda: actor_pid("ServeReplica:pipeline:variant-fallback"),
    "state actor": lambda: actor_pid("ServeState"),
    "Serve controller": lambda: actor_pid("ServeController"),
    "HAProxy": haproxy_pid,
}
REQUEST_TIMEOUT = 10.0  # a request not answered by then counts as a failure (a hang, told apart)


@dataclass
class Load:
    """Clients sending requests back to back until stopped; every answer's time, status and request id."""

    url: str
    record: dict[str, object]
    answers: list[tuple[float, str, str]] = field(default_factory=list)  # (when, status, request id or "")
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int) -> None:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)

    def _client(self) -> None:
        body = {"instances": [self.record]}
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/predict", json=body)
                    status = str(response.status_code)
                    request_id = response.json()["request_id"] if response.status_code == 200 else ""
                except httpx.HTTPError as error:  # refused, reset, timed out: counted by kind
                    status, request_id = type(error).__name__, ""
                    time.sleep(0.05)  # a refused connection comes back at once: no busy loop
                self.answers.append((time.monotonic(), status, request_id))


@dataclass(frozen=True)
class Kill:
    target: str
    at: float  # seconds since the load started
    failures: Counter[str]
    recovery: float | None  # seconds from the kill to the first 200 after its last failure; None: never


def with_sections(config: PipelineConfig, **sections: dict[str, object]) -> PipelineConfig:
    """``config`` with keys of some sections replaced (validated again, as the actors' copies are)."""
    raw = json.loads(config.model_dump_json())
    for name, values in sections.items():
        raw[name].update(values)
    return PipelineConfig.model_validate(raw)


def train_models(config: PipelineConfig, console: Console) -> tuple[PipelineConfig, dict[str, object]]:
    """@champion (ONNX) and a hashed-column forest (Spark-scored) as variant 'fallback'; one test record."""
    hashed_column = {"merchant_category": {"type": "hashed", "num_features": 32}}
    hashed = with_sections(config, features={"columns": hashed_column}, tracking={"alias": "none"})
    with Runtime(config, console=console) as runtime:
        ingest(runtime.spark, config.data)
        champion = train_and_register(runtime.spark, config, console)
        fallback = train_and_register(runtime.spark, hashed, console)
        prepared = champion.trained.prepared
        record = prepared.test.select(*prepared.input_columns).limit(1).collect()[0].asDict()
    version = int(fallback.registration.version)
    variants = {"champion": {"weight": 0.9}, "fallback": {"version": version, "weight": 0.1}}
    return with_sections(config, serving={"variants": variants}), record


def kill_and_watch(load: Load, target: str, started: float, watch: float) -> Kill:
    pid = TARGETS[target]()
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    time.sleep(watch)
    window = [(when, status) for when, status, _ in list(load.answers) if when >= killed_at]
    failures = Counter(status for _, status in window if status != "200")
    last_failure = max((when for when, status in window if status != "200"), default=killed_at)
    back = [when for when, status in window if status == "200" and when > last_failure]
    recovery = back[0] - killed_at if back else None
    return Kill(target, killed_at - started, failures, recovery)


def unlogged(config: PipelineConfig, request_ids: list[str], wait: float) -> tuple[int, int]:
    """Answered requests missing from the prediction log, and those in it more than once (after the
    replicas' next commits: ``wait`` seconds at most)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    wanted = set(request_ids)
    deadline, logged = time.monotonic() + wait, Counter[str]()
    while time.monotonic() < deadline:
        dataset = DeltaTable(str(config.serving.prediction_log.path)).to_pyarrow_dataset()
        rows = dataset.to_table(columns=["request_id"], filter=pc.field("request_id").isin(list(wanted)))
        logged = Counter(rows["request_id"].to_pylist())
        if set(logged) >= wanted:
            break
        time.sleep(1.0)
    return len(wanted - set(logged)), sum(1 for count in logged.values() if count > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument(
        "--every",
        type=float,
        nargs=2,
        default=(30.0, 60.0),
        metavar=("MIN", "MAX"),
        help="seconds between kills, drawn uniformly",
    )
    parser.add_argument("--clients", type=int, default=4, help="HTTP clients sending back to back")
    parser.add_argument("--seed", type=int, default=7, help="of the kills' order and times")
    args = parser.parse_args()
    draw = random.Random(args.seed)
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    config, record = train_models(make_config(root, 20_000, free_port(), high_throughput=True), console)
    with Runtime(config, start_spark=False, console=console):
        urls = deploy(config, environ={config.serving.token_env: TOKEN}, ready_timeout=600)
        load = Load(urls.api, record)
        started = time.monotonic()
        end = started + args.minutes * 60
        kills: list[Kill] = []
        order: list[str] = []
        load.start(args.clients)
        try:
            while True:
                pause = draw.uniform(*args.every)
                if time.monotonic() + pause >= end:
                    break
                time.sleep(pause)
                if not order:  # each kind once per round, in a new random order: every kind is killed
                    order = draw.sample(sorted(TARGETS), len(TARGETS))
                target = order.pop()
                kills.append(kill_and_watch(load, target, started, watch=min(pause, 25.0)))
                done = kills[-1]
                recovered = "never" if done.recovery is None else f"{done.recovery:.2f} s"
                print(
                    f"{done.at:7.1f} s  {target:<30} failures {dict(done.failures) or 0}, 200 again {recovered}",
                    flush=True,
                )
            time.sleep(max(0.0, end - time.monotonic()))
        finally:
            load.stop()
        answers = list(load.answers)
        answered = [request_id for _, status, request_id in answers if status == "200"]
        missing, twice = unlogged(config, answered, wait=60 + 2 * config.serving.prediction_log.flush_seconds)
        undeploy(config.serving.app_name)
    statuses = Counter(status for _, status, _ in answers)
    recoveries = [kill.recovery for kill in kills if kill.recovery is not None]
    print(f"\nsoak: {args.minutes:g} min, {args.clients} clients, {len(kills)} kills (seed {args.seed})")
    print(f"requests sent      {len(answers):,}")
    print(f"answered 200       {statuses['200']:,}")
    failed = {status: count for status, count in statuses.items() if status != "200"}
    print(f"not 2xx            {sum(failed.values()):,}  {failed}")
    print(f"answered, unlogged {missing}  (must be 0); logged twice {twice}")
    if recoveries:
        print(
            f"200 again after a kill: median {statistics.median(recoveries):.2f} s, max {max(recoveries):.2f} s "
            f"({len(kills) - len(recoveries)} never within the watch)"
        )
    for target in sorted(TARGETS):
        own = [kill for kill in kills if kill.target == target]
        if own:
            caused = sum(sum(kill.failures.values()) for kill in own)
            worst = max((kill.recovery or float("inf")) for kill in own)
            print(f"  {target:<30} killed {len(own)}x, failures {caused}, slowest back {worst:.2f} s")
    if missing or twice:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
