"""The backfilling curve: retrieval quality while a gallery is re-embedded item by item.

After a compatible model update, queries are embedded by the new model at once while the
gallery still holds the old embeddings; items are then re-embedded (backfilled) in some
order. The curve (BCT, Shen et al. 2020; FastFill, Jaeckle et al. ICLR 2023) gives a
retrieval metric at each backfilled fraction ``f``: the first ``round(f * N)`` items of
the order carry their new embedding, the rest their old one. At ``f = 0`` it is
``M(new, old)``, at ``f = 1`` it is ``M(new, new)``; :func:`curve_auc` summarises it
(higher is better: a good order reaches the new model's quality early).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from graceful.errors import InputError, UndefinedMetricWarning

from .evaluation import (
    ArrayLike,
    _embeddings,
    _same_items,
    _to_numpy,
)

__all__ = ["DEFAULT_FRACTIONS", "backfill_curve", "curve_auc"]

DEFAULT_FRACTIONS = tuple(i / 10 for i in range(11))
"""0.0, 0.1, ..., 1.0."""


def _fractions(fractions: ArrayLike | None) -> list[float]:
    if fractions is None:
        return list(DEFAULT_FRACTIONS)
    arr = _to_numpy(fractions, "fractions")
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iuf":
        raise InputError(
            "Expected argument `fractions` to be a non-empty 1-D sequence of numbers, but got"
            f" shape {arr.shape} and dtype {arr.dtype}"
        )
    values = arr.astype(np.float64)
    bad = ~((values >= 0) & (values <= 1))
    if bad.any():
        raise InputError(
            f"Expected argument `fractions` to lie in [0, 1], but got {float(values[bad][0])!r}"
        )
    return [float(v) for v in values]


def _order(order: ArrayLike, n: int) -> np.ndarray:
    arr = _to_numpy(order, "order")
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InputError(
            "Expected argument `order` to be a 1-D array of gallery positions (integers),"
            f" but got shape {arr.shape} and dtype {arr.dtype}"
        )
    if arr.shape[0] != n or not np.array_equal(np.sort(arr), np.arange(n)):
        raise InputError(
            f"Expected argument `order` to be a permutation of the {n} gallery positions"
            f" 0..{n - 1}, but got {arr.shape[0]} values"
            + ("" if arr.shape[0] != n else " with repeats or out-of-range positions")
        )
    return arr.astype(np.int64)


def backfill_curve(
    query_embeddings: ArrayLike,
    gallery_old: ArrayLike,
    gallery_new: ArrayLike,
    labels: ArrayLike,
    order: ArrayLike,
    *,
    fractions: ArrayLike | None = None,
    ids: ArrayLike | None = None,
    leave_one_out: bool = True,
    metric: str = "cosine",
    top_k: int | Sequence[int] = (1, 5),
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Retrieval metrics of new-model queries while the gallery is backfilled in ``order``.

    At fraction ``f`` the gallery row of item ``i`` is ``gallery_new[i]`` if ``i`` is
    among the first ``round(f * N)`` entries of ``order`` (Python's ``round``: halves go
    to the even count), else ``gallery_old[i]``, and::

        row(f) = retrieval_metrics(query_embeddings, labels, gallery(f), labels, ...)

    Queries and gallery are the same ``N`` items (the BCT protocol), so leave-one-out
    skips each query's own item, by ``ids`` or by position.

    Args:
        query_embeddings: ``(N, D)`` new-model embeddings of the items (the queries).
        gallery_old: ``(N, D)`` old-model embeddings of the same items.
        gallery_new: ``(N, D)`` new-model embeddings of the same items (often
            ``query_embeddings`` itself).
        labels: ``(N,)`` labels of the items.
        order: a permutation of ``0..N-1``: the gallery positions in backfill order.
        fractions: fractions in ``[0, 1]`` to evaluate, in the order given; default
            ``0.0, 0.1, ..., 1.0``.
        ids: optional ``(N,)`` unique item ids (leave-one-out by id).
        leave_one_out: each query skips its own item.
        metric: ``"cosine"`` or ``"l2"``.
        top_k: the ``k`` of the top-k columns.
        batch_size: queries ranked at a time.

    Returns:
        A :class:`pandas.DataFrame` with one row per fraction and columns ``fraction``,
        ``top{k}`` for each ``k`` and ``map``.

    Example:
        >>> import numpy as np
        >>> old = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
        >>> new = np.array([[1.0, 0.1], [0.9, 0.1], [0.1, 1.0], [0.1, 0.9]])
        >>> backfill_curve(new, old, new, [0, 0, 1, 1], [0, 1, 2, 3],
        ...                fractions=[0, 0.5, 1], top_k=1)
           fraction  top1  map
        0       0.0   1.0  1.0
        1       0.5   1.0  1.0
        2       1.0   1.0  1.0
    """
    queries = _embeddings(query_embeddings, "query_embeddings")
    old = _embeddings(gallery_old, "gallery_old")
    new = _embeddings(gallery_new, "gallery_new")
    n = queries.shape[0]
    for name, t in (("gallery_old", old), ("gallery_new", new)):
        if t.shape != queries.shape:
            raise InputError(
                f"Expected argument `{name}` to have the shape of `query_embeddings`"
                f" {tuple(queries.shape)} (same items, compatible dimension), but got"
                f" {tuple(t.shape)}"
            )
    items = _same_items(
        labels, ids, n, "query_embeddings", leave_one_out, top_k, metric, batch_size
    )
    positions = _order(order, n)
    steps = _fractions(fractions)
    dtype = torch.promote_types(old.dtype, new.dtype)
    old, new = old.to(dtype), new.to(device=old.device, dtype=dtype)
    rows = []
    for f in steps:
        m = round(f * n)
        gallery = old.clone()
        idx = torch.from_numpy(positions[:m]).to(gallery.device)
        gallery[idx] = new[idx]
        rows.append({"fraction": f, **items.evaluate(queries, gallery)})
    items.warn_dropped()
    return pd.DataFrame(rows, columns=["fraction", *(f"top{k}" for k in items.ks), "map"])


def curve_auc(fractions: ArrayLike, values: ArrayLike) -> float:
    """Normalised area under a curve such as :func:`backfill_curve`'s (trapezoidal rule).

    Formula: ``sum_i (f[i+1] - f[i]) * (v[i] + v[i+1]) / 2 / (f[-1] - f[0])``, so a
    flat curve at ``c`` gives ``c``.

    Args:
        fractions: increasing (non-decreasing) x values, at least two distinct ones.
        values: the curve's values at ``fractions``.

    Returns:
        The mean height of the curve; NaN with an
        :class:`~graceful.errors.UndefinedMetricWarning` when a value is NaN.

    Example:
        >>> curve_auc([0.0, 0.5, 1.0], [0.6, 0.6, 0.6])
        0.6
        >>> curve_auc([0.0, 1.0], [0.2, 0.6])
        0.4
    """
    x = _to_numpy(fractions, "fractions")
    y = _to_numpy(values, "values")
    for arr, name in ((x, "fractions"), (y, "values")):
        if arr.ndim != 1 or arr.dtype.kind not in "biuf":
            raise InputError(
                f"Expected argument `{name}` to be a 1-D sequence of numbers, but got shape"
                f" {arr.shape} and dtype {arr.dtype}"
            )
    if x.shape != y.shape:
        raise InputError(
            f"Expected arguments `fractions` and `values` to have the same length, but got"
            f" {x.shape[0]} and {y.shape[0]}"
        )
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    if not np.isfinite(xf).all():
        raise InputError("Expected argument `fractions` to be finite, but got NaN or inf")
    if np.any(np.diff(xf) < 0):
        raise InputError(f"Expected argument `fractions` to be sorted, but got {xf.tolist()}")
    if xf.size < 2 or xf[-1] == xf[0]:
        raise InputError(
            "Expected argument `fractions` to hold at least two distinct values, but got"
            f" {xf.tolist()}"
        )
    if np.isnan(yf).any():
        warnings.warn(
            "curve_auc is undefined (a value is NaN); returning NaN",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return math.nan
    area = float(np.sum(np.diff(xf) * (yf[1:] + yf[:-1]) / 2))
    return area / float(xf[-1] - xf[0])
