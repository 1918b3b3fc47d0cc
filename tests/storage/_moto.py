"""moto's S3 server as a process of its own (its ``moto_server`` command), for a test that needs a second
server with other settings and for the benchmarks (the in-process one of tests/conftest.py shares this
process's GIL with what it measures)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path


@contextlib.contextmanager
def moto_process(port: int, environ: Mapping[str, str] | None = None, timeout: float = 60) -> Iterator[str]:
    """A ``moto_server`` on 127.0.0.1:``port`` (its environment: this one's and ``environ``), once it takes
    connections (within ``timeout`` s); its endpoint URL. Killed on the way out."""
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **(environ or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"moto_server on port {port} did not start within {timeout:g} s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait(timeout=30)
