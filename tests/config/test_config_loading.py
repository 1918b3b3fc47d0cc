"""Config validation: pure and fast, plus the real CLI's one-line errors and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from tests.conftest import PROJECT_ROOT, S3_ENDPOINT, S3_SECRET, run_cli

MINIMAL = "data:\n  source: {path: data/table}\n"


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_config_is_valid() -> None:
    config = load_config(PROJECT_ROOT / "config" / "pipeline.yaml", environ={})
    assert config.root == PROJECT_ROOT
    assert config.data.source.path == PROJECT_ROOT / "data" / "demo" / "transactions"
    assert config.tracking.uri == f"sqlite:///{PROJECT_ROOT}/mlruns/mlflow.db"
    assert config.data.ingest.generate is not None


def test_relative_paths_resolve_against_root_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    file = write(tmp_path / "conf", "root: ..\n" + MINIMAL)
    config = load_config(file, environ={})
    assert config.root == tmp_path.resolve()
    assert config.data.source.path == tmp_path.resolve() / "data" / "table"
    assert config.tracking.artifact_location == tmp_path.resolve() / "mlruns" / "artifacts"
    # A default nested two sections deep resolves too (it once stayed relative to the serving process' cwd).
    assert config.serving.prediction_log.path == tmp_path.resolve() / "prediction_log"


def test_defaults_fill_unset_sections(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.ray.address is None and config.ray.dashboard_host == "127.0.0.1"
    assert config.spark.num_executors == 1
    assert config.data.ingest.mode == "overwrite"


def test_environment_overrides_fields_with_yaml_typed_values(tmp_path: Path) -> None:
    env = {
        "PIPELINE__SPARK__NUM_EXECUTORS": "3",
        "PIPELINE__RAY__DASHBOARD": "false",
        "PIPELINE__DATA__INGEST__MODE": "append",
        "UNRELATED": "x",
    }
    config = load_config(write(tmp_path, MINIMAL), environ=env)
    assert config.spark.num_executors == 3
    assert config.ray.dashboard is False
    assert config.data.ingest.mode == "append"


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL), environ={"PIPELINE__SPARK__EXECUTOR_CORES": "0"})
    (line,) = caught.value.problems
    assert "spark.executor_cores = 0" in line
    assert "PIPELINE__SPARK__EXECUTOR_CORES" in line
    assert "greater than 0" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 3\n" + MINIMAL.replace("{path", "{format: csv, path"), None),
        (MINIMAL.replace("{path: data/table}", "{path: t, format: csv, version: 2}"), "needs format 'delta'"),
        (MINIMAL + "spark: {executor_memory: lots}\n", "is not a JVM memory size"),
        (MINIMAL + "spark: {configs: {sql.shuffle: 2}}\n", "must start with 'spark.'"),
        (
            MINIMAL + "spark: {placement_strategy: WIDE}\n",
            "spark.placement_strategy = 'WIDE': Input should be 'PACK'",
        ),
        (MINIMAL + "ray: {address: 'http://x'}\n", "is not null, 'auto'"),
        (MINIMAL + "data: {source: {path: t}, split: {test_fraction: 1.5}}\n", "less than 1"),
        (
            MINIMAL.replace("{path: data/table}", "{path: t}\n  ingest: {generate: {}, input: {path: x}}"),
            "either 'generate' or 'input'",
        ),
        (MINIMAL + "serving: {variants: {a: {weight: 0}}}\n", "weights are all 0"),
        (
            MINIMAL + "serving: {variants: {a: {weight: 1}, b: {weight: 5.0e-324}}}\n",
            "must be 0 or at least 1e-06",
        ),
        (MINIMAL + "serving: {variants: {Champ: {weight: 1}}}\n", "variant name 'Champ'"),
        (MINIMAL + "serving: {variants: {a: {weight: 1, alias: x, version: 2}}}\n", "not both"),
        (MINIMAL + "serving: {shadow: canary}\n", "shadow = 'canary' is not a variant"),
        (MINIMAL + "serving: {port: 0}\n", "serving.port = 0"),
        (MINIMAL + "serving: {host: 'a b'}\n", "'a b' is not a host name"),
    ],
)
def test_rules_are_enforced_with_the_rule_in_the_message(tmp_path: Path, text: str, expected: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    message = str(caught.value)
    assert str(tmp_path / "job.yaml") in message
    if expected:
        assert expected in message


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        (
            "unknown key",
            MINIMAL + "spark: {executors: 2}\n",
            ["spark.executors = 2", "unknown key", "num_executors"],
        ),
        ("wrong type", MINIMAL + "spark: {executor_cores: many}\n", ["spark.executor_cores = 'many'", "integer"]),
        (
            "negative executors",
            MINIMAL + "spark: {num_executors: -1}\n",
            ["spark.num_executors = -1", "greater than 0"],
        ),
        ("missing field", "data: {label: y}\n", ["data.source", "required field is missing"]),
        ("bad yaml", "data:\n  source: {path: [unclosed\n", ["invalid YAML at line"]),
        ("not a mapping", "- just\n- a list\n", ["top level must be a mapping"]),
    ],
)
def test_cli_reports_bad_config_in_one_line_and_exits_2(
    tmp_path: Path, name: str, text: str, fragments: list[str]
) -> None:
    file = write(tmp_path, text)
    result = run_cli("info", "--config", str(file))
    assert result.returncode == 2, (name, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"config error: {file}")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_reports_missing_file(tmp_path: Path) -> None:
    result = run_cli("ingest", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"config error: {tmp_path / 'nope.yaml'}: config file not found"


def test_cli_info_prints_resolved_settings_where_each_location_resolves_and_versions() -> None:
    env = {"PIPELINE__SPARK__NUM_EXECUTORS": "2", "PIPELINE__DATA__SOURCE__PATH": "s3://lake-bucket/tx/"}
    result = run_cli("info", "--config", "config/pipeline.yaml", env=env)
    assert result.returncode == 0, result.stderr
    assert "num_executors: 2" in result.stdout
    assert "path: s3://lake-bucket/tx\n" in result.stdout  # the URI as given, normalised
    # The endpoint and the source of the keys (tests/conftest.py's moto settings), never the secret itself.
    bucket = f"S3 bucket 'lake-bucket' at {S3_ENDPOINT} (region us-east-1, credentials: AWS_ACCESS_KEY_ID)"
    assert f"data.source.path: s3://lake-bucket/tx -> {bucket}" in result.stdout
    assert f"serving.prediction_log.path: {PROJECT_ROOT}/prediction_log -> local filesystem" in result.stdout
    assert S3_SECRET not in result.stdout + result.stderr
    assert "java: 17." in result.stdout
    for package in ("ray: 2.60.0", "raydp: 1.6.5", "pyspark: 3.5.7", "mlflow: 3.17.2"):
        assert package in result.stdout


def test_cli_help_lists_subcommands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("info", "ingest"):
        assert command in result.stdout


def test_environment_override_keeps_the_case_of_existing_keys(tmp_path: Path) -> None:
    text = MINIMAL + "model: {algorithm: random_forest, hyperparameters: {numTrees: 100}}\n"
    config = load_config(write(tmp_path, text), environ={"PIPELINE__MODEL__HYPERPARAMETERS__NUMTREES": "7"})
    assert config.model.hyperparameters == {"numTrees": 7}
