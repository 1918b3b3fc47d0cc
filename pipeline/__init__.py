"""Ray-orchestrated hybrid ML pipeline: Spark (RayDP) features and MLlib training on Delta data.

The Python API (what the CLI does, as functions returning typed results)::

    from pipeline import load_config, run_sweep, train

    config = load_config("config/pipeline.yaml", overrides={"tuning": {"max_concurrent_trials": 2}})
    result = run_sweep(config)          # SweepResult: .leaderboard (pandas), .best_config, .version
    trained = train(config)             # TrainResult: .metrics, .version, .run_id

Imported lazily: ``import pipeline`` alone loads no engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "SweepError",
    "SweepResult",
    "TrainResult",
    "__version__",
    "ingest",
    "load_config",
    "run_sweep",
    "train",
]

if TYPE_CHECKING:
    from pipeline._api import ingest, load_config, run_sweep, train
    from pipeline.config import ConfigError
    from pipeline.jobs import TrainResult
    from pipeline.tuning import SweepError, SweepResult

_LAZY = {
    "ingest": "pipeline._api",
    "load_config": "pipeline._api",
    "run_sweep": "pipeline._api",
    "train": "pipeline._api",
    "ConfigError": "pipeline.config",
    "TrainResult": "pipeline.jobs",
    "SweepError": "pipeline.tuning",
    "SweepResult": "pipeline.tuning",
}


def __getattr__(name: str) -> Any:
    """PEP 562: the API's modules load on first use, so workers importing ``pipeline.config`` stay light."""
    if name not in _LAZY:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
