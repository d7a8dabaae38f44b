"""The `newsarchive` command line (console script `newsarchive = flows.cli:main`).

`main` runs a plain `get` without click (flows/cli/quick.py: a look-up should
not pay click's ~30 ms import) and hands every other command line to click
(flows/cli/main.py); `cli` is click's group.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from flows.cli import quick

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    request = quick.parse_get(sys.argv[1:] if argv is None else list(argv))
    if request is not None:
        return quick.run_get(request)
    from flows.cli.main import main as click_main

    return click_main(argv)


def __getattr__(name: str):
    if name == "cli":  # click's group, imported only when asked for
        from flows.cli.main import cli

        return cli
    raise AttributeError(f"module 'flows.cli' has no attribute {name!r}")
