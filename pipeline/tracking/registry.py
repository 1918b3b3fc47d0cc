"""What of the model registry needs no Spark: connecting to MLflow, moving the serving aliases (promote,
rollback) and recording a comparison. The serving app imports this module, not ``pipeline.tracking`` as a
whole (whose training side imports Spark and the ONNX export), and never a private module of it."""

from __future__ import annotations

from pipeline.tracking._aliases import AliasMove, promote, rollback
from pipeline.tracking._comparisons import log_comparison
from pipeline.tracking._versions import RegistryError, alias_version, connect, set_alias

__all__ = [
    "AliasMove",
    "RegistryError",
    "alias_version",
    "connect",
    "log_comparison",
    "promote",
    "rollback",
    "set_alias",
]
