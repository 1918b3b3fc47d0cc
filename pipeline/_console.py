"""Progress lines for long work: what is happening and how long it took, on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Console:
    """Timestamped progress messages (stderr, so stdout stays machine-readable)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._stream = stream
        self.quiet = quiet
        self._started = time.monotonic()

    def step(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self._started
        stream = self._stream or sys.stderr
        print(f"[{elapsed:7.1f}s] {message}", file=stream, flush=True)

    @contextmanager
    def timed(self, message: str) -> Iterator[None]:
        """Announce ``message``, run the block, then report how long it took."""
        self.step(f"{message} ...")
        begun = time.monotonic()
        yield
        self.step(f"{message}: done in {time.monotonic() - begun:.1f}s")
