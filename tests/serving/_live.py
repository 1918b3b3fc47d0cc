"""The serving app deployed on the session's Ray for a test module, and an HTTP client to it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from pipeline.config import PipelineConfig
from serving import deploy, undeploy


@contextlib.contextmanager
def live_app(config: PipelineConfig, token: str) -> Iterator[httpx.Client]:
    """Deploy (admin routes on ``token``), yield a client; then undeploy and shut Serve down, so that the next
    module's app gets its own HTTP port."""
    from ray import serve

    urls = deploy(config, environ={config.serving.token_env: token}, ready_timeout=300)
    client = httpx.Client(base_url=urls.api, timeout=60)
    try:
        yield client
    finally:
        client.close()
        undeploy(config.serving.app_name)
        serve.shutdown()
