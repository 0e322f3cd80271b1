"""Read the predictions of an old and a new model and align them row by row.

:func:`load_comparison` reads two prediction files (and optionally a third file of labels)
and reduces them, batch by batch, to the compact arrays the regression metrics need: the
target class, the ranked top-k predictions of each model and the confidence of each model's
top-1 prediction, aligned on an id column (or by position).

Supported formats, chosen by file extension:

* ``.csv``, ``.jsonl`` / ``.ndjson``, ``.parquet`` / ``.pq``: one row per example, with an
  optional id column, an optional label column, and either a hard prediction column
  (``pred``) or one score column per class named ``<prefix><class name>`` with the prefix
  ``logit_``, ``prob_`` or ``score_``. Parquet and CSV are streamed, so files larger than
  memory work: only a few numbers per row are kept.
* ``.npy``: a 1-D integer array of hard predictions, or a 2-D ``(N, C)`` score matrix whose
  classes are named ``"0"`` .. ``"C-1"``; rows are joined by position.
* ``.npz``: arrays ``pred`` (1-D) or one of ``logits`` / ``probs`` / ``scores`` (2-D), and
  optionally ``id``, ``label``, ``classes`` (class names of the score columns) and any other
  1-D array, usable as a group column.

Class names are strings: integer labels and predictions become ``"3"``. Score columns define
a closed class set (the score columns in column order); a file of hard predictions defines an
open one (everything seen). The new model's class set is the reference: ``target`` and
``new_topk`` index ``class_names``, and ``class_map`` sends old class indices into it.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from graceful._extras import require

require("io", "reading prediction and embedding files")

import pyarrow as pa
import pyarrow.compute as pc

from graceful._ranking import rank_columns, top1_columns
from graceful._validation import check_bool, check_choice, check_int, check_optional
from graceful.errors import InputError
from graceful.io._readers import Source, open_source, short_reason

__all__ = [
    "SCORE_PREFIXES",
    "ComparisonInputs",
    "PredictionFiles",
    "load_comparison",
    "load_predictions",
]

#: Prefixes of score columns, in the order they are looked for.
SCORE_PREFIXES: tuple[str, ...] = ("logit_", "prob_", "score_")

#: Value given to a missing group value.
_MISSING_GROUP = "<NA>"

#: Tolerance of the row sums when deciding whether scores are probabilities.
_PROB_SUM_TOL = 1e-3

_IntArray = np.ndarray[Any, np.dtype[np.int64]]
_FloatArray = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class ComparisonInputs:
    """Aligned, compact inputs of a two-model comparison (rows in the new file's order).

    Attributes:
        ids: ``(N,)`` join key values (int64 or object array of str), or ``np.arange(N)``
            when the files are joined by position.
        id_source: the id column name, or ``"position"``.
        target: ``(N,)`` int64 index of the true class into ``class_names``.
        old_topk: ``(N, k)`` int64 ranked predictions of the old model, indices into
            ``old_class_names``.
        new_topk: ``(N, k)`` int64 ranked predictions of the new model, indices into
            ``class_names``.
        old_confidence: ``(N,)`` float32 probability of the old model's top-1 class (softmax
            of logits, or the probability itself); ``None`` for hard predictions.
        new_confidence: the same for the new model.
        class_names: the new model's class names (the reference class space).
        old_class_names: the old model's class names.
        class_map: ``(len(old_class_names),)`` int64, old class index -> new class index, -1
            where the old class has no counterpart; ``None`` when both class lists are equal.
        groups: group column -> ``(N,)`` object array of str values.
        n_rows_old: rows in the old file.
        n_rows_new: rows in the new file.
        old_scores: how the old file's score columns were read, ``"logits"`` (softmax
            taken) or ``"probs"``; ``None`` when it holds hard predictions.
        new_scores: the same for the new file.

    Example:
        >>> import numpy as np
        >>> inputs = ComparisonInputs(
        ...     ids=np.arange(2), id_source="position", target=np.array([0, 1]),
        ...     old_topk=np.array([[0], [0]]), new_topk=np.array([[0], [1]]),
        ...     old_confidence=None, new_confidence=None, class_names=["a", "b"],
        ...     old_class_names=["a", "b"], class_map=None, groups={},
        ...     n_rows_old=2, n_rows_new=2)
        >>> inputs.n_rows, inputs.top_k
        (2, 1)
        >>> inputs.old_top1_in_new_space().tolist()
        [0, 0]
    """

    ids: np.ndarray[Any, Any]
    id_source: str
    target: _IntArray
    old_topk: _IntArray
    new_topk: _IntArray
    old_confidence: _FloatArray | None
    new_confidence: _FloatArray | None
    class_names: list[str]
    old_class_names: list[str]
    class_map: _IntArray | None
    groups: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    n_rows_old: int = 0
    n_rows_new: int = 0
    old_scores: str | None = None
    new_scores: str | None = None

    @property
    def n_rows(self) -> int:
        """Number of aligned rows ``N``."""
        return int(self.target.shape[0])

    @property
    def top_k(self) -> int:
        """Number of ranked predictions kept per row ``k``."""
        return int(self.new_topk.shape[1])

    def old_top1_in_new_space(self) -> _IntArray:
        """The old model's top-1 predictions as indices into ``class_names`` (-1: no match).

        Example:
            >>> import numpy as np
            >>> inputs = ComparisonInputs(
            ...     ids=np.arange(2), id_source="position", target=np.array([0, 1]),
            ...     old_topk=np.array([[0], [2]]), new_topk=np.array([[0], [1]]),
            ...     old_confidence=None, new_confidence=None, class_names=["a", "b"],
            ...     old_class_names=["b", "a", "z"], class_map=np.array([1, 0, -1]),
            ...     groups={}, n_rows_old=2, n_rows_new=2)
            >>> inputs.old_top1_in_new_space().tolist()
            [1, -1]
        """
        top1 = self.old_topk[:, 0]
        if self.class_map is None:
            return top1
        return self.class_map[top1]


# -- class vocabularies -----------------------------------------------------------------------


def _norm_value(value: object) -> str:
    """Class name of a label or prediction value: ints and integral floats -> ``"3"``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _natural_key(name: str) -> tuple[int, int, str]:
    """Sort integers numerically before other names."""
    body = name[1:] if name.startswith("-") else name
    if body.isdigit() and body == str(int(body)):
        return (0, int(name), "")
    return (1, 0, name)


class _Vocab:
    """A growing list of class names with a dict from name to code."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.add(list(names))

    def add(self, names: Sequence[str]) -> _IntArray:
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            code = self.index.get(name)
            if code is None:
                code = len(self.names)
                self.index[name] = code
                self.names.append(name)
            out[i] = code
        return out

    def encode(self, arr: pa.Array) -> _IntArray:
        """Codes of a column chunk (no nulls), adding unseen names; vectorised via Arrow."""
        if pa.types.is_dictionary(arr.type):
            table = self.encode(arr.dictionary)
            codes: _IntArray = table[arr.indices.to_numpy(zero_copy_only=False)]
            return codes
        if pa.types.is_integer(arr.type) and len(arr):
            known = self._encode_known_ints(arr.to_numpy(zero_copy_only=False))
            if known is not None:
                return known
        encoded = pc.dictionary_encode(arr)
        table = self.add([_norm_value(v) for v in encoded.dictionary.to_pylist()])
        hashed: _IntArray = table[encoded.indices.to_numpy(zero_copy_only=False)]
        return hashed

    #: Widest range of integer values encoded through a lookup table instead of a hash.
    _LOOKUP_SPAN = 1 << 16

    def _encode_known_ints(self, values: np.ndarray[Any, Any]) -> _IntArray | None:
        """Codes of integers whose names are all known (class indices), or ``None``.

        A table over ``[min, max]`` replaces hashing every value: the common case of labels
        ``0..C-1`` naming the score columns' classes. ``None`` (the hashed path, which
        adds new names in the order they appear) when the range is wide or some value's
        name is not yet in the vocabulary.
        """
        low, high = int(values.min()), int(values.max())
        if high - low >= self._LOOKUP_SPAN:
            return None
        table = np.array([self.index.get(str(v), -1) for v in range(low, high + 1)], np.int64)
        codes: _IntArray = table[values.astype(np.int64, copy=False) - low]
        if int(codes.min()) < 0:
            return None
        return codes


def _lookup(names: Sequence[str], space: Mapping[str, int]) -> _IntArray:
    """Index of each name in ``space``, -1 where absent."""
    return np.array([space.get(n, -1) for n in names], dtype=np.int64)


# -- per-file plan and scan ---------------------------------------------------------------------


@dataclass
class _Plan:
    """Which columns of a file are read, and what for."""

    id_col: str | None = None
    label_col: str | None = None
    pred_col: str | None = None
    score_cols: list[str] = field(default_factory=list)
    score_names: list[str] = field(default_factory=list)
    group_cols: list[str] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return bool(self.score_cols)

    def columns(self) -> list[str]:
        cols = [self.id_col, self.label_col, self.pred_col, *self.score_cols, *self.group_cols]
        out: list[str] = []
        for c in cols:
            if c is not None and c not in out:
                out.append(c)
        return out


@dataclass
class _Scan:
    """What is kept of one file after reading it."""

    source: Source
    plan: _Plan
    n_rows: int
    vocab: _Vocab
    ids: np.ndarray[Any, Any] | None = None
    labels: _IntArray | None = None
    topk: _IntArray | None = None
    confidence: _FloatArray | None = None
    score_kind: str | None = None
    groups: dict[str, tuple[_IntArray, list[str]]] = field(default_factory=dict)


def _missing_column(src: Source, column: str, what: str) -> InputError:
    shown = ", ".join(repr(c) for c in src.columns[:20])
    more = f", ... ({len(src.columns)} in all)" if len(src.columns) > 20 else ""
    return InputError(f"{src.path}: no {what} column {column!r} (columns: {shown}{more})")


def _plan_predictions(
    src: Source,
    plan: _Plan,
    *,
    pred_col: str | None,
    score_prefix: str | None,
) -> None:
    """Choose the hard prediction column or the score columns of a model's file."""
    if pred_col is not None:
        if pred_col not in src.columns:
            raise _missing_column(src, pred_col, "prediction")
        plan.pred_col = pred_col
        return
    if src.array_scores is not None:
        prefix, names = src.array_scores
        plan.score_cols = [prefix + n for n in names]
        plan.score_names = list(names)
        return
    prefixes = SCORE_PREFIXES if score_prefix is None else (score_prefix,)
    for prefix in prefixes:
        cols = [c for c in src.columns if c.startswith(prefix)]
        if cols:
            names = [c[len(prefix) :] for c in cols]
            if "" in names:
                raise InputError(f"{src.path}: score column {prefix!r} has an empty class name")
            plan.score_cols = cols
            plan.score_names = names
            return
    if "pred" in src.columns:
        plan.pred_col = "pred"
        return
    looked = ", ".join(f"'{p}*'" for p in prefixes)
    raise InputError(
        f"{src.path}: no prediction columns: looked for 'pred' and score columns {looked} "
        f"(columns: {', '.join(repr(c) for c in src.columns[:20])})"
    )


def _py(value: object) -> object:
    """A NumPy scalar as the Python value (for readable error messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _first_true(mask: np.ndarray[Any, Any]) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_no_missing(
    src: Source,
    col: str,
    arr: pa.Array,
    offset: int,
    ids: np.ndarray[Any, Any] | None,
    id_col: str | None,
) -> None:
    """Reject nulls (and NaN in float columns) in an id, label or prediction column."""
    bad = None
    if arr.null_count:
        bad = pc.is_null(arr)
    elif pa.types.is_floating(arr.type):
        nan = pc.is_nan(arr)
        if pc.any(nan).as_py():
            bad = nan
    if bad is not None:
        row = _first_true(bad.to_numpy(zero_copy_only=False))
        where = f"row {offset + row}"
        if ids is not None and id_col is not None:
            where += f" ({id_col} {_py(ids[row])!r})"
        raise InputError(f"{src.path}: missing value (null/NaN) in column {col!r} at {where}")


def _where(offset: int, row: int, ids: np.ndarray[Any, Any] | None, id_col: str | None) -> str:
    """``row 12`` or ``row 12 (id 'a7')``: a row of a file, for an error message."""
    where = f"row {offset + row}"
    if ids is not None and id_col is not None:
        where += f" ({id_col} {_py(ids[row])!r})"
    return where


def _check_scalar(src: Source, col: str, what: str, arr: pa.Array) -> None:
    """Refuse a column that holds lists, structs or maps instead of one value per row."""
    value_type = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if pa.types.is_nested(value_type):
        raise InputError(
            f"{src.path}: {what} column {col!r} holds nested values ({arr.type}); it must "
            f"hold one number or string per row"
        )


def _decode_text(src: Source, col: str, what: str, arr: pa.Array, offset: int) -> pa.Array:
    """A binary column as UTF-8 strings; an :class:`InputError` at the first invalid value."""
    try:
        return pc.cast(arr, pa.string())
    except pa.ArrowInvalid:
        for row, value in enumerate(arr.to_pylist()):
            try:
                value.decode("utf-8")
            except (AttributeError, UnicodeDecodeError):
                raise InputError(
                    f"{src.path}: {what} column {col!r} is not UTF-8 text: {value!r} at row "
                    f"{offset + row}"
                ) from None
        raise


def _id_values(src: Source, col: str, arr: pa.Array, offset: int) -> np.ndarray[Any, Any]:
    """Id column chunk as int64, or as an object array of str."""
    _check_scalar(src, col, "id", arr)
    _check_no_missing(src, col, arr, offset, None, None)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        arr = _decode_text(src, col, "id", arr, offset)
    if pa.types.is_integer(arr.type):
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_floating(arr.type):
        values = arr.to_numpy(zero_copy_only=False)
        if not np.all(np.isfinite(values)) or not np.all(values == np.floor(values)):
            row = _first_true(~(np.isfinite(values) & (values == np.floor(values))))
            raise InputError(
                f"{src.path}: id column {col!r} holds a non-integer number {values[row]!r} at "
                f"row {offset + row}; ids must be integers or strings"
            )
        as_int: np.ndarray[Any, Any] = values.astype(np.int64)
        return as_int
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def _score_columns(
    src: Source,
    plan: _Plan,
    batch: pa.RecordBatch,
    offset: int,
    ids: np.ndarray[Any, Any] | None,
) -> tuple[list[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    """The score columns of a batch as ``C`` float arrays of ``B`` finite values, and sums.

    The columns are read in place (no copy for float32 and float64 files) and reduced
    one at a time: a ``(C, B)`` matrix of a batch does not fit in the cache, its columns
    do. The ``(B,)`` sums are the row sums of the file, added in class order.
    """
    arrays = [batch.column(c) for c in plan.score_cols]
    dtype: type[np.floating[Any]] = np.float32
    for col, arr in zip(plan.score_cols, arrays, strict=True):
        t = arr.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise InputError(f"{src.path}: score column {col!r} has dtype {t}, expected numbers")
        if not (pa.types.is_float32(t) or pa.types.is_float16(t)):
            dtype = np.float64
    cols = [np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype) for arr in arrays]
    with np.errstate(over="ignore", invalid="ignore"):
        sums = cols[0].copy()
        for c in cols[1:]:
            sums += c
    if not np.isfinite(sums).all():
        mat = np.stack(cols)
        bad = ~np.isfinite(mat)
        if bad.any():
            row = _first_true(np.asarray(bad.any(axis=0)))
            col = plan.score_cols[_first_true(bad[:, row])]
            raise InputError(
                f"{src.path}: non-finite score {mat[:, row][bad[:, row]][0]} in column "
                f"{col!r} at {_where(offset, row, ids, plan.id_col)}"
            )
    return cols, sums


def _row_range(
    cols: list[np.ndarray[Any, Any]], *, lowest: bool
) -> tuple[np.ndarray[Any, Any] | None, np.ndarray[Any, Any]]:
    """Each row's lowest (when ``lowest``, else ``None``) and highest score."""
    low, high = (cols[0].copy() if lowest else None), cols[0].copy()
    for c in cols[1:]:
        if low is not None:
            np.minimum(low, c, out=low)
        np.maximum(high, c, out=high)
    return low, high


def _num(value: object) -> str:
    return f"{float(value):.6g}"  # type: ignore[arg-type]


def _not_a_distribution(
    cols: list[np.ndarray[Any, Any]],
    sums: np.ndarray[Any, Any],
    low: np.ndarray[Any, Any],
    high: np.ndarray[Any, Any],
    plan: _Plan,
    offset: int,
    ids: np.ndarray[Any, Any] | None,
) -> str | None:
    """``None`` when every row of the batch is a probability distribution, else why not.

    A distribution has every score in [0, 1] and sums to 1 within 1e-3; the text names the
    first row that is not one and what is wrong with it. ``low`` / ``high``: each row's
    lowest and highest score.
    """
    bad = (low < 0) | (high > 1) | (np.abs(sums - 1.0) > _PROB_SUM_TOL)
    if not bad.any():
        return None
    row = _first_true(bad)
    where = _where(offset, row, ids, plan.id_col)
    values = np.array([c[row] for c in cols])
    if low[row] < 0:
        col = plan.score_cols[int(np.argmin(values))]
        return f"{where} is not a probability distribution: {col!r} is {_num(low[row])} < 0"
    if high[row] > 1:
        col = plan.score_cols[int(np.argmax(values))]
        return f"{where} is not a probability distribution: {col!r} is {_num(high[row])} > 1"
    return f"{where} is not a probability distribution: its scores sum to {_num(sums[row])}"


def _prefix(plan: _Plan) -> str:
    """The prefix of the score columns (``"logit_"`` for ``logit_0``, ``logit_1``, ...)."""
    col, name = plan.score_cols[0], plan.score_names[0]
    return col[: len(col) - len(name)]


def _columns_text(cols: Sequence[str]) -> str:
    return repr(cols[0]) if len(cols) == 1 else f"{cols[0]!r}..{cols[-1]!r}"


class _Accumulator:
    """Collect per-batch arrays, written into one preallocated array when the size is known."""

    def __init__(self, n_rows: int | None) -> None:
        self.n_rows = n_rows
        self.buffer: np.ndarray[Any, Any] | None = None
        self.filled = 0
        self.chunks: list[np.ndarray[Any, Any]] = []

    def append(self, chunk: np.ndarray[Any, Any]) -> None:
        if self.n_rows is not None and not self.chunks:
            if self.buffer is None:
                self.buffer = np.empty((self.n_rows, *chunk.shape[1:]), dtype=chunk.dtype)
            stop = self.filled + chunk.shape[0]
            if chunk.dtype == self.buffer.dtype and stop <= self.n_rows:
                self.buffer[self.filled : stop] = chunk
                self.filled = stop
                return
            self.chunks.append(self.buffer[: self.filled])
            self.buffer = None
        self.chunks.append(chunk)

    def result(self) -> np.ndarray[Any, Any] | None:
        if self.buffer is not None:
            return self.buffer[: self.filled]
        if not self.chunks:
            return None
        chunks = self.chunks
        if len({c.dtype for c in chunks}) > 1:
            # e.g. ids read as numbers in one batch and as text in another: compare as text
            chunks = [c.astype(str).astype(object) if c.dtype != object else c for c in chunks]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


class _Scores:
    """Top-k and top-1 confidence of a file's score columns, reduced batch by batch.

    ``scores="probs"`` refuses the first row that is not a probability distribution;
    ``"logits"`` takes the softmax of every row; ``"auto"`` reads the scores as
    probabilities when every row of the file is a distribution, else as logits (until the
    first row that is not, both confidences are kept). :meth:`result` warns when ``"auto"``
    chose against the columns' names, or chose logits for scores that all lie in [0, 1].
    """

    def __init__(self, src: Source, plan: _Plan, *, scores: str, top_k: int) -> None:
        self.src, self.plan, self.scores, self.top_k = src, plan, scores, top_k
        self.kind: str | None = None if scores == "auto" else scores
        self.why_logits: str | None = None  # auto: the first row that is no distribution
        self.in_unit = True  # auto: every score read so far lies in [0, 1]
        n_rows = src.num_rows
        self.topk = _Accumulator(n_rows)
        self.conf_probs: _Accumulator | None = None if scores == "logits" else _Accumulator(n_rows)
        self.conf_logits: _Accumulator | None = None if scores == "probs" else _Accumulator(n_rows)

    def add(self, batch: pa.RecordBatch, offset: int, ids: np.ndarray[Any, Any] | None) -> None:
        cols, sums = _score_columns(self.src, self.plan, batch, offset, ids)
        n = sums.shape[0]
        # the lowest scores are needed while the kind is open: once a file is read as
        # logits, and has a score outside [0, 1], its batches need only their maxima
        need_low = self.kind != "logits" or (self.scores == "auto" and self.in_unit)
        low, high = _row_range(cols, lowest=need_low)
        if self.kind != "logits" and low is not None:
            why = _not_a_distribution(cols, sums, low, high, self.plan, offset, ids)
            if why is not None:
                if self.kind == "probs":
                    raise InputError(f"{self.src.path}: scores='probs' but {why}")
                self.kind, self.why_logits, self.conf_probs = "logits", why, None
        if self.scores == "auto" and self.in_unit and low is not None:
            self.in_unit = bool(low.min() >= 0 and high.max() <= 1)
        # one ranking rule everywhere (graceful._ranking): ties go to the lower index; the
        # best class's score is the row's highest
        best = high
        if self.top_k == 1:
            ranked = top1_columns(cols, best)[0][:, None]
        else:
            ranked = rank_columns(np.stack(cols), self.top_k)
        self.topk.append(ranked)
        if self.conf_probs is not None:
            self.conf_probs.append(best.astype(np.float32))
        if self.conf_logits is not None:
            total = np.zeros(n, dtype=best.dtype)
            term = np.empty(n, dtype=best.dtype)
            for c in cols:  # sum_c exp(s_c - max s), one column at a time, in class order
                np.subtract(c, best, out=term)
                np.exp(term, out=term)
                total += term
            self.conf_logits.append((1.0 / total).astype(np.float32))

    def result(self) -> tuple[str, _IntArray | None, _FloatArray | None]:
        """``(kind, topk, confidence)``: how the scores were read, and what was kept."""
        kind = self.kind or "probs"
        conf = self.conf_probs if kind == "probs" else self.conf_logits
        if self.scores == "auto":
            prefix = _prefix(self.plan)
            cols = _columns_text(self.plan.score_cols)
            choose = "pass scores='logits' or scores='probs' (--scores) to choose"
            if kind == "probs" and prefix == "logit_":
                warnings.warn(
                    f"{self.src.path}: scores='auto' reads the score columns {cols} as "
                    f"probabilities, since every row is a probability distribution, although "
                    f"they are named {prefix + '*'!r}; {choose}",
                    UserWarning,
                    stacklevel=4,
                )
            elif kind == "logits" and (prefix == "prob_" or self.in_unit):
                named = f"they are named {prefix + '*'!r}"
                although = named if prefix == "prob_" else "every score lies in [0, 1]"
                warnings.warn(
                    f"{self.src.path}: scores='auto' reads the score columns {cols} as logits "
                    f"(taking their softmax), although {although}: {self.why_logits}; {choose}",
                    UserWarning,
                    stacklevel=4,
                )
        return kind, self.topk.result(), None if conf is None else conf.result()


class _HardLabels:
    """Refuse a label or prediction column of numbers that are not all integers.

    Such a column holds scores, not classes (``--pred-col prob_0`` would make one class of
    every distinct probability). A column with any value that is not a number (``"cat"``)
    holds class names and is left alone, so the decision is the whole column's, whatever
    the batch boundaries. CSV columns are read as text: their values count as numbers
    when they parse as numbers.
    """

    def __init__(self, src: Source, col: str, what: str) -> None:
        self.src, self.col, self.what = src, col, what
        self.numeric = True
        self.first: tuple[object, str] | None = None  # (value, where) of the first non-integer

    def add(
        self, arr: pa.Array, offset: int, ids: np.ndarray[Any, Any] | None, id_col: str | None
    ) -> None:
        if not self.numeric:
            return
        values = arr.dictionary if pa.types.is_dictionary(arr.type) else arr
        t = values.type
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            return
        if pa.types.is_floating(t):
            numbers = values
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            try:
                numbers = pc.cast(values, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.numeric = False
                return
        else:
            self.numeric = False
            return
        if self.first is not None:
            return
        x = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
        fractional = np.isfinite(x) & (x != np.floor(x))
        if not fractional.any():
            return
        if pa.types.is_dictionary(arr.type):
            fractional = fractional[arr.indices.to_numpy(zero_copy_only=False)]
        row = _first_true(fractional)
        self.first = (arr[row].as_py(), _where(offset, row, ids, id_col))
        if pa.types.is_floating(t):  # numbers for sure: no need to read on
            self.check()

    def check(self) -> None:
        if not self.numeric or self.first is None:
            return
        value, where = self.first
        if self.what == "label":
            raise InputError(
                f"{self.src.path}: label column {self.col!r} holds numbers that are not "
                f"integers: {value!r} at {where}; class labels must be integers or names"
            )
        cut = self.col.rfind("_")
        option = f"--score-prefix {self.col[: cut + 1]!r}" if cut > 0 else "--score-prefix"
        raise InputError(
            f"{self.src.path}: prediction column {self.col!r} holds scores, not class labels: "
            f"{value!r} at {where} is not an integer; read score columns <prefix><class> by "
            f"their prefix instead (score_prefix, {option})"
        )


def _encode(src: Source, col: str, what: str, vocab: _Vocab, arr: pa.Array) -> _IntArray:
    """Class or group codes of a column chunk; an :class:`InputError` for an unusable type."""
    try:
        return vocab.encode(arr)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(
            f"{src.path}: {what} column {col!r} of type {arr.type} cannot be read: "
            f"{short_reason(exc)}"
        ) from None


def _scan(
    src: Source,
    plan: _Plan,
    *,
    top_k: int,
    scores: str,
    batch_rows: int,
) -> _Scan:
    """Read a file batch by batch, keeping ids, label codes, top-k, confidence and groups."""
    vocab = _Vocab(plan.score_names)
    group_vocabs = {g: _Vocab() for g in plan.group_cols}
    ids = _Accumulator(src.num_rows)
    labels = _Accumulator(src.num_rows)
    topk = _Accumulator(src.num_rows)
    groups = {g: _Accumulator(src.num_rows) for g in plan.group_cols}
    score_reader = _Scores(src, plan, scores=scores, top_k=top_k) if plan.score_cols else None
    hard = {
        col: _HardLabels(src, col, what)
        for col, what in ((plan.label_col, "label"), (plan.pred_col, "prediction"))
        if col is not None
    }
    text_cols = [c for c in (plan.label_col, plan.pred_col, *plan.group_cols) if c is not None]
    offset = 0
    for batch in src.batches(plan.columns(), batch_rows, text_columns=text_cols):
        n = batch.num_rows
        if n == 0:
            continue
        batch_ids = None
        if plan.id_col is not None:
            batch_ids = _id_values(src, plan.id_col, batch.column(plan.id_col), offset)
            ids.append(batch_ids)
        for col, what, acc in (
            (plan.label_col, "label", labels),
            (plan.pred_col, "prediction", topk),
        ):
            if col is None:
                continue
            arr = batch.column(col)
            _check_scalar(src, col, what, arr)
            _check_no_missing(src, col, arr, offset, batch_ids, plan.id_col)
            hard[col].add(arr, offset, batch_ids, plan.id_col)
            codes = _encode(src, col, what, vocab, arr)
            acc.append(codes if acc is labels else codes[:, None])
        if score_reader is not None:
            score_reader.add(batch, offset, batch_ids)
        for g in plan.group_cols:
            arr = batch.column(g)
            _check_scalar(src, g, "group", arr)
            if arr.null_count:
                try:
                    arr = pc.fill_null(pc.cast(arr, pa.string()), _MISSING_GROUP)
                except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
                    raise InputError(
                        f"{src.path}: group column {g!r} of type {arr.type} cannot be read: "
                        f"{short_reason(exc)}"
                    ) from None
            groups[g].append(_encode(src, g, "group", group_vocabs[g], arr))
        offset += n
    if offset == 0:
        raise InputError(f"{src.path}: empty file (no rows)")
    for check in hard.values():
        check.check()

    scan = _Scan(src, plan, offset, vocab)
    scan.ids = ids.result()
    scan.labels = labels.result()
    scan.topk = topk.result()
    if score_reader is not None:
        scan.score_kind, scan.topk, scan.confidence = score_reader.result()
    for g, acc in groups.items():
        group_codes = acc.result()
        if group_codes is not None:
            scan.groups[g] = (group_codes, group_vocabs[g].names)
    return scan


# -- alignment ----------------------------------------------------------------------------------


def _format_values(values: Sequence[object], total: int) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:5])
    more = f", ... ({total} in all)" if total > 5 else ""
    return f"[{shown}{more}]"


def _dense(ids: np.ndarray[Any, Any]) -> tuple[int, int] | None:
    """``(lowest id, span)`` when ``ids`` are int64 over a range small enough for a table."""
    if ids.dtype != np.int64 or ids.size == 0:
        return None
    low, high = int(ids.min()), int(ids.max())
    span = high - low + 1
    return (low, span) if span <= 4 * ids.size + 1024 else None


def _check_unique(path: str, col: str, ids: np.ndarray[Any, Any]) -> None:
    if ids.dtype != object and ids.size > 1 and bool(np.all(ids[1:] > ids[:-1])):
        return
    dense = _dense(ids)
    if dense is not None:
        low, span = dense
        counts = np.bincount(ids - low, minlength=span)
        if counts.max() > 1:
            raise InputError(
                f"{path}: duplicate id {low + _first_true(counts > 1)!r} in column {col!r}"
            )
        return
    index = pd.Index(ids)
    if not index.is_unique:
        dup = _py(ids[_first_true(index.duplicated())])
        raise InputError(f"{path}: duplicate id {dup!r} in column {col!r}")


def _common_id_dtype(
    a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Compare int ids with str ids as strings."""
    if (a.dtype == object) != (b.dtype == object):
        a = a.astype(str).astype(object) if a.dtype != object else a
        b = b.astype(str).astype(object) if b.dtype != object else b
    return a, b


def _get_indexer(other_ids: np.ndarray[Any, Any], ref_ids: np.ndarray[Any, Any]) -> _IntArray:
    """Position in ``other_ids`` (unique) of each of ``ref_ids``, -1 when absent."""
    dense = _dense(other_ids)
    if dense is not None and ref_ids.dtype == np.int64:
        low, span = dense
        table = np.full(span, -1, dtype=np.int64)
        table[other_ids - low] = np.arange(other_ids.size, dtype=np.int64)
        shifted = ref_ids - low
        inside = (shifted >= 0) & (shifted < span)
        found: _IntArray = table[np.where(inside, shifted, 0)]
        found[~inside] = -1
        return found
    return np.asarray(pd.Index(other_ids).get_indexer(ref_ids), dtype=np.int64)


def _align(
    ref_path: str,
    ref_ids: np.ndarray[Any, Any],
    other_path: str,
    other_ids: np.ndarray[Any, Any],
) -> _IntArray | None:
    """Row of ``other`` for each row of ``ref`` (``None``: same order); sets must be equal."""
    ref_ids, other_ids = _common_id_dtype(ref_ids, other_ids)
    if ref_ids.shape == other_ids.shape and np.array_equal(ref_ids, other_ids):
        return None
    indexer = _get_indexer(other_ids, ref_ids)
    missing = indexer < 0
    if missing.any():
        lost = ref_ids[missing]
        raise InputError(
            f"{other_path}: lacks {lost.size} id(s) present in {ref_path}: "
            f"{_format_values(lost.tolist(), lost.size)}"
        )
    if other_ids.size != ref_ids.size:
        extra_mask = np.ones(other_ids.size, dtype=bool)
        extra_mask[indexer] = False
        extra = other_ids[extra_mask]
        raise InputError(
            f"{ref_path}: lacks {extra.size} id(s) present in {other_path}: "
            f"{_format_values(extra.tolist(), extra.size)}"
        )
    return indexer


def _take(values: np.ndarray[Any, Any], index: _IntArray | None) -> np.ndarray[Any, Any]:
    return values if index is None else values[index]


# -- public entry point -------------------------------------------------------------------------


def _check_args(
    top_k: object, batch_rows: object, scores: object, group_cols: object, score_prefix: object
) -> None:
    check_int("top_k", top_k, low=1)
    check_int("batch_rows", batch_rows, low=1)
    check_choice("scores", scores, ("auto", "logits", "probs"))
    if isinstance(group_cols, str):
        raise InputError(
            f"Expected argument `group_cols` to be a sequence of column names, but got the "
            f"string {group_cols!r}"
        )
    if not isinstance(group_cols, Sequence) or not all(isinstance(g, str) for g in group_cols):
        raise InputError(
            f"Expected argument `group_cols` to be a sequence of column names, but got "
            f"{group_cols!r}"
        )
    counts = Counter(group_cols)
    for name, count in counts.items():
        if count > 1:
            raise InputError(
                f"Expected argument `group_cols` to name each column once, but got {name!r} "
                f"{count} times"
            )
    if score_prefix is not None and (not isinstance(score_prefix, str) or not score_prefix):
        raise InputError(
            f"Expected argument `score_prefix` to be a non-empty str or None, but got "
            f"{score_prefix!r}"
        )


def _check_distinct_columns(src: Source, plan: _Plan) -> None:
    """Refuse a file in which a column that is read appears twice (which one is meant?)."""
    counts = Counter(src.columns)
    for col in plan.columns():
        if counts[col] > 1:
            raise InputError(
                f"{src.path}: column {col!r} appears {counts[col]} times; rename all but one"
            )


def load_comparison(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    id_col: str | None = None,
    label_col: str = "label",
    pred_col: str | None = None,
    score_prefix: str | None = None,
    scores: Literal["auto", "logits", "probs"] = "auto",
    class_map: Mapping[str, str] | None = None,
    group_cols: Sequence[str] = (),
    top_k: int = 1,
    batch_rows: int = 1 << 18,
) -> ComparisonInputs:
    r"""Read the old and the new model's predictions and align them with the labels.

    Each file is streamed in batches of ``batch_rows`` rows and reduced on the fly to ids,
    label codes, the top-k class indices and the top-1 confidence
    :math:`\max_c p_c`, where :math:`p = \mathrm{softmax}(s)` for logits
    (computed as :math:`1 / \sum_c e^{s_c - \max s}`) and :math:`p = s` for probabilities.

    Args:
        old: the old (deployed) model's prediction file.
        new: the new model's prediction file; its row order and class set are the reference.
        labels: optional third file holding ``label_col`` (and the id column, unless it
            holds the label column only, in which case its rows follow the new file's).
        id_col: join key. ``None``: ``"id"`` if both files have it, else join by position.
        label_col: label column, read from ``labels``, else the new file, else the old one;
            where several files hold it, they must agree on every row.
        pred_col: hard prediction column. ``None``: score columns if any, else ``"pred"``.
            A column of numbers that are not all integers holds scores, not labels, and is
            refused (as is such a label column).
        score_prefix: prefix of the score columns ``<prefix><class>``. ``None``: the first
            of ``"logit_"``, ``"prob_"``, ``"score_"`` present.
        scores: ``"logits"``, ``"probs"`` (every row must be a probability distribution:
            values in [0, 1] summing to 1 within 1e-3), or ``"auto"``: probabilities if
            every row of the file is one, else logits, with a :class:`UserWarning` when the
            choice is not obvious (``prob_*`` columns read as logits, or scores all in
            [0, 1] that are no distribution). :attr:`ComparisonInputs.old_scores` and
            ``new_scores`` say what was taken.
        class_map: old class name -> new class name, for models with different class sets;
            old classes missing from it have no counterpart.
        group_cols: columns to disaggregate by, taken from the old file, else the new, else
            the labels file; missing values become ``"<NA>"``.
        top_k: number of ranked predictions kept per row (needs score columns when > 1).
        batch_rows: rows per batch while streaming.

    Returns:
        The aligned :class:`ComparisonInputs`, rows in the new file's order.

    Raises:
        InputError: for every problem with the files or arguments; the one-line message names
            the file, column or argument and the offending value (and the first bad row).

    Example:
        >>> import tempfile, pathlib
        >>> import pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"id": [1, 2, 3], "label": [0, 1, 1], "pred": [0, 1, 0]}).to_csv(
        ...     d / "old.csv", index=False)
        >>> pd.DataFrame({"id": [3, 2, 1], "logit_0": [0.0, 2.0, 1.0],
        ...               "logit_1": [1.0, 0.0, 1.0]}).to_parquet(d / "new.parquet")
        >>> inputs = load_comparison(d / "old.csv", d / "new.parquet")
        >>> inputs.ids.tolist(), inputs.target.tolist()
        ([3, 2, 1], [1, 1, 0])
        >>> inputs.old_topk[:, 0].tolist(), inputs.new_topk[:, 0].tolist()
        ([0, 1, 0], [1, 0, 0])
        >>> [round(float(c), 3) for c in inputs.new_confidence]
        [0.731, 0.881, 0.5]
    """
    _check_args(top_k, batch_rows, scores, group_cols, score_prefix)
    top_k = int(top_k)
    batch_rows = int(batch_rows)
    src_old = open_source(old, one_d_name=pred_col or "pred")
    src_new = open_source(new, one_d_name=pred_col or "pred")
    src_lab = None if labels is None else open_source(labels, one_d_name=label_col)

    # Join key.
    if id_col is not None:
        for src in (src_old, src_new):
            if id_col not in src.columns:
                raise _missing_column(src, id_col, "id")
        join = id_col
    elif "id" in src_old.columns and "id" in src_new.columns:
        join = "id"
    else:
        join = None

    plans = {"old": _Plan(), "new": _Plan()}
    sources = {"old": src_old, "new": src_new}
    for role in ("old", "new"):
        src, plan = sources[role], plans[role]
        plan.id_col = join
        _plan_predictions(src, plan, pred_col=pred_col, score_prefix=score_prefix)
        if label_col in src.columns and label_col not in (plan.pred_col, join):
            plan.label_col = label_col
        n_classes = len(plan.score_names) if plan.closed else None
        if top_k > 1 and n_classes is None:
            raise InputError(
                f"{src.path}: top_k={top_k} needs score columns, but the file holds hard "
                f"predictions in column {plan.pred_col!r}"
            )
        if n_classes is not None and top_k > n_classes:
            raise InputError(
                f"Expected argument `top_k` to be at most the number of classes, but got "
                f"{top_k} > {n_classes} classes in {src.path}"
            )
    lab_plan = _Plan()
    if src_lab is not None:
        if label_col not in src_lab.columns:
            raise _missing_column(src_lab, label_col, "label")
        lab_plan.label_col = label_col
        if join is not None:
            if join in src_lab.columns:
                lab_plan.id_col = join
            elif len(src_lab.columns) > 1:
                raise _missing_column(src_lab, join, "id")

    # Group columns: old first, then new, then labels.
    for g in group_cols:
        for src, plan in ((src_old, plans["old"]), (src_new, plans["new"])):
            if g in src.columns:
                plan.group_cols.append(g)
                break
        else:
            if src_lab is not None and g in src_lab.columns:
                lab_plan.group_cols.append(g)
            else:
                names = ", ".join(s.path for s in (src_old, src_new, src_lab) if s is not None)
                raise InputError(f"group column {g!r} not found in {names}")

    # Closed class sets must agree, or be mapped, before reading anything big.
    old_plan, new_plan = plans["old"], plans["new"]
    if class_map is not None:
        for key, value in class_map.items():
            if old_plan.closed and key not in old_plan.score_names:
                raise InputError(
                    f"class_map: key {key!r} is not a class of {src_old.path} "
                    f"(classes: {_format_values(old_plan.score_names, len(old_plan.score_names))})"
                )
            if new_plan.closed and value not in new_plan.score_names:
                raise InputError(
                    f"class_map: value {value!r} (for {key!r}) is not a class of {src_new.path} "
                    f"(classes: {_format_values(new_plan.score_names, len(new_plan.score_names))})"
                )
    elif (
        old_plan.closed
        and new_plan.closed
        and set(old_plan.score_names) != set(new_plan.score_names)
    ):
        o, n = old_plan.score_names, new_plan.score_names
        what = "numbers of classes" if len(o) != len(n) else "class names"
        raise InputError(
            f"different {what}: {src_old.path} has {len(o)} ({old_plan.score_cols[0]}.."
            f"{old_plan.score_cols[-1]}), {src_new.path} has {len(n)} ({new_plan.score_cols[0]}.."
            f"{new_plan.score_cols[-1]}); pass a class map (--class-map)"
        )

    for source, plan in ((src_old, old_plan), (src_new, new_plan), (src_lab, lab_plan)):
        if source is not None:
            _check_distinct_columns(source, plan)

    old_scan = _scan(src_old, old_plan, top_k=top_k, scores=scores, batch_rows=batch_rows)
    new_scan = _scan(src_new, new_plan, top_k=top_k, scores=scores, batch_rows=batch_rows)
    lab_scan = (
        None
        if src_lab is None
        else _scan(src_lab, lab_plan, top_k=top_k, scores=scores, batch_rows=batch_rows)
    )
    return _assemble(old_scan, new_scan, lab_scan, join, label_col, class_map)


def _assemble(
    old: _Scan,
    new: _Scan,
    lab: _Scan | None,
    join: str | None,
    label_col: str,
    class_map: Mapping[str, str] | None,
) -> ComparisonInputs:
    """Align the scanned files on the new file's rows and map everything to class indices."""
    n = new.n_rows
    # Row alignment: index into old (and labels) rows for each new row.
    if join is not None:
        if old.ids is None or new.ids is None:  # pragma: no cover - the plan reads ids
            raise InputError(f"id column {join!r} was not read")
        _check_unique(old.source.path, join, old.ids)
        _check_unique(new.source.path, join, new.ids)
        old_index = _align(new.source.path, new.ids, old.source.path, old.ids)
        ids: np.ndarray[Any, Any] = new.ids
    else:
        if old.n_rows != n:
            raise InputError(
                f"different lengths without an id column: {old.source.path} has {old.n_rows} "
                f"rows, {new.source.path} has {n}"
            )
        old_index = None
        ids = np.arange(n, dtype=np.int64)
    lab_index = None
    if lab is not None:
        if lab.ids is not None and new.ids is not None and join is not None:
            _check_unique(lab.source.path, join, lab.ids)
            lab_index = _align(new.source.path, new.ids, lab.source.path, lab.ids)
        elif lab.n_rows != n:
            raise InputError(
                f"different lengths without an id column: {lab.source.path} has {lab.n_rows} "
                f"rows, {new.source.path} has {n}"
            )

    # The label source.
    if lab is not None and lab.labels is not None:
        label_scan, label_index = lab, lab_index
    elif new.labels is not None:
        label_scan, label_index = new, None
    elif old.labels is not None:
        label_scan, label_index = old, old_index
    else:
        raise InputError(
            f"no labels: neither {old.source.path} nor {new.source.path} has a column "
            f"{label_col!r}; pass a labels file (--labels) or the label column (--label-col)"
        )
    # Every label column read must agree with the others on every aligned row.
    if old.labels is not None and new.labels is not None:
        _check_labels_agree(old, old_index, new, None, ids, join)
    if lab is not None and lab.labels is not None:
        for other, index in ((new, None), (old, old_index)):
            if other.labels is not None:
                _check_labels_agree(lab, lab_index, other, index, ids, join)
    label_codes = _take(label_scan.labels, label_index)  # type: ignore[arg-type]
    used = np.zeros(len(label_scan.vocab.names), dtype=bool)
    used[label_codes] = True
    label_names = [name for name, u in zip(label_scan.vocab.names, used, strict=True) if u]

    # Class spaces.
    old_closed, new_closed = old.plan.closed, new.plan.closed
    old_preds = old.vocab.names[: len(old.plan.score_names)] if old_closed else _pred_names(old)
    if new_closed:
        class_names = list(new.plan.score_names)
    else:
        extra = list(class_map.values()) if class_map is not None else old_preds
        class_names = sorted(
            set(_pred_names(new)) | set(label_names) | set(extra), key=_natural_key
        )
    new_index = {name: i for i, name in enumerate(class_names)}
    if old_closed:
        old_class_names = list(old.plan.score_names)
    elif class_map is not None:
        old_class_names = sorted(set(old_preds) | set(class_map), key=_natural_key)
    else:
        old_class_names = class_names + sorted(set(old_preds) - set(class_names), key=_natural_key)
    if class_map is not None:
        cmap: _IntArray | None = np.array(
            [new_index[class_map[c]] if c in class_map else -1 for c in old_class_names],
            dtype=np.int64,
        )
    else:
        cmap = _lookup(old_class_names, new_index)
    if old_class_names == class_names:
        cmap = None

    # Target.
    target = _lookup(label_scan.vocab.names, new_index)[label_codes]
    if (target < 0).any():
        bad = sorted(
            {label_scan.vocab.names[c] for c in np.unique(label_codes[target < 0])},
            key=_natural_key,
        )
        raise InputError(
            f"{label_scan.source.path}: column {label_col!r} has {len(bad)} label value(s) "
            f"outside the {len(class_names)} classes of {new.source.path}: "
            f"{_format_values(bad, len(bad))}"
        )

    # Predictions in the class spaces.
    old_space = {name: i for i, name in enumerate(old_class_names)}
    if old.topk is None or new.topk is None:  # pragma: no cover - every model file has preds
        raise InputError("no predictions were read")
    old_topk = _take(old.topk, old_index)
    if not old_closed:
        old_topk = _lookup(old.vocab.names, old_space)[old_topk]
    new_topk = new.topk if new_closed else _lookup(new.vocab.names, new_index)[new.topk]
    old_conf = None if old.confidence is None else _take(old.confidence, old_index)

    groups: dict[str, np.ndarray[Any, Any]] = {}
    for scan, index in ((old, old_index), (new, None), (lab, lab_index)):
        if scan is None:
            continue
        for g, (codes, names) in scan.groups.items():
            groups[g] = np.array(names, dtype=object)[_take(codes, index)]

    return ComparisonInputs(
        ids=ids,
        id_source=join if join is not None else "position",
        target=target,
        old_topk=old_topk,
        new_topk=new_topk,
        old_confidence=old_conf,
        new_confidence=new.confidence,
        class_names=class_names,
        old_class_names=old_class_names,
        class_map=cmap,
        groups=groups,
        n_rows_old=old.n_rows,
        n_rows_new=new.n_rows,
        old_scores=old.score_kind,
        new_scores=new.score_kind,
    )


def _pred_names(scan: _Scan) -> list[str]:
    """Names of the classes a hard-prediction file predicted at least once."""
    if scan.topk is None:  # pragma: no cover
        return []
    used = np.zeros(len(scan.vocab.names), dtype=bool)
    used[scan.topk.ravel()] = True
    return [name for name, u in zip(scan.vocab.names, used, strict=True) if u]


def _check_labels_agree(
    a: _Scan,
    a_index: _IntArray | None,
    b: _Scan,
    b_index: _IntArray | None,
    ids: np.ndarray[Any, Any],
    join: str | None,
) -> None:
    """Labels of two files must be equal on every aligned row.

    ``a_index`` and ``b_index`` hold each file's row for each row of the new file (``None``:
    the rows are the new file's).
    """
    if a.labels is None or b.labels is None:  # pragma: no cover
        return
    a_codes, b_codes = _take(a.labels, a_index), _take(b.labels, b_index)
    a_in_b = _lookup(a.vocab.names, b.vocab.index)[a_codes]
    differ = a_in_b != b_codes
    if differ.any():
        row = _first_true(differ)
        key = f"{join} {_py(ids[row])!r}" if join is not None else f"row {row}"
        raise InputError(
            f"labels disagree: {a.source.path} and {b.source.path} have different "
            f"{a.plan.label_col!r} at {key} "
            f"({a.vocab.names[a_codes[row]]!r} vs {b.vocab.names[b_codes[row]]!r})"
        )


# -- several files in one class space ---------------------------------------------------------


@dataclass(frozen=True)
class PredictionFiles:
    """Top-1 predictions (and labels, where a file holds them) of several files, one class space.

    Every class index below points into :attr:`class_names`, the same list for every file,
    so predictions of different files (or model versions) can be compared index by index.
    :func:`load_predictions` reads the files; :meth:`aligned` joins some of them row by row.

    Attributes:
        paths: the files, in the order given.
        class_names: the shared class names.
        ids: per file, its ``(N_f,)`` ids (int64 or object array of str), or ``None`` when
            the file has no id column.
        preds: per file, ``(N_f,)`` int64 top-1 predictions (the lowest class index among
            tied scores, the rule of :mod:`graceful._ranking`).
        target: per file, ``(N_f,)`` int64 labels, or ``None`` when it has no label column.
        scores: per file, how its score columns were read (``"logits"`` or ``"probs"``), or
            ``None`` for hard predictions.
        id_col: the column the ids were read from.
        joined: ``None`` for files read apart; after :meth:`aligned`, the id column the rows
            were joined on, or ``"position"``.

    Example:
        >>> import numpy as np
        >>> files = PredictionFiles(
        ...     paths=("a.csv", "b.csv"), class_names=["0", "1"],
        ...     ids=(np.array([1, 2]), np.array([2, 1])), preds=(np.array([0, 1]),
        ...     np.array([1, 1])), target=(None, np.array([1, 0])), scores=(None, None),
        ...     id_col="id")
        >>> both = files.aligned([0, 1])
        >>> both.joined, both.preds[1].tolist(), both.labels.tolist()
        ('id', [1, 1], [0, 1])
    """

    paths: tuple[str, ...]
    class_names: list[str]
    ids: tuple[np.ndarray[Any, Any] | None, ...]
    preds: tuple[_IntArray, ...]
    target: tuple[_IntArray | None, ...]
    scores: tuple[str | None, ...]
    id_col: str = "id"
    joined: str | None = None

    @property
    def labels(self) -> _IntArray | None:
        """The labels of the first file that holds them (all agree once aligned), or ``None``."""
        return next((t for t in self.target if t is not None), None)

    def aligned(self, files: Sequence[int], *, on_ids: bool | None = None) -> PredictionFiles:
        """The chosen files joined row by row, in the first chosen file's row order.

        Rows are joined on :attr:`id_col` (every file must then hold the same ids), or by
        position (the files must then have the same length). Label columns must agree on
        every row.

        Args:
            files: indices into :attr:`paths`, each at most once.
            on_ids: ``True`` joins on the ids (a chosen file without them is an error),
                ``False`` by position, ``None`` on the ids when every chosen file has them.

        Returns:
            A :class:`PredictionFiles` of the chosen files whose ``ids`` are all the first
            file's (``np.arange(N)`` when joined by position) and whose ``joined`` says how.
        """
        chosen = [check_int("files", i, low=0, high=len(self.paths) - 1) for i in files]
        if not chosen or len(set(chosen)) != len(chosen):
            raise InputError(
                f"Expected argument `files` to name each file at most once, and at least one, "
                f"but got {list(files)!r}"
            )
        check_optional(check_bool, "on_ids", on_ids)
        first = chosen[0]
        ref_path, ref_ids = self.paths[first], self.ids[first]
        if on_ids:
            for i in chosen:
                if self.ids[i] is None:
                    raise InputError(f"{self.paths[i]}: no id column {self.id_col!r}")
        by_id = all(self.ids[i] is not None for i in chosen) if on_ids is None else on_ids
        indexes: list[_IntArray | None] = []
        for i in chosen:
            ids = self.ids[i]
            if by_id and ids is not None and ref_ids is not None:
                _check_unique(self.paths[i], self.id_col, ids)
                indexes.append(
                    None if i == first else _align(ref_path, ref_ids, self.paths[i], ids)
                )
            elif len(self.preds[i]) != len(self.preds[first]):
                raise InputError(
                    f"different lengths without an id column: {ref_path} has "
                    f"{len(self.preds[first])} rows, {self.paths[i]} has {len(self.preds[i])}"
                )
            else:
                indexes.append(None)
        n = len(self.preds[first])
        shared = ref_ids if by_id and ref_ids is not None else np.arange(n, dtype=np.int64)
        target = tuple(
            None if self.target[i] is None else _take(self.target[i], index)  # type: ignore[arg-type]
            for i, index in zip(chosen, indexes, strict=True)
        )
        labelled = [
            (self.paths[i], t) for i, t in zip(chosen, target, strict=True) if t is not None
        ]
        for path, values in labelled[1:]:
            differ = values != labelled[0][1]
            if differ.any():
                row = _first_true(differ)
                key = f"{self.id_col} {_py(shared[row])!r}" if by_id else f"row {row}"
                raise InputError(
                    f"labels disagree: {labelled[0][0]} and {path} have different labels at "
                    f"{key} ({self.class_names[labelled[0][1][row]]!r} vs "
                    f"{self.class_names[values[row]]!r})"
                )
        return PredictionFiles(
            paths=tuple(self.paths[i] for i in chosen),
            class_names=list(self.class_names),
            ids=tuple(shared for _ in chosen),
            preds=tuple(
                _take(self.preds[i], index) for i, index in zip(chosen, indexes, strict=True)
            ),
            target=target,
            scores=tuple(self.scores[i] for i in chosen),
            id_col=self.id_col,
            joined=self.id_col if by_id else "position",
        )


def load_predictions(
    paths: Sequence[str | os.PathLike[str]],
    *,
    id_col: str | None = None,
    label_col: str = "label",
    pred_col: str | None = None,
    score_prefix: str | None = None,
    scores: Literal["auto", "logits", "probs"] = "auto",
    batch_rows: int = 1 << 18,
) -> PredictionFiles:
    """Read the top-1 predictions (and any labels) of several files into one class space.

    Each file is read as :func:`load_comparison` reads one (the same formats, columns,
    ``scores`` rule and checks), keeping its ids, labels and top-1 predictions. The class
    space is shared: when files hold score columns, they must all name the same classes,
    and that list (in the first such file's column order) is the class space, which every
    label and hard prediction must belong to; otherwise it is every label and prediction
    seen, integers in numeric order first. Rows are not joined: :meth:`PredictionFiles.aligned`
    does that for the files that describe the same samples.

    Args:
        paths: the files (at least one).
        id_col: id column, read where a file has it (``None``: ``"id"``).
        label_col: label column, read where a file has it.
        pred_col: hard prediction column. ``None``: score columns if any, else ``"pred"``.
        score_prefix: prefix of the score columns. ``None``: the first of ``"logit_"``,
            ``"prob_"``, ``"score_"`` present.
        scores: ``"logits"``, ``"probs"`` or ``"auto"``, as in :func:`load_comparison`.
        batch_rows: rows per batch while streaming.

    Returns:
        The :class:`PredictionFiles`.

    Raises:
        InputError: for every problem with the files or arguments (one line naming them).

    Example:
        >>> import tempfile, pathlib
        >>> import pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"id": [1, 2], "label": ["cat", "dog"],
        ...               "pred": ["cat", "cat"]}).to_csv(d / "a.csv", index=False)
        >>> pd.DataFrame({"id": [2, 1], "score_cat": [0.1, 0.5],
        ...               "score_dog": [0.9, 0.5]}).to_parquet(d / "b.parquet")
        >>> files = load_predictions([d / "a.csv", d / "b.parquet"])
        >>> files.class_names, [p.tolist() for p in files.preds]
        (['cat', 'dog'], [[0, 0], [1, 0]])
        >>> files.aligned([0, 1]).preds[1].tolist()  # in a.csv's row order
        [0, 1]
    """
    _check_args(1, batch_rows, scores, (), score_prefix)
    if isinstance(paths, (str, os.PathLike)) or not isinstance(paths, Sequence) or not paths:
        raise InputError(
            f"Expected argument `paths` to be a non-empty sequence of files, but got {paths!r}"
        )
    join = id_col if id_col is not None else "id"
    scans: list[_Scan] = []
    for path in paths:
        src = open_source(path, one_d_name=pred_col or "pred")
        plan = _Plan()
        if join in src.columns:
            plan.id_col = join
        _plan_predictions(src, plan, pred_col=pred_col, score_prefix=score_prefix)
        if label_col in src.columns and label_col not in (plan.pred_col, plan.id_col):
            plan.label_col = label_col
        _check_distinct_columns(src, plan)
        scans.append(_scan(src, plan, top_k=1, scores=scores, batch_rows=int(batch_rows)))

    closed = [s for s in scans if s.plan.closed]
    if closed:
        class_names = list(closed[0].plan.score_names)
        for other in closed[1:]:
            if set(other.plan.score_names) != set(class_names):
                a, b = closed[0], other
                what = (
                    "numbers of classes"
                    if len(a.plan.score_names) != len(b.plan.score_names)
                    else "class names"
                )
                raise InputError(
                    f"different {what}: {a.source.path} has {len(a.plan.score_names)} "
                    f"({_columns_text(a.plan.score_cols)}), {b.source.path} has "
                    f"{len(b.plan.score_names)} ({_columns_text(b.plan.score_cols)})"
                )
    else:
        seen: set[str] = set()
        for s in scans:
            seen.update(_pred_names(s))
            if s.labels is not None:
                seen.update(s.vocab.names[c] for c in np.unique(s.labels))
        class_names = sorted(seen, key=_natural_key)
    space = {name: i for i, name in enumerate(class_names)}

    def codes(scan: _Scan, values: _IntArray, column: str | None, what: str) -> _IntArray:
        out = _lookup(scan.vocab.names, space)[values]
        if (out < 0).any():
            bad = sorted(
                {scan.vocab.names[c] for c in np.unique(values[out < 0])}, key=_natural_key
            )
            raise InputError(
                f"{scan.source.path}: {what} column {column!r} has {len(bad)} value(s) outside "
                f"the {len(class_names)} classes of the score columns: "
                f"{_format_values(bad, len(bad))}"
            )
        return out

    preds: list[_IntArray] = []
    for s in scans:
        if s.topk is None:  # pragma: no cover - every model file has predictions
            raise InputError(f"{s.source.path}: no predictions were read")
        column = s.plan.pred_col or _columns_text(s.plan.score_cols)
        preds.append(codes(s, s.topk[:, 0], column, "prediction"))
    return PredictionFiles(
        paths=tuple(s.source.path for s in scans),
        class_names=class_names,
        ids=tuple(s.ids for s in scans),
        preds=tuple(preds),
        target=tuple(
            None if s.labels is None else codes(s, s.labels, s.plan.label_col, "label")
            for s in scans
        ),
        scores=tuple(s.score_kind for s in scans),
        id_col=join,
    )
