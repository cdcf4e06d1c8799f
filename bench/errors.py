"""The one error type of the benchmark: it cannot run, and the message says why."""


class BenchError(Exception):
    """A setup problem (no wrk, a server that does not start, a bad option)."""
