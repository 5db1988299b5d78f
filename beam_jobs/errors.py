"""Failures of a run that left its output as it was (the CLI reports them in one line and exits with status 1).

Kept apart from the job and the sinks so the CLI can name them without importing Beam or a database driver.
"""
from __future__ import annotations


class RunFailed(RuntimeError):
    """A run that failed without writing anything: the message says what failed, names the output (never with its
    password) and whether re-running the same command is safe."""


class JobFailed(RunFailed):
    """The Beam pipeline did not finish (a worker killed, a runner error); the output was not touched."""
