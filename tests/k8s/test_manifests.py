"""The Kubernetes manifests, checked offline (no cluster here): the generated ones are what the config renders,
each overlay builds with kustomize (kubectl's), every object validates against the Kubernetes API schemas
(kubernetes-validate, strict: an unknown field fails), the pod templates inside KubeRay's resources too, the
serveConfigV2 against Ray Serve's own schema, and the commands, import path and config they name exist."""

from __future__ import annotations

import importlib
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from ray.serve.schema import HTTPOptionsSchema, ServeApplicationSchema, ServeDeploySchema

from pipeline.cli import build_parser, main
from pipeline.config import config_from_dict
from pipeline.k8s import SERVE_IMPORT_PATH
from pipeline.k8s._render import OBJECT_STORE_SECRET
from tests.conftest import PROJECT_ROOT

K8S = PROJECT_ROOT / "k8s"
KUBERNETES_VERSION = "1.32"
# KubeRay's ray.io/v1 fields this project uses (KubeRay >= 1.3): a misspelt one fails here, not in a cluster.
RAY_SPEC_FIELDS = {
    "RayCluster": {"rayVersion", "enableInTreeAutoscaling", "headGroupSpec", "workerGroupSpecs"},
    "RayJob": {"entrypoint", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished", "rayClusterSpec"},
    "RayService": {"serveConfigV2", "upgradeStrategy", "rayClusterConfig"},
}
CLUSTER_FIELDS = {"rayVersion", "enableInTreeAutoscaling", "headGroupSpec", "workerGroupSpecs"}
GROUP_FIELDS = {"serviceType", "rayStartParams", "template", "groupName", "replicas", "minReplicas", "maxReplicas"}
EXTERNAL_SECRETS = {"prod": {"pipeline-postgres", "pipeline-serve-token"}}  # created out of band (README)


def _kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to build k8s/overlays"
    built = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def _clusters(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]
    field = {"RayJob": "rayClusterSpec", "RayService": "rayClusterConfig"}.get(doc["kind"])
    return [spec[field] if field else spec]


def _pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] in RAY_SPEC_FIELDS:
        return [
            group["template"]
            for cluster in _clusters(doc)
            for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
        ]
    template = doc.get("spec", {}).get("template")
    return [template] if template else []


def _validate_ray_resource(doc: dict[str, Any]) -> None:
    kind = doc["kind"]
    assert doc["apiVersion"] == "ray.io/v1", doc["apiVersion"]
    assert set(doc["spec"]) <= RAY_SPEC_FIELDS[kind], set(doc["spec"]) - RAY_SPEC_FIELDS[kind]
    for cluster in _clusters(doc):
        assert set(cluster) <= CLUSTER_FIELDS, set(cluster) - CLUSTER_FIELDS
        for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
            assert set(group) <= GROUP_FIELDS, set(group) - GROUP_FIELDS
            assert all(isinstance(value, str) for value in group["rayStartParams"].values())
    for template in _pod_templates(doc):  # the pod templates inside, as Kubernetes' own PodTemplate
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
        kubernetes_validate.validate(wrapped, KUBERNETES_VERSION, strict=True)


def _check_serve_config(doc: dict[str, Any]) -> None:
    raw = yaml.safe_load(doc["spec"]["serveConfigV2"])
    serve = ServeDeploySchema.model_validate(raw)  # Serve's models ignore unknown fields: those are checked here
    assert set(raw) <= set(ServeDeploySchema.model_fields), raw.keys()
    assert set(raw["http_options"]) <= set(HTTPOptionsSchema.model_fields), raw["http_options"]
    assert all(set(app) <= set(ServeApplicationSchema.model_fields) for app in raw["applications"])
    (app,) = serve.applications
    module, attribute = app.import_path.split(":")
    assert app.import_path == SERVE_IMPORT_PATH and callable(getattr(importlib.import_module(module), attribute))
    config = config_from_dict(app.args["config"], base_dir=Path("/"))
    assert (serve.http_options.host, serve.http_options.port) == (config.serving.host, config.serving.port)
    assert app.args["config_file"].startswith("/etc/pipeline/")


def _check_entrypoint(doc: dict[str, Any], config_keys: set[str]) -> None:
    command = shlex.split(doc["spec"]["entrypoint"])
    assert command[:3] == ["python", "-m", "pipeline"], command
    args = build_parser().parse_args(command[3:])  # the command and its flags exist
    assert args.command == "run" and Path(args.config).name in config_keys, args


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_overlay_builds_and_validates_against_the_kubernetes_and_serve_schemas(overlay: str) -> None:
    docs = _kustomize(K8S / "overlays" / overlay)
    kinds = {doc["kind"] for doc in docs}
    assert {"RayCluster", "RayJob", "RayService", "Deployment", "StatefulSet", "Service", "ConfigMap"} <= kinds
    config_keys: set[str] = set()
    for doc in docs:
        namespace = "ml-pipeline-dev" if overlay == "dev" else "ml-pipeline"
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == namespace, doc["metadata"]
        if doc["kind"] in RAY_SPEC_FIELDS:
            _validate_ray_resource(doc)
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        if doc["kind"] == "ConfigMap":
            config_keys |= set(doc["data"])
    for doc in docs:
        if doc["kind"] == "RayService":
            _check_serve_config(doc)
        if doc["kind"] == "RayJob":
            _check_entrypoint(doc, config_keys)
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    secrets = {name for kind, name in names if kind == "Secret"} | EXTERNAL_SECRETS.get(overlay, set())
    claims = {name for kind, name in names if kind == "PersistentVolumeClaim"}
    for doc in docs:
        for template in _pod_templates(doc):
            spec = template["spec"]
            for container in spec["containers"]:
                assert not container["image"].endswith(":latest"), container["image"]  # each overlay pins it
                for variable in container.get("env", []):
                    reference = variable.get("valueFrom", {}).get("secretKeyRef")
                    assert reference is None or reference["name"] in secrets, reference
                for source in container.get("envFrom", []):  # an optional Secret may be made later
                    reference = source.get("secretRef")
                    assert reference is None or reference.get("optional") or reference["name"] in secrets, source
                if "ray" in container["name"] or container["name"] == "mlflow":  # what reads or writes data
                    assert {"secretRef": {"name": OBJECT_STORE_SECRET, "optional": True}} in container["envFrom"]
            for volume in spec.get("volumes", []):
                claim = volume.get("persistentVolumeClaim")
                assert claim is None or claim["claimName"] in claims, claim
                assert "configMap" not in volume or ("ConfigMap", volume["configMap"]["name"]) in names


def test_the_committed_manifests_are_what_config_k8s_yaml_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)  # the generated files name the config as given on the command line
    assert main(["k8s", "render", "--config", "config/k8s.yaml", "--out", str(tmp_path)]) == 0
    rendered = sorted(path.name for path in tmp_path.iterdir())
    assert rendered == ["config.yaml", "raycluster.yaml", "rayjob-tune.yaml", "rayservice.yaml"]
    stale = [name for name in rendered if (tmp_path / name).read_text() != (K8S / "base" / name).read_text()]
    assert not stale, f"k8s/base is stale: run `python -m pipeline k8s render --config config/k8s.yaml` ({stale})"
    assert capsys.readouterr().out.count("wrote ") == len(rendered)
    base = (K8S / "base" / "kustomization.yaml").read_text()
    assert all(f"- {name}" in base for name in rendered)


def test_the_serve_builder_refuses_args_without_a_config_in_one_line() -> None:
    from serving import ServingError, app_from_args

    with pytest.raises(ServingError, match=r"args.config = None: must be the pipeline config"):
        app_from_args({"config_file": "/etc/pipeline/k8s.yaml"})


def test_the_pod_monitors_select_the_ray_pods_and_scrape_ports_they_name() -> None:
    monitors = _kustomize(K8S / "monitoring")
    assert {doc["kind"] for doc in monitors} == {"PodMonitor"}
    ray_docs = [doc for doc in _kustomize(K8S / "overlays" / "dev") if doc["kind"] in RAY_SPEC_FIELDS]
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]
        wanted = selector.get("matchLabels", {})
        scraped = [
            template
            for doc in ray_docs
            for template in _pod_templates(doc)
            if wanted.items() <= template.get("metadata", {}).get("labels", {}).items()
        ]
        assert scraped, f"{monitor['metadata']['name']}: selects no pod template"
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for template in scraped:
                containers = template["spec"]["containers"]
                ports = {port["name"] for container in containers for port in container["ports"]}
                assert endpoint["port"] in ports, (monitor["metadata"]["name"], endpoint, ports)


def test_locations_in_a_bucket_render_with_the_keys_in_no_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """config/k8s.yaml with its data, Tune state, prediction log and feedback in a bucket: the locations reach
    the ConfigMap and the RayService's config; the keys (in this environment, as a user's shell has them)
    reach no manifest: the pods take them from the Secret."""
    text = (PROJECT_ROOT / "config" / "k8s.yaml").read_text()
    text = text.replace("path: data/demo/transactions", "path: s3://lake/demo/transactions")
    text = text.replace("  storage: ray_results", "  storage: s3://lake/tune")
    text = text.replace(
        "serving:\n",
        "serving:\n  prediction_log: {path: s3://lake/serving/prediction_log}\n"
        "  feedback: {path: s3://lake/serving/feedback}\n",
    )
    config = tmp_path / "bucket.yaml"
    config.write_text(text)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-NOT-IN-ANY-MANIFEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-not-in-any-manifest")
    assert main(["k8s", "render", "--config", str(config), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    rendered = {path.name: path.read_text() for path in (tmp_path / "out").iterdir()}
    assert not [name for name, body in rendered.items() if "NOT-IN-ANY" in body or "not-in-any" in body]
    service = yaml.safe_load(rendered["rayservice.yaml"])
    served = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]["config"]
    assert served["serving"]["prediction_log"]["path"] == "s3://lake/serving/prediction_log"
    assert served["serving"]["feedback"]["path"] == "s3://lake/serving/feedback"
    for location in ("s3://lake/demo/transactions", "s3://lake/tune", "s3://lake/serving/feedback"):
        assert location in rendered["config.yaml"], location
