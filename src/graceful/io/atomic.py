"""Write output files so that a crash or an error never leaves a partial file behind.

:func:`atomic_open` (and :func:`atomic_write_text`) replace one file; :func:`atomic_folder`
publishes the several files of one run together, or none of them. Files and folders get the
user's normal permissions (``0o666`` / ``0o777`` less the umask, as ``open`` and ``mkdir``
give), not the ``0o600`` of :func:`tempfile.mkstemp`: a CI artifact or a shared report
folder stays readable by others. The umask is applied by the operating system when each
file is created, never read or changed (changing it is not thread-safe).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from graceful.errors import InputError

__all__ = ["atomic_folder", "atomic_open", "atomic_write_text"]

_ATTEMPTS = 100


def _create_file(folder: Path, prefix: str) -> tuple[int, Path]:
    """Create a new, empty file with a random name in ``folder``: ``(fd, path)``.

    Like :func:`tempfile.mkstemp` (``O_EXCL``, so nothing is clobbered), but with mode
    ``0o666`` less the umask instead of ``0o600``.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        path = folder / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: no free temporary file name")  # pragma: no cover


def _create_folder(parent: Path, prefix: str) -> Path:
    """Create a new, empty folder with a random name in ``parent`` (``0o777`` less the umask)."""
    for _ in range(_ATTEMPTS):
        path = parent / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no free temporary folder name")  # pragma: no cover


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[str]]:
    """Open a temporary file beside ``path`` and move it onto ``path`` only on success.

    If the ``with`` block raises, the temporary file is removed and ``path`` is untouched.
    The file gets mode ``0o666`` less the umask, as :func:`open` would give it.

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
    fd, tmp = _create_file(target.parent, f".{target.name}.")
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


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its ancestors that do not exist, outermost first."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return missing[::-1]


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Stage files for ``folder``; move them all into it when the block succeeds, else none.

    The ``with`` block writes its files into the staging folder it is given (the files
    there can be read, e.g. logged elsewhere, before they are published). When the block
    returns, each staged file replaces the file of the same name in ``folder``; when it
    raises, or a move fails, ``folder`` is left as it was: no new file, and the files it
    held before are restored, not half-replaced. Folders created on the way are removed
    again on failure.

    When ``folder`` does not exist, the staging folder is created beside it and renamed to
    it in one step. When it exists, the staging folder is a hidden folder inside it: the
    moves then stay on one file system even when ``folder`` is a mount point, and need no
    write access to its parent.

    Args:
        folder: the output folder, created (with its parents) when missing.

    Raises:
        OSError: when the folder or a file cannot be created or moved (a file in the way,
            no permission); nothing is left behind.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "report"
        >>> with atomic_folder(out) as stage:
        ...     _ = (stage / "a.json").write_text("{}")
        ...     _ = (stage / "b.html").write_text("<p>")
        >>> sorted(p.name for p in out.iterdir())
        ['a.json', 'b.html']
        >>> try:
        ...     with atomic_folder(out) as stage:
        ...         _ = (stage / "a.json").write_text("new")
        ...         raise RuntimeError("a later step failed")
        ... except RuntimeError:
        ...     pass
        >>> (out / "a.json").read_text()  # untouched
        '{}'
    """
    target = Path(folder)
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder", str(target))
        stage = _create_folder(target, ".graceful-staging.")
        try:
            yield stage
            _publish(stage, target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return

    created = _missing_folders(target.parent)
    try:
        for path in created:
            path.mkdir(0o777)
        stage = _create_folder(target.parent, f".{target.name}.")
        try:
            yield stage
            os.rename(stage, target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()  # only when still empty
        raise


def _publish(stage: Path, target: Path) -> None:
    """Move every file of ``stage`` into ``target``: all of them, or none (old ones restored)."""
    names = sorted(p.name for p in stage.iterdir())
    for name in names:
        dest = target / name
        if not (stage / name).is_file() or (dest.is_dir() and not dest.is_symlink()):
            raise IsADirectoryError(21, f"{name} there is a folder, not a file", str(dest))
    backups = _create_folder(stage, ".previous.")
    saved: dict[str, Path] = {}
    moved: list[str] = []
    try:
        for name in names:
            dest = target / name
            if dest.exists() or dest.is_symlink():
                backup = backups / name
                try:
                    os.link(dest, backup, follow_symlinks=False)
                except OSError:  # no hard links here: a copy does as well
                    shutil.copy2(dest, backup, follow_symlinks=False)
                saved[name] = backup
            os.replace(stage / name, dest)
            moved.append(name)
    except BaseException:
        for name in reversed(moved):
            with contextlib.suppress(OSError):
                if name in saved:
                    os.replace(saved[name], target / name)
                else:
                    os.unlink(target / name)
        raise
