"""Write output files so that a crash or an error never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from graceful.errors import InputError

__all__ = ["atomic_open", "atomic_write_text"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[str]]:
    """Open a temporary file beside ``path`` and move it onto ``path`` only on success.

    If the ``with`` block raises, the temporary file is removed and ``path`` is untouched.

    Args:
        path: the final file.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_open(d / "a.txt") as f:
        ...     _ = f.write("hello")
        >>> (d / "a.txt").read_text()
        'hello'
    """
    if mode not in ("w", "wb"):
        raise InputError(f"Expected argument `mode` to be 'w' or 'wb', but got {mode!r}")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.json"
        >>> atomic_write_text(p, "{}")
        >>> p.read_text()
        '{}'
    """
    with atomic_open(path, "w") as handle:
        handle.write(text)
