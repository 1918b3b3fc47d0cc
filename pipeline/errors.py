"""Errors the user can act on. The CLI prints them as one line (no traceback) and exits non-zero."""


class PipelineError(Exception):
    """Base of every expected failure; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class DataError(PipelineError):
    """Input data that cannot be used as asked: missing table, unknown version, bad rows."""


class SchemaMismatchError(DataError):
    """Rows whose schema differs from the Delta table they were to be written to."""


class ClusterError(PipelineError):
    """A Ray cluster could not be started, joined or stopped."""
