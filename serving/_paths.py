"""Paths that arrive in requests: resolved, and refused unless inside an allowed root. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class PathNotAllowed(ValueError):
    """A request path outside every allowed root (or not a usable path at all)."""


def confine_path(requested: str, roots: Sequence[str | Path]) -> Path:
    """``requested`` resolved (symlinks and ``..`` included) against the first root when relative;
    returned only if it lies inside one of ``roots``."""
    if not requested or "\x00" in requested:
        raise PathNotAllowed(f"data_path = {requested!r}: not a path")
    if not roots:
        raise PathNotAllowed("data_path: no data roots are configured (serving.data_roots)")
    resolved_roots = [Path(root).resolve() for root in roots]
    candidate = Path(requested)
    resolved = (candidate if candidate.is_absolute() else resolved_roots[0] / candidate).resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in resolved_roots):
        allowed = ", ".join(str(root) for root in resolved_roots)
        raise PathNotAllowed(
            f"data_path = {requested!r} resolves to {resolved}, outside the data roots ({allowed})"
        )
    return resolved
