"""The Serve app under real SIGKILLs (Serve's high-throughput mode, as deployed by default): each process
of the app is killed under a bounded request stream; the app answers again by itself (how soon is printed:
a speed figure, bounded here only against a hang), only requests in flight fail (with a status, never a
hang), the weights last set stay in force, no count is reset, and every request answered 200 is in the
prediction log exactly once.
Also: /health while an alias is missing, and the listening sockets of the app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from pipeline.runtime import free_port, haproxy_pids
from serving import deploy, undeploy
from tests.conftest import PROJECT_ROOT
from tests.serving._kills import RECOVERY_BOUND_SECONDS, WATCH_SECONDS, kill_under_streams, logged_once
from tests.serving._processes import actor_pid, haproxy_pid, own_ray_processes, process_title
from tests.serving.test_serve_app import (
    AUTH,
    TOKEN,
    _config,
    _requests_total,
    assert_no_process_left,
    session_processes,
)

# Starts engines of its own: left out of the quick loop (`pytest`), run by .ci/run.
pytestmark = pytest.mark.extended

WEIGHTS = {"champion": 0.0, "pinned": 1.0, "challenger": 0.0}


@pytest.fixture(scope="module")
def app(trainings: Any, lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Version 1 @champion, also pinned as variant 'pinned'; '@challenger' does not exist (yet)."""
    store = tmp_path_factory.mktemp("faults-store")
    port = free_port()
    config = _config(
        lake,
        store,
        "decision_tree",
        port,
        sticky_key=None,
        shadow=None,
        variants={
            "champion": {"weight": 0.8},
            "challenger": {"weight": 0.2},
            "pinned": {"version": 1, "weight": 0.0},
        },
    )
    config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"alias": "champion"})})
    run = trainings.train_and_register(config)
    prepared = run.trained.prepared
    record = prepared.test.select(*prepared.input_columns).limit(1).collect()[0].asDict()
    urls = deploy(config, environ={config.serving.token_env: TOKEN}, ready_timeout=300)
    client = httpx.Client(base_url=urls.api, timeout=30)
    yield {"config": config, "client": client, "record": record, "body": {"instances": [record]}, "port": port}
    client.close()
    from ray import serve

    undeploy(config.serving.app_name)
    serve.shutdown()


def test_health_is_ready_while_an_alias_does_not_exist_yet(app: Any) -> None:
    health = app["client"].get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["missing"] == ["challenger"]
    assert health.json()["variants"]["challenger"]["ready"] is False
    answers = {
        app["client"].post("/predict", json={"instances": [app["record"]]}).json()["variant"] for _ in range(30)
    }
    assert answers == {"champion"}  # the missing variant gets no traffic


def test_weights_that_would_route_nothing_are_refused_and_the_app_keeps_answering(app: Any) -> None:
    """Only @champion (and 'pinned', its version) are loaded: weights giving every request to the missing
    @challenger, or a share too small to route anything, are refused; the weights in force stay."""
    client = app["client"]
    before = client.get("/models").json()["variants"]
    refused = client.post("/admin/weights", json={"weights": {"champion": 0, "challenger": 1}}, headers=AUTH)
    assert refused.status_code == 409, refused.text
    reason = refused.json()["detail"]["reason"]
    assert "no variant with a loaded model would get traffic" in reason, reason
    assert "loaded: champion (version 1) would get 0" in reason, reason
    assert "pinned (version 1) would get 0" in reason and "challenger (" not in reason, reason
    tiny = client.post("/admin/weights", json={"weights": {"champion": 0, "challenger": 5e-324}}, headers=AUTH)
    assert tiny.status_code == 422 and "must be 0 or at least 1e-06" in tiny.json()["detail"]["reason"], tiny.text
    document = client.get("/openapi.json").json()
    assert "409" in document["paths"]["/admin/weights"]["post"]["responses"]
    assert client.get("/health").status_code == 200
    answers = [client.post("/predict", json={"instances": [app["record"]]}) for _ in range(20)]
    assert {answer.status_code for answer in answers} == {200}
    after = client.get("/models").json()["variants"]
    assert {name: v["weight"] for name, v in after.items()} == {name: v["weight"] for name, v in before.items()}


def _metrics_total(client: httpx.Client) -> int:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return sum(_requests_total(answer.text, role) for role in ("routed", "direct", "shadow"))


def _ready_for_kill(app: Any) -> int:
    client = app["client"]
    # A steady app first: every replica of every deployment RUNNING. Right after a kill, the replacement may
    # still be starting; killing it then (the newest pid) measured a start-up, not a kill (seen twice: 300
    # answers in 9 s and one request held past 5 s, only on the second ingress kill).
    from ray import serve

    deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
    while time.monotonic() < deadline:
        deployments = serve.status().applications[app["config"].serving.app_name].deployments
        if all(
            str(d.status).endswith("HEALTHY")
            and not str(d.status).endswith("UNHEALTHY")
            and set(map(str, d.replica_states)) <= {"RUNNING", "ReplicaState.RUNNING"}
            for d in deployments.values()
        ):
            break
        time.sleep(0.5)
    set_weights = client.post("/admin/weights", json={"weights": WEIGHTS}, headers=AUTH)
    assert set_weights.status_code == 200, set_weights.text
    for _ in range(5):
        assert client.post("/predict", json={"instances": [app["record"]]}).status_code == 200
    return _metrics_total(client)


def _after_kill(app: Any, statuses: Counter[str], recovery: float, counted_before: int, outage: bool) -> None:
    client = app["client"]
    failed = {status: count for status, count in statuses.items() if status != "200"}
    # Issue 10's 10 s holds for every kill but HAProxy's (a measured outage: see RECOVERY_BOUND_SECONDS).
    assert recovery <= (RECOVERY_BOUND_SECONDS if outage else WATCH_SECONDS), (recovery, statuses)
    assert not {status for status in failed if "Timeout" in status}, statuses  # failures are quick, never hangs
    if outage:
        # The HTTP listener itself died: until its replacement has its routes, every request fails at once
        # (connection refused, then 404). What this costs is printed; the README says so.
        assert set(failed) <= {"ConnectError", "RemoteProtocolError", "ReadError", "404", "500", "503"}, statuses
    else:
        # The request in flight at the kill, and at most one more: one sent on HAProxy's pooled connection
        # to the dead replica before its 1 s health check marks it down (Ray's HAProxy retries connection
        # failures only, so that one comes back as its 502 rewritten to 500; seen in CI under load).
        assert sum(failed.values()) <= 2, statuses
    deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
    while client.get("/metrics").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _metrics_total(client) >= counted_before + statuses["200"] // 2  # carried on, not reset
    variants = {client.post("/predict", json={"instances": [app["record"]]}).json()["variant"] for _ in range(20)}
    assert variants == {"pinned"}  # the weights last set are still in force
    assert client.get("/models").json()["variants"]["pinned"]["weight"] == 1.0


@pytest.mark.parametrize(
    ("process", "find_pid", "outage"),
    [
        ("state actor", lambda: actor_pid("ServeState"), False),
        ("ingress replica", lambda: actor_pid("ServeReplica:pipeline:router"), False),
        ("ingress replica, again", lambda: actor_pid("ServeReplica:pipeline:router"), False),
        ("HAProxy", haproxy_pid, True),
        ("Serve controller", lambda: actor_pid("ServeController"), False),
    ],
)
def test_the_app_survives_a_sigkill(app: Any, process: str, find_pid: Callable[[], int], outage: bool) -> None:
    counted = _ready_for_kill(app)
    (stream,), killed_at = kill_under_streams(str(app["client"].base_url), [app["body"]], find_pid)
    statuses, recovery = stream.statuses, stream.recovery(killed_at)
    print(f"{process}: answered 200 for good {recovery:.2f} s after the kill; statuses {dict(statuses)}")
    _after_kill(app, statuses, recovery, counted, outage)
    logged_once(app["config"].serving.prediction_log.path, stream.answered_ids)
    restored = app["client"].post(
        "/admin/weights", json={"weights": {"champion": 0.8, "challenger": 0.2}}, headers=AUTH
    )
    assert restored.status_code == 200


def _serve_listeners() -> dict[tuple[str, int, int], set[str]]:
    """Listening TCP sockets of Serve's processes (HAProxy, the proxy manager, the controller, replicas):
    (process kind, pid, port) -> the addresses bound."""
    folder = Path(os.environ["RAY_SERVE_HAPROXY_SOCKET_PATH"]).parent
    owners = {pid: "haproxy" for pid in haproxy_pids(folder)}
    for process in own_ray_processes():
        title = process_title(process)
        if title.startswith(
            ("ray::ServeReplica", "ray::ServeController", "ray::HAProxyManager", "ray::ProxyActor")
        ):
            owners[process.pid] = title.split()[0].removeprefix("ray::").split(".")[0]
    listeners: dict[tuple[str, int, int], set[str]] = {}
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.pid in owners and connection.laddr:
            key = (owners[connection.pid], connection.pid, connection.laddr.port)
            listeners.setdefault(key, set()).add(connection.laddr.ip)
    return listeners


def _ray_worker_ports() -> set[int]:
    """The core-worker RPC port of every live actor, from the GCS (Ray's own cluster ports, token-guarded)."""
    from ray._private.state import actors  # no public call gives these without the dashboard

    return {int(info["Address"]["Port"]) for info in actors().values() if info["State"] == "ALIVE"}


def test_what_listens_beyond_loopback(app: Any) -> None:
    """The app's HTTP port listens on 127.0.0.1 only, and so do the replicas' HTTP ports. Beyond loopback
    only what Ray 2.60 binds to every interface with no setting to change it: each worker's RPC port,
    each replica's inter-deployment gRPC port (hard-coded `[::]:0`), and HAProxy's stats and Prometheus
    ports. Each is named in the README."""
    listeners = _serve_listeners()
    print({f"{who}:{port}": sorted(addresses) for (who, _, port), addresses in listeners.items()})
    data_port = [addresses for (who, _, port), addresses in listeners.items() if port == app["port"]]
    assert data_port == [{"127.0.0.1"}]
    exposed = {key for key, addresses in listeners.items() if addresses - {"127.0.0.1", "::1"}}
    stats, metrics = (
        int(os.environ["RAY_SERVE_HAPROXY_STATS_PORT"]),
        int(os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"]),
    )
    haproxy = {key for key in exposed if key[0] == "haproxy"}
    assert {port for _, _, port in haproxy} == {stats, metrics}  # exactly the known two: not vacuous
    rpc = _ray_worker_ports()
    others = Counter((who, pid) for who, pid, port in exposed - haproxy if port not in rpc)
    unexpected = {
        key: count for key, count in others.items() if not key[0].startswith("ServeReplica") or count > 1
    }
    assert not unexpected, unexpected  # beyond RPC, a replica exposes one port: its inter-deployment gRPC


def test_ctrl_c_of_serve_leaves_no_process_and_frees_the_port(app: Any, tmp_path: Path) -> None:
    """`serve` in the foreground on a Ray head of its own (a second cluster), stopped with Ctrl-C (SIGINT)."""
    config = app["config"]
    port = free_port()
    raw = {
        "root": str(tmp_path),
        "ray": {"num_cpus": 2, "dashboard": False},
        "data": {"source": {"path": str(config.data.source.path)}, "label": "label"},
        "tracking": {"uri": config.tracking.uri, "registered_model": config.tracking.registered_model},
        "serving": {"port": port, "variants": {"champion": {"weight": 1.0}}, "ingress_replicas": 1},
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIPELINE__", "RAY_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--config", str(path)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []  # read by a thread: the test waits for `serve`'s own line, not a guessed delay
    reader = threading.Thread(target=lambda: lines.extend(line.decode() for line in process.stdout or ()))
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if any("serving in the foreground" in line for line in list(lines)):
                break
            time.sleep(1)
        assert process.poll() is None, "".join(lines)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        running = session_processes(process.pid)  # what must be gone after Ctrl-C: this check is not vacuous
        assert any("haproxy" in line for line in running) and any("raylet" in line for line in running), running
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        reader.join(timeout=30)
    output = "".join(lines)
    assert "serving in the foreground" in output and "interrupted" in output, output[-2000:]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    time.sleep(2)  # Ray's own processes end a moment after the driver
    assert_no_process_left(process.pid)
