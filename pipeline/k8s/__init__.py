"""Kubernetes (KubeRay) manifests rendered from the project's config: ``python -m pipeline k8s render``."""

from pipeline.k8s._render import (
    CONFIG_MAP,
    DATA_CLAIM,
    SERVE_IMPORT_PATH,
    TOKEN_SECRET,
    RenderOptions,
    cluster_spec,
    render,
    serve_config,
    write_manifests,
)

__all__ = [
    "CONFIG_MAP",
    "DATA_CLAIM",
    "SERVE_IMPORT_PATH",
    "TOKEN_SECRET",
    "RenderOptions",
    "cluster_spec",
    "render",
    "serve_config",
    "write_manifests",
]
