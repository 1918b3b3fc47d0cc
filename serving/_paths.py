"""Paths that arrive in requests: refused unless inside an allowed root. The rule itself (symlinks and '..'
resolved, URI prefixes compared segment by segment) is ``pipeline.storage.locations``'; this module keeps
serving's error and returns the location a training job reads. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.storage.locations import LocationError, confine_location


class PathNotAllowed(ValueError):
    """A request path outside every allowed root (or not a usable path at all)."""


def confine_path(requested: str, roots: Sequence[str | Path]) -> str:
    """``requested`` resolved (symlinks and ``..`` included) against the first root when relative; returned
    only if it lies inside one of ``roots``: a local path, or an object-store URI (``s3://bucket/key``) when a
    root is a bucket prefix, as the training job reads it."""
    try:
        return confine_location(requested, roots).uri
    except LocationError as error:
        raise PathNotAllowed(str(error)) from None
