"""Ray-orchestrated hybrid ML pipeline: Spark (RayDP) features and MLlib training on Delta data."""

__version__ = "0.1.0"

__all__ = ["__version__"]
