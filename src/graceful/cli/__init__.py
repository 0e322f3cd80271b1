"""The ``graceful`` command line (typer), a thin layer over the library; the ``cli`` extra."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Console entry point: one line on stderr and exit 2 when the ``cli`` extra is missing."""
    from graceful._extras import require
    from graceful.errors import MissingExtraError

    try:
        require("cli", "the graceful command line", ("typer",))
    except MissingExtraError as exc:
        print(f"graceful: error: {exc}", file=sys.stderr)
        sys.exit(2)
    from graceful.cli.app import main as run

    run()
