"""What every ``graceful`` command shares: the one-line error exit, safe terminal text, JSON.

Exit statuses: 0 success, 1 only "the gate failed", 2 every failure the command can meet,
3 a bug in graceful. :func:`errors` is the catch-all around each command: an
:class:`InputError` is printed as it is; an error the library did not turn into one (from
pyarrow, sqlite3, the operating system, decoding) becomes one line too, its own text folded
into it, never a traceback. Anything else is a bug: its traceback is printed, then one line
saying so, and the status is 3, so a pipeline never reads a crash as a failed gate.
Terminal output never interprets markup: :func:`plain` escapes whatever came from data.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
import typer

from graceful.errors import InputError

__all__ = ["errors", "fail", "plain", "read_json", "reason"]


def reason(exc: BaseException) -> str:
    r"""The first line of an exception's text (its type's name when it has none).

    Example:
        >>> reason(ValueError("bad value\nmore detail")), reason(KeyError())
        ('bad value', 'KeyError')
    """
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def fail(command: str, message: str) -> NoReturn:
    """Print ``graceful <command>: error: <message>`` on stderr and exit with status 2."""
    typer.echo(f"graceful {command}: error: {' '.join(message.split())}", err=True)
    raise typer.Exit(2)


def _unexpected() -> tuple[type[BaseException], ...]:
    """Errors of the libraries below the CLI that mean bad input or a bad environment."""
    kinds: list[type[BaseException]] = [OSError, UnicodeError, sqlite3.Error, MemoryError]
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        kinds.append(arrow.ArrowException)
    return tuple(kinds)


@contextmanager
def errors(command: str) -> Iterator[None]:
    """Turn every failure inside into one line on stderr and exit status 2.

    :class:`typer.Exit` (a status chosen on purpose, such as the gate's 1) passes through;
    any other error is a bug: its traceback, one line, and status 3.
    """
    try:
        yield
    except InputError as exc:
        fail(command, str(exc))
    except _unexpected() as exc:
        fail(command, f"{type(exc).__name__}: {reason(exc)}")
    except (typer.Exit, typer.Abort, click.ClickException):
        raise
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        typer.echo(
            f"graceful {command}: internal error (a bug in graceful; please report it with "
            f"the traceback above): {type(exc).__name__}: {reason(exc)}",
            err=True,
        )
        raise typer.Exit(3) from None


def plain(value: object) -> str:
    r"""``value`` as text that rich prints as written: markup such as ``[/x]`` is escaped.

    Example:
        >>> plain("[link=http://x]id[/link]")
        '\\[link=http://x]id\\[/link]'
    """
    from rich.markup import escape

    return escape(str(value))


def read_json(path: Path, option: str) -> Any:
    """The parsed JSON of ``path``; an :class:`InputError` naming ``option`` and the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{option} {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{option} {path}: cannot read as JSON: {reason(exc)}") from None
