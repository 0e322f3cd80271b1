"""Read and write embedding files: item ids and one vector per item.

Formats (by extension):

* ``.npz``: arrays ``ids`` (strings or integers) and ``vectors`` (or ``embeddings``),
  ``(N, D)``;
* ``.parquet`` / ``.pq`` / ``.csv``: a column ``id`` and either a list column ``vector``
  (or ``embedding``) or numeric columns ``e0, e1, ...`` (any common prefix ending in a
  number, in numeric order).

Ids are returned as strings (an integer id ``7`` becomes ``"7"``), the form the gallery
stores; vectors as C-contiguous float32. Every failure is a one-line
:class:`~graceful.errors.InputError` naming the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO, cast

import numpy as np
import pandas as pd

from graceful.errors import InputError

from ._readers import _READ_ERRORS, short_reason
from .atomic import atomic_open

__all__ = ["read_embeddings", "read_scores", "write_embeddings"]

_VECTOR_KEYS = ("vectors", "embeddings")
_LIST_COLUMNS = ("vector", "embedding")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _check_ids(ids: list[str], name: str) -> list[str]:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise InputError(f"File `{name}` repeats id {item!r}")
        seen.add(item)
    return ids


def _as_ids(values: np.ndarray | pd.Series, name: str) -> list[str]:
    array = np.asarray(values)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise InputError(f"Expected the ids in file `{name}` to be strings or integers")
        array = array.astype(np.int64)
    if array.dtype.kind not in "iuUSO":
        raise InputError(f"Expected the ids in file `{name}` to be strings or integers")
    ids = [v.decode() if isinstance(v, bytes) else str(v) for v in array.tolist()]
    if any(v == "" or v == "None" or v == "nan" for v in ids):
        raise InputError(f"File `{name}` has an empty or missing id")
    return ids


def _vectors(array: np.ndarray, n: int, name: str) -> np.ndarray:
    try:
        vectors = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    except (TypeError, ValueError):
        raise InputError(f"Expected the vectors in file `{name}` to be numbers") from None
    if vectors.ndim != 2 or len(vectors) != n or vectors.shape[1] == 0:
        raise InputError(
            f"Expected the vectors in file `{name}` to have shape ({n}, D), but got {vectors.shape}"
        )
    if not np.isfinite(vectors).all():
        row = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise InputError(f"File `{name}` has a non-finite vector value in row {row}")
    return vectors


def _from_frame(frame: pd.DataFrame, name: str) -> tuple[list[str], np.ndarray]:
    if "id" not in frame.columns:
        raise InputError(f"Expected file `{name}` to have a column `id`")
    ids = _as_ids(frame["id"].to_numpy(), name)
    for column in _LIST_COLUMNS:
        if column in frame.columns:
            try:
                stacked = np.stack([np.asarray(v, dtype=np.float32) for v in frame[column]])
            except (TypeError, ValueError):
                raise InputError(
                    f"Expected column `{column}` of file `{name}` to hold equal-length lists"
                    " of numbers"
                ) from None
            return ids, _vectors(stacked, len(ids), name)
    numbered: dict[str, list[tuple[int, str]]] = {}
    for column in frame.columns:
        match = _NUMBERED.match(str(column))
        if match and column != "id":
            numbered.setdefault(match.group(1), []).append((int(match.group(2)), str(column)))
    if len(numbered) != 1:
        raise InputError(
            f"Expected file `{name}` to have a list column `vector` or numbered columns"
            f" e0, e1, ... with one prefix, but got columns {list(frame.columns)[:8]}"
        )
    columns = [c for _, c in sorted(next(iter(numbered.values())))]
    return ids, _vectors(frame[columns].to_numpy(), len(ids), name)


def read_embeddings(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Read item ids and their vectors from an embedding file.

    Args:
        path: a ``.npz``, ``.parquet``/``.pq`` or ``.csv`` file (see the module docs).

    Returns:
        ``(ids, vectors)``: ids as strings, unique; vectors ``(N, D)`` float32, finite.

    Raises:
        InputError: naming the file, when it is missing, unreadable, of an unknown format,
            lacks the id or vector columns, repeats an id, or holds non-finite values.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "items.npz"
        >>> np.savez(p, ids=np.array([3, 5]), vectors=np.eye(2))
        >>> read_embeddings(p)
        (['3', '5'], array([[1., 0.],
               [0., 1.]], dtype=float32))
    """
    file = Path(path)
    name = str(file)
    if not file.is_file():
        raise InputError(f"Embedding file `{name}` does not exist")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as data:
                if "ids" not in data.files:
                    raise InputError(f"Expected file `{name}` to hold an array `ids`")
                key = next((k for k in _VECTOR_KEYS if k in data.files), None)
                if key is None:
                    raise InputError(f"Expected file `{name}` to hold an array `vectors`")
                ids = _as_ids(data["ids"], name)
                vectors = _vectors(data[key], len(ids), name)
        elif suffix in (".parquet", ".pq"):
            ids, vectors = _from_frame(pd.read_parquet(file), name)
        elif suffix == ".csv":
            ids, vectors = _from_frame(pd.read_csv(file), name)
        else:
            raise InputError(
                f"Expected embedding file `{name}` to be .npz, .parquet or .csv,"
                f" but got {suffix or 'no extension'}"
            )
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"Could not read embedding file `{name}`: {short_reason(exc)}") from None
    return _check_ids(ids, name), vectors


def write_embeddings(
    path: str | os.PathLike[str], ids: list[str] | np.ndarray, vectors: np.ndarray
) -> Path:
    """Write ids and vectors to ``path`` (``.npz`` or ``.parquet``) atomically.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "items.parquet"
        >>> _ = write_embeddings(p, ["a", "b"], np.ones((2, 3)))
        >>> read_embeddings(p)[0]
        ['a', 'b']
    """
    file = Path(path)
    suffix = file.suffix.lower()
    id_list = [str(v) for v in np.asarray(ids).tolist()]
    array = _vectors(np.asarray(vectors), len(id_list), "vectors")
    if suffix == ".npz":
        with atomic_open(file, "wb") as handle:
            np.savez(cast(IO[bytes], handle), ids=np.asarray(id_list), vectors=array)
    elif suffix in (".parquet", ".pq"):
        frame = pd.DataFrame({"id": id_list, "vector": list(array)})
        with atomic_open(file, "wb") as handle:
            frame.to_parquet(handle, index=False)  # type: ignore[arg-type]
    else:
        raise InputError(f"Expected argument `path` to end in .npz or .parquet, but got `{file}`")
    return file


def read_scores(path: str | os.PathLike[str], column: str = "score") -> dict[str, float]:
    r"""Read per-item scores (e.g. old-model uncertainty) from a CSV or Parquet file.

    Args:
        path: a file with columns ``id`` and ``column``.
        column: the score column.

    Returns:
        ``{id: score}`` with ids as strings.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "scores.csv"
        >>> _ = p.write_text("id,score\na,0.5\nb,2\n")
        >>> read_scores(p)
        {'a': 0.5, 'b': 2.0}
    """
    file = Path(path)
    name = str(file)
    if not file.is_file():
        raise InputError(f"Score file `{name}` does not exist")
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(file)
        elif file.suffix.lower() == ".csv":
            frame = pd.read_csv(file)
        else:
            raise InputError(f"Expected score file `{name}` to be .csv or .parquet")
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"Could not read score file `{name}`: {short_reason(exc)}") from None
    for needed in ("id", column):
        if needed not in frame.columns:
            raise InputError(f"Expected score file `{name}` to have a column `{needed}`")
    ids = _check_ids(_as_ids(frame["id"].to_numpy(), name), name)
    try:
        scores = np.asarray(frame[column], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"Expected column `{column}` of file `{name}` to hold numbers") from None
    if not np.isfinite(scores).all():
        raise InputError(f"Column `{column}` of file `{name}` has a non-finite value")
    return dict(zip(ids, scores.tolist(), strict=True))
