"""What every ``graceful`` command shares: the one-line error exit and reading JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer

from graceful.errors import InputError

__all__ = ["fail", "read_json"]


def fail(command: str, message: str) -> NoReturn:
    """Print ``graceful <command>: error: <message>`` on stderr and exit with status 2."""
    typer.echo(f"graceful {command}: error: {message}", err=True)
    raise typer.Exit(2)


def read_json(path: Path, option: str) -> Any:
    """The parsed JSON of ``path``; an :class:`InputError` naming ``option`` and the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{option} {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{option} {path}: cannot read as JSON: {reason}") from None
