"""The `newsarchive` command line (console script `newsarchive = flows.cli:main`)."""

from flows.cli.main import cli, main

__all__ = ["cli", "main"]
