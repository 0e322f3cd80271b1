"""Open prediction files of every supported format as streams of Arrow record batches.

Private helpers for :mod:`graceful.io.predictions`. Every format is exposed the same way: a
:class:`Source` knows its column names (without reading the data) and yields
:class:`pyarrow.RecordBatch` objects of at most ``batch_rows`` rows holding only the
columns asked for. Parquet and CSV are streamed from disk, ``.npy`` files are memory-mapped,
so a file larger than memory can be reduced batch by batch.

Every failure to read a file becomes an :class:`~graceful.errors.InputError` whose one-line
message names the file and the format.
"""

from __future__ import annotations

import os
import queue
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graceful._extras import require

require("io", "reading prediction and embedding files")

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from graceful.errors import InputError

__all__ = ["FORMATS", "Source", "open_source", "short_reason"]

#: File extension -> human-readable format name.
FORMATS: dict[str, str] = {
    ".csv": "CSV",
    ".jsonl": "JSON Lines",
    ".ndjson": "JSON Lines",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".npy": "NumPy .npy",
    ".npz": "NumPy .npz",
}

#: npz key holding a 2-D score matrix -> prefix of the virtual score columns.
_NPZ_SCORE_KEYS: dict[str, str] = {"logits": "logit_", "probs": "prob_", "scores": "score_"}

# Errors that reading a malformed file may raise; InputError (a ValueError) is re-raised as is.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    pa.ArrowException,
    OSError,
    ValueError,
    TypeError,
    KeyError,
    EOFError,
    zipfile.BadZipFile,
    UnicodeDecodeError,
)


def short_reason(exc: BaseException) -> str:
    r"""First line of an exception's message, or its type name when the message is empty.

    Example:
        >>> short_reason(ValueError("bad thing\nmore detail"))
        'bad thing'
        >>> short_reason(EOFError())
        'EOFError'
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Source:
    """One opened prediction file.

    Attributes:
        path: the file, as the user named it (used in every error message).
        format_name: ``"Parquet"``, ``"CSV"``, ...
        columns: column names, in file order (virtual ``<prefix><class>`` columns for a
            NumPy score matrix).
        num_rows: number of rows when known without reading the data, else ``None``.
        array_scores: for NumPy files holding a 2-D score matrix, ``(prefix, class names)``
            of its virtual columns; ``None`` otherwise.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.npy"
        >>> np.save(p, np.array([2, 0, 1]))
        >>> src = open_source(p, one_d_name="pred")
        >>> src.columns, src.num_rows
        (['pred'], 3)
        >>> [b.num_rows for b in src.batches(["pred"], batch_rows=2)]
        [2, 1]
    """

    path: str
    format_name: str
    columns: list[str]
    num_rows: int | None
    array_scores: tuple[str, list[str]] | None = None
    _iterate: Callable[[list[str], int, list[str]], Iterator[pa.RecordBatch]] | None = field(
        default=None, repr=False
    )

    def fail(self, reason: str) -> InputError:
        """Build the error for a file that cannot be read (to ``raise`` by the caller)."""
        return InputError(f"{self.path}: cannot read as {self.format_name}: {reason}")

    def batches(
        self, columns: Sequence[str], batch_rows: int, text_columns: Sequence[str] = ()
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches of at most ``batch_rows`` rows holding ``columns`` only.

        ``text_columns`` are read as strings where the format infers types from text (CSV),
        so that a column mixing numbers and words is read whole.
        """
        if self._iterate is None:  # pragma: no cover - always set by open_source
            return
        inner = _prefetch(self._iterate(list(columns), batch_rows, list(text_columns)))
        while True:
            try:
                batch = next(inner)
            except StopIteration:
                return
            except InputError:
                raise
            except _READ_ERRORS as exc:
                raise self.fail(short_reason(exc)) from exc
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)


_DONE = object()


def _prefetch(inner: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Run ``inner`` in a background thread, ``depth`` batches ahead of the consumer.

    Decoding (Arrow, which releases the GIL) then overlaps with the NumPy reduction of the
    previous batch. Exceptions raised by ``inner`` are re-raised in the consumer.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for batch in inner:
                if not put(batch):
                    return
        except BaseException as exc:  # handed to the consumer
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="graceful-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def open_source(path: str | os.PathLike[str], *, one_d_name: str) -> Source:
    """Open ``path`` by its extension, reading only what is needed to know its columns.

    Args:
        path: the file.
        one_d_name: the column name given to a 1-D ``.npy`` array (``"pred"`` for a model's
            predictions, the label column for a labels file).

    Raises:
        InputError: unsupported extension, missing file, unreadable file.

    Example:
        >>> open_source("preds.txt", one_d_name="pred")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: preds.txt: unsupported file extension '.txt' (supported: .csv, .jsonl, .ndjson, .parquet, .pq, .npy, .npz)
    """  # noqa: E501
    name = os.fspath(path)
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(FORMATS)
        shown = suffix or "(none)"
        raise InputError(f"{name}: unsupported file extension {shown!r} (supported: {supported})")
    if not os.path.exists(name):
        raise InputError(f"{name}: no such file")
    if not os.path.isfile(name):
        raise InputError(f"{name}: not a regular file")
    if os.path.getsize(name) == 0:
        raise InputError(f"{name}: empty file (no rows)")
    fmt = FORMATS[suffix]
    opener = {
        "CSV": _open_csv,
        "JSON Lines": _open_jsonl,
        "Parquet": _open_parquet,
        "NumPy .npy": _open_npy,
        "NumPy .npz": _open_npz,
    }[fmt]
    try:
        return opener(name, fmt, one_d_name)
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"{name}: cannot read as {fmt}: {short_reason(exc)}") from exc


# -- Parquet ---------------------------------------------------------------------------------


def _open_parquet(name: str, fmt: str, one_d_name: str) -> Source:
    pf = pq.ParquetFile(name)
    columns = list(pf.schema_arrow.names)

    def iterate(cols: list[str], batch_rows: int, text: list[str]) -> Iterator[pa.RecordBatch]:
        yield from pq.ParquetFile(name, pre_buffer=False).iter_batches(
            batch_size=batch_rows, columns=cols, use_threads=True
        )

    return Source(name, fmt, columns, int(pf.metadata.num_rows), None, iterate)


# -- CSV -------------------------------------------------------------------------------------


def _open_csv(name: str, fmt: str, one_d_name: str) -> Source:
    reader = pa_csv.open_csv(name)
    columns = list(reader.schema.names)
    reader.close()

    def iterate(cols: list[str], batch_rows: int, text: list[str]) -> Iterator[pa.RecordBatch]:
        block = int(min(max(batch_rows * 64, 1 << 16), 1 << 26))
        convert = pa_csv.ConvertOptions(
            include_columns=cols,
            column_types={c: pa.string() for c in text},
            strings_can_be_null=True,
        )
        with pa_csv.open_csv(
            name, read_options=pa_csv.ReadOptions(block_size=block), convert_options=convert
        ) as stream:
            yield from stream

    return Source(name, fmt, columns, None, None, iterate)


# -- JSON Lines ------------------------------------------------------------------------------


def _open_jsonl(name: str, fmt: str, one_d_name: str) -> Source:
    try:
        reader = pa_json.open_json(name)
    except pa.ArrowInvalid as exc:
        if "Empty JSON" in str(exc):
            raise InputError(f"{name}: empty file (no rows)") from exc
        raise
    columns = list(reader.schema.names)

    def iterate(cols: list[str], batch_rows: int, text: list[str]) -> Iterator[pa.RecordBatch]:
        block = int(min(max(batch_rows * 128, 1 << 16), 1 << 26))
        stream = pa_json.open_json(name, read_options=pa_json.ReadOptions(block_size=block))
        for batch in stream:
            yield batch.select(cols)

    return Source(name, fmt, columns, None, None, iterate)


# -- NumPy -----------------------------------------------------------------------------------


def _array_source(
    name: str,
    fmt: str,
    named: dict[str, np.ndarray[Any, Any]],
    scores: tuple[str, list[str], np.ndarray[Any, Any]] | None,
) -> Source:
    lengths = {len(a) for a in named.values()}
    if scores is not None:
        lengths.add(scores[2].shape[0])
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(a)}" for k, a in named.items())
        raise InputError(f"{name}: arrays have different lengths ({sizes})")
    n_rows = lengths.pop() if lengths else 0
    columns = list(named)
    if scores is not None:
        prefix, classes, _ = scores
        columns += [prefix + c for c in classes]

    virtual: dict[str, np.ndarray[Any, Any]] = {}
    if scores is not None:
        for j, c in enumerate(scores[1]):
            virtual[scores[0] + c] = scores[2][:, j]

    def iterate(cols: list[str], batch_rows: int, text: list[str]) -> Iterator[pa.RecordBatch]:
        for start in range(0, n_rows, batch_rows):
            stop = min(start + batch_rows, n_rows)
            arrays = [
                pa.array(np.ascontiguousarray(named[c][start:stop]))
                if c in named
                else pa.array(np.ascontiguousarray(virtual[c][start:stop]))
                for c in cols
            ]
            yield pa.RecordBatch.from_arrays(arrays, names=cols)

    return Source(
        name,
        fmt,
        columns,
        n_rows,
        None if scores is None else (scores[0], scores[1]),
        iterate,
    )


def _check_1d(name: str, key: str, arr: np.ndarray[Any, Any]) -> None:
    if arr.ndim != 1:
        raise InputError(f"{name}: array {key!r} must be 1-D, but has shape {arr.shape}")


def _check_scores(name: str, key: str, arr: np.ndarray[Any, Any]) -> None:
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise InputError(
            f"{name}: array {key!r} must be a 2-D numeric (N, C) score matrix, "
            f"but has shape {arr.shape} and dtype {arr.dtype}"
        )


def _open_npy(name: str, fmt: str, one_d_name: str) -> Source:
    arr = np.load(name, mmap_mode="r", allow_pickle=False)
    if arr.ndim == 1:
        if arr.dtype.kind not in "iuUS":
            raise InputError(
                f"{name}: a 1-D .npy array must hold integer class labels, but has dtype "
                f"{arr.dtype}"
            )
        return _array_source(name, fmt, {one_d_name: arr}, None)
    _check_scores(name, "array", arr)
    classes = [str(j) for j in range(arr.shape[1])]
    return _array_source(name, fmt, {}, ("score_", classes, arr))


def _open_npz(name: str, fmt: str, one_d_name: str) -> Source:
    with np.load(name, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    score_keys = [k for k in _NPZ_SCORE_KEYS if k in data]
    if len(score_keys) > 1:
        raise InputError(f"{name}: holds several score matrices {score_keys}; keep only one")
    scores = None
    if score_keys:
        key = score_keys[0]
        mat = data.pop(key)
        _check_scores(name, key, mat)
        if "classes" in data:
            names = [str(c) for c in data.pop("classes").tolist()]
            if len(names) != mat.shape[1] or len(set(names)) != len(names):
                raise InputError(
                    f"{name}: 'classes' must hold {mat.shape[1]} distinct names (one per "
                    f"column of {key!r}), but holds {names[:5]}..."
                )
        else:
            names = [str(j) for j in range(mat.shape[1])]
        scores = (_NPZ_SCORE_KEYS[key], names, mat)
    else:
        data.pop("classes", None)
    for key, arr in data.items():
        _check_1d(name, key, arr)
    return _array_source(name, fmt, data, scores)
