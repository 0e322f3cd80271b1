"""Cache derived arrays as ``.npy`` files with a JSON sidecar of sha256 checksums.

A cached entry ``NAME`` in a folder is the files ``NAME.KEY.npy`` (one per array) and
``NAME.json``, which holds the parameters the arrays were computed from (``meta``) and the
sha256, shape and dtype of each array. The sidecar is written last, so an entry without one
is incomplete. Reading verifies every checksum; a stale or damaged entry is recomputed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from graceful.errors import InputError

__all__ = ["CacheWarning", "array_sha256", "cache_root", "cached_arrays", "file_sha256"]

#: Environment variable that overrides the default cache folder.
CACHE_ENV = "GRACEFUL_CACHE"


class CacheWarning(UserWarning):
    """A cached file failed its checksum or could not be read, so it is computed again.

    Example:
        >>> issubclass(CacheWarning, UserWarning)
        True
    """


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$GRACEFUL_CACHE``, else ``~/.cache/graceful``.

    Example:
        >>> str(cache_root("/tmp/somewhere"))
        '/tmp/somewhere'
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "graceful"


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes.

    Example:
        >>> import numpy as np
        >>> array_sha256(np.arange(3)) == array_sha256(np.array([0, 1, 2]))
        True
        >>> array_sha256(np.arange(3)) == array_sha256(np.arange(3).astype(np.int32))
        False
    """
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data if a.size else b"")
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"
        >>> _ = p.write_bytes(b"abc")
        >>> file_sha256(p)[:12]
        'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(meta: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(dict(meta), sort_keys=True))
    return result


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache is readable like any other file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _save_npy(handle: Any, *, array: np.ndarray) -> None:
    np.save(handle, array, allow_pickle=False)


def _read(folder: Path, name: str, meta: dict[str, Any]) -> dict[str, np.ndarray] | None:
    sidecar = folder / f"{name}.json"
    if not sidecar.exists():
        return None
    try:
        info = json.loads(sidecar.read_text(encoding="utf-8"))
        records = info["arrays"]
        stored_meta = info["meta"]
    except (OSError, ValueError, KeyError, TypeError):
        warnings.warn(
            f"cache file {sidecar} is unreadable; recomputing", CacheWarning, stacklevel=3
        )
        return None
    if stored_meta != meta:
        return None  # computed from other parameters or package versions: stale, not damaged
    arrays: dict[str, np.ndarray] = {}
    for key, record in records.items():
        path = folder / str(record["file"])
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"cache file {path} is unreadable ({exc}); recomputing", CacheWarning, stacklevel=3
            )
            return None
        if array_sha256(array) != record["sha256"]:
            warnings.warn(
                f"cache file {path} fails its sha256 check; recomputing", CacheWarning, stacklevel=3
            )
            return None
        arrays[key] = array
    return arrays


def cached_arrays(
    folder: str | os.PathLike[str],
    name: str,
    meta: Mapping[str, Any],
    compute: Callable[[], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Arrays cached as ``folder/name.*``, computed by ``compute()`` when missing, stale or damaged.

    Args:
        folder: the cache folder of this entry (created when needed).
        name: the entry's file name stem.
        meta: JSON-serialisable parameters and versions the arrays depend on; a cached entry
            with other ``meta`` is recomputed.
        compute: returns the arrays by key (keys become part of the file names).

    Returns:
        The arrays by key, read from the cache (checksums verified) or freshly computed.

    Warns:
        CacheWarning: when a cached file fails its checksum or cannot be read.

    Example:
        >>> import tempfile, numpy as np
        >>> d = tempfile.mkdtemp()
        >>> calls = []
        >>> def compute():
        ...     calls.append(1)
        ...     return {"x": np.arange(4.0)}
        >>> cached_arrays(d, "demo", {"v": 1}, compute)["x"].tolist()
        [0.0, 1.0, 2.0, 3.0]
        >>> cached_arrays(d, "demo", {"v": 1}, compute)["x"].sum(), len(calls)
        (np.float64(6.0), 1)
    """
    directory = Path(folder)
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"Expected argument `name` to be a plain file name, but got {name!r}")
    wanted = _jsonable(meta)
    found = _read(directory, name, wanted)
    if found is not None:
        return found
    arrays = {key: np.asarray(value) for key, value in compute().items()}
    directory.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, Any]] = {}
    for key, array in arrays.items():
        file = f"{name}.{key}.npy"
        _write_atomic(directory / file, functools.partial(_save_npy, array=array))
        records[key] = {
            "file": file,
            "sha256": array_sha256(array),
            "shape": list(array.shape),
            "dtype": array.dtype.str,
        }
    text = json.dumps({"meta": wanted, "arrays": records}, indent=2, sort_keys=True)
    _write_atomic(directory / f"{name}.json", lambda h: h.write(text.encode("utf-8")))
    return arrays
