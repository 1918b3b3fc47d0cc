"""Ray Serve champion/challenger serving (JVM-free scoring). Filled in by the `serve` work."""

__all__: list[str] = []
