"""Exact retrieval metrics (CMC top-k and mAP) between a query set and a gallery.

The queries may be embedded by one model and the gallery by another (the cross-model
test of backward compatibility, Shen et al., "Towards Backward-Compatible Representation
Learning", CVPR 2020). For every query the gallery is ranked by similarity:

* ``metric="cosine"``: both sides are L2-normalised, the score is the inner product
  ``<q / |q|, g / |g|>``, larger is closer (an all-zero vector scores 0 with everything);
* ``metric="l2"``: ranked by the squared euclidean distance ``|q - g|^2``, smaller is
  closer (computed as the score ``2 <q, g> - |g|^2``, which orders the gallery the same).

Ties (equal scores) are broken by gallery position: the earlier row ranks first, as a
stable sort would place it. A gallery item is *relevant* to a query when it has the
query's label. With ``R`` relevant items and ``rank(r)`` the 1-based rank of relevant
item ``r`` among the ranked gallery:

* CMC top-k: ``1`` if at least one relevant item ranks within the first ``k``, else ``0``;
* average precision: ``AP = (1 / R) * sum over relevant r of P@rank(r)``, where
  ``P@n = (relevant items ranked <= n) / n``;

each averaged over the queries (mAP for AP). Leave-one-out removes a query's own item from
its gallery first. Queries with no relevant gallery item (``R = 0``) are left out of every
metric, with one :class:`~graceful.errors.UndefinedMetricWarning`.

The computation is exact: scores are one matrix product per batch of queries (torch, on
the inputs' device, in their floating dtype but at least float32), and the ranks are
counted from sorted scores on the CPU (numpy's vectorised sort, many times faster than a
full argsort); per-query values are float64 and summed once at the end, so the result does
not depend on ``batch_size`` (except where scores that are equal in exact arithmetic but
not in floating point, such as the cosines of parallel vectors of different lengths, round
differently in the matrix-product kernels of different batch shapes). Ties are exact
equalities of the computed scores. Memory is a few arrays of ``batch_size x len(gallery)``;
13,000 queries against 13,000 items (dimension 128, float32) take 3 to 5 seconds on two
CPU cores.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import torch

from graceful._validation import check_choice, check_int
from graceful.errors import InputError, UndefinedMetricWarning

__all__ = ["METRICS", "ArrayLike", "retrieval_metrics"]

ArrayLike: TypeAlias = Any
"""numpy array or torch tensor (lists and pandas objects are accepted too)."""

METRICS = ("cosine", "l2")
"""The similarity measures :func:`retrieval_metrics` ranks by."""

_IntArray: TypeAlias = npt.NDArray[np.int64]
_FloatArray: TypeAlias = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- validation


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    to_numpy = getattr(x, "to_numpy", None)  # pandas
    if callable(to_numpy):
        return np.asarray(to_numpy())
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise InputError(f"Expected argument `{name}` to be an array, but {exc}") from None


def _embeddings(x: ArrayLike, name: str) -> torch.Tensor:
    """``x`` as a 2-D finite floating tensor (integers become float64; no copy if possible)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = _to_numpy(x, name)
        if arr.dtype.kind not in "biuf":
            raise InputError(
                f"Expected argument `{name}` to hold real numbers, but got dtype {arr.dtype}"
            )
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    if t.is_complex():
        raise InputError(f"Expected argument `{name}` to hold real numbers, but got {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim != 2:
        raise InputError(
            f"Expected argument `{name}` to be 2-D (items, dim), but got shape {tuple(t.shape)}"
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise InputError(
            f"Expected argument `{name}` to hold at least one item and one dimension,"
            f" but got shape {tuple(t.shape)}"
        )
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        row = int(torch.nonzero(~finite)[0, 0])
        raise InputError(f"Expected argument `{name}` to be finite, but row {row} is NaN or inf")
    return t


def _labels_1d(x: ArrayLike, name: str, n: int, rows_of: str) -> np.ndarray:
    arr = _to_numpy(x, name)
    if arr.ndim != 1:
        raise InputError(f"Expected argument `{name}` to be 1-D, but got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InputError(
            f"Expected argument `{name}` to have one entry per row of `{rows_of}` ({n}),"
            f" but got {arr.shape[0]}"
        )
    return arr


def _joint_codes(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> tuple[_IntArray, ...]:
    """Integer codes of two label (or id) arrays, equal codes for equal values."""
    for arr, name in zip((a, b), names, strict=True):
        if arr.dtype.kind not in "biuUS":
            raise InputError(
                f"Expected argument `{name}` to hold integers or strings, but got dtype {arr.dtype}"
            )
    if (a.dtype.kind in "US") != (b.dtype.kind in "US"):
        raise InputError(
            f"Expected arguments `{names[0]}` and `{names[1]}` to be both numbers or both"
            f" strings, but got dtypes {a.dtype} and {b.dtype}"
        )
    _, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    inverse = inverse.astype(np.int64).reshape(-1)
    return inverse[: a.shape[0]], inverse[a.shape[0] :]


def _check_metric(metric: str) -> None:
    check_choice("metric", metric, METRICS)


def _check_top_k(top_k: int | Sequence[int], n_gallery: int) -> tuple[int, ...]:
    values = (top_k,) if isinstance(top_k, int | np.integer) else tuple(top_k)
    if not values:
        raise InputError("Expected argument `top_k` to hold at least one k, but got none")
    for k in values:
        check_int("top_k", k, low=1)
        if k > n_gallery:
            raise InputError(
                f"Expected argument `top_k` to be at most the gallery size ({n_gallery}),"
                f" but got {int(k)}"
            )
    if len(set(values)) != len(values):
        raise InputError(f"Expected argument `top_k` to hold distinct values, but got {values}")
    return tuple(int(k) for k in values)


def _exclusion(
    query_ids: ArrayLike | None,
    gallery_ids: ArrayLike | None,
    leave_one_out: bool,
    n_query: int,
    n_gallery: int,
    names: tuple[str, str, str, str] = (
        "query_ids",
        "gallery_ids",
        "query_embeddings",
        "gallery_embeddings",
    ),
) -> _IntArray | None:
    """Gallery position each query must not retrieve (-1: none), or None if none at all.

    ``names``: the two id arguments and the two embedding arguments, for messages.
    """
    if not isinstance(leave_one_out, bool | np.bool_):
        raise InputError(
            f"Expected argument `leave_one_out` to be a bool, but got {leave_one_out!r}"
        )
    if (query_ids is None) != (gallery_ids is None):
        missing = "gallery_ids" if gallery_ids is None else "query_ids"
        raise InputError(
            f"Expected argument `{missing}` to be given with"
            f" `{'query_ids' if missing == 'gallery_ids' else 'gallery_ids'}`, but got None"
        )
    if query_ids is not None and gallery_ids is not None:
        q = _labels_1d(query_ids, names[0], n_query, names[2])
        g = _labels_1d(gallery_ids, names[1], n_gallery, names[3])
        q_codes, g_codes = _joint_codes(q, g, (names[0], names[1]))
        counts = np.bincount(g_codes)
        if counts.size and counts.max() > 1:
            dup = g[int(np.flatnonzero(counts[g_codes] > 1)[0])].item()
            raise InputError(f"Expected argument `{names[1]}` to be unique, but {dup!r} repeats")
        if not leave_one_out:
            return None
        size = int(max(q_codes.max(), g_codes.max())) + 1
        position = np.full(size, -1, dtype=np.int64)
        position[g_codes] = np.arange(n_gallery, dtype=np.int64)
        return position[q_codes]
    if not leave_one_out:
        return None
    if n_query != n_gallery:
        raise InputError(
            "Expected argument `leave_one_out` to be False, or `query_ids` and `gallery_ids`"
            " to be given, when the query and gallery sets differ in size, but got"
            f" {n_query} queries and {n_gallery} gallery items"
        )
    return np.arange(n_query, dtype=np.int64)


# --------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class _PerQuery:
    """Per-query results; ``first_rank`` is 0 and ``average_precision`` NaN when R = 0."""

    first_rank: _IntArray
    average_precision: _FloatArray
    n_relevant: _IntArray


def _untie_mixed(
    ranks: _IntArray,
    values: np.ndarray,
    right_all: _IntArray,
    right_rel: _IntArray,
    mixed: npt.NDArray[np.bool_],
    scores_row: np.ndarray,
    relevant_row: np.ndarray,
) -> None:
    """Set, in place, the ranks of relevant items that tie with irrelevant ones.

    ``ranks[p]`` belongs to ``values[p]`` (ascending), whose rank among the relevant items
    is ``len(values) - p``. A tie group is ordered by gallery position, so its ``j``-th
    relevant member (by position) ranks right after the members that precede it.
    """
    n = scores_row.shape[0]
    for hi in np.unique(right_rel[mixed]):  # one block of equal values per mixed value
        v = values[hi - 1]
        members = np.flatnonzero(scores_row == v)  # ascending gallery positions
        before = np.flatnonzero(relevant_row[members])  # members ranked ahead of each
        greater_all = n - int(right_all[hi - 1])
        ranks[hi - 1 - np.arange(before.size)] = greater_all + 1 + before


def _rank_batch(
    scores: np.ndarray, relevant: np.ndarray
) -> tuple[_IntArray, _FloatArray, _IntArray]:
    """First relevant rank, AP and R of each row; larger score ranks first.

    ``scores`` holds -inf at excluded items and ``relevant`` is False there. With the
    relevant scores sorted, relevant value ``v`` ranks at ``#(all > v) + (its rank among
    relevant) - #(relevant > v)``: exact when ``v`` ties with no irrelevant item (equal
    relevant items are interchangeable); the few mixed tie groups are ordered by position.
    """
    n_rows, n = scores.shape
    n_relevant = relevant.sum(axis=1).astype(np.int64)
    first_rank = np.zeros(n_rows, dtype=np.int64)
    average_precision = np.full(n_rows, math.nan, dtype=np.float64)
    all_sorted = np.sort(scores, axis=1)
    rel_sorted = np.sort(np.where(relevant, scores, -np.inf), axis=1)
    has_tie = (all_sorted[:, 1:] == all_sorted[:, :-1]).any(axis=1)
    for i in range(n_rows):
        r = int(n_relevant[i])
        if r == 0:
            continue
        row = all_sorted[i]
        values = rel_sorted[i, n - r :]  # relevant scores, ascending
        right_all = np.searchsorted(row, values, side="right")
        right_rel = np.searchsorted(values, values, side="right")
        rel_rank = r - np.arange(r, dtype=np.int64)  # rank among relevant items
        ranks = (n - right_all) + rel_rank - (r - right_rel)
        if has_tie[i]:
            mixed = right_all - np.searchsorted(row, values, side="left") != (
                right_rel - np.searchsorted(values, values, side="left")
            )
            if mixed.any():
                _untie_mixed(ranks, values, right_all, right_rel, mixed, scores[i], relevant[i])
        best_first = ranks[::-1]
        precision = np.arange(1, r + 1, dtype=np.int64) / best_first
        first_rank[i] = best_first[0]
        average_precision[i] = float(precision.sum()) / r
    return first_rank, average_precision, n_relevant


def _per_query(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    query_codes: _IntArray,
    gallery_codes: _IntArray,
    exclude: _IntArray | None,
    metric: str,
    batch_size: int,
) -> _PerQuery:
    """Rank the gallery for every query, ``batch_size`` queries at a time."""
    device = queries.device if queries.device == gallery.device else torch.device("cpu")
    dtype = torch.promote_types(torch.promote_types(queries.dtype, gallery.dtype), torch.float32)
    q = queries.to(device=device, dtype=torch.float64)
    g = gallery.to(device=device, dtype=torch.float64)
    if metric == "cosine":  # normalised in float64, so huge values cannot overflow
        q = torch.nn.functional.normalize(q, dim=1)
        g = torch.nn.functional.normalize(g, dim=1)
        offset = None
    else:
        offset = (g * g).sum(dim=1).to(dtype)
    q, g = q.to(dtype), g.to(dtype)
    n_query = q.shape[0]
    first = np.zeros(n_query, dtype=np.int64)
    ap = np.full(n_query, math.nan, dtype=np.float64)
    n_rel = np.zeros(n_query, dtype=np.int64)
    for start in range(0, n_query, batch_size):
        stop = min(start + batch_size, n_query)
        s_t = q[start:stop] @ g.T
        if offset is not None:
            s_t = 2 * s_t - offset
        scores = s_t.cpu().numpy()
        if not np.isfinite(scores).all():
            raise InputError(
                "Expected arguments `query_embeddings` and `gallery_embeddings` to give finite"
                " scores, but the l2 distances overflow; rescale the embeddings"
            )
        relevant = gallery_codes[None, :] == query_codes[start:stop, None]
        if exclude is not None:
            cols = exclude[start:stop]
            rows = np.flatnonzero(cols >= 0)
            scores[rows, cols[rows]] = -np.inf
            relevant[rows, cols[rows]] = False
        first[start:stop], ap[start:stop], n_rel[start:stop] = _rank_batch(scores, relevant)
    return _PerQuery(first_rank=first, average_precision=ap, n_relevant=n_rel)


def _summarise(per_query: _PerQuery, top_k: tuple[int, ...]) -> tuple[dict[str, float], int]:
    """Metric dict over the queries with R > 0, and how many queries were left out."""
    kept = per_query.n_relevant > 0
    n_kept = int(kept.sum())
    dropped = int(kept.size - n_kept)
    out: dict[str, float] = {}
    for k in top_k:
        hits = (per_query.first_rank[kept] <= k).astype(np.float64)
        out[f"top{k}"] = float(hits.sum()) / n_kept if n_kept else math.nan
    ap = per_query.average_precision[kept]
    out["map"] = float(ap.sum()) / n_kept if n_kept else math.nan
    return out, dropped


def _warn_dropped(dropped: int, total: int, stacklevel: int = 3) -> None:
    if dropped == 0:
        return
    tail = "every metric is NaN" if dropped == total else "they are left out of every metric"
    warnings.warn(
        f"{dropped} of {total} queries have no relevant gallery item (same label, after"
        f" leave-one-out); {tail}",
        UndefinedMetricWarning,
        stacklevel=stacklevel,
    )


@dataclass(frozen=True)
class _Prepared:
    queries: torch.Tensor
    gallery: torch.Tensor
    query_codes: _IntArray
    gallery_codes: _IntArray
    exclude: _IntArray | None
    top_k: tuple[int, ...]


@dataclass
class _SameItems:
    """Queries and gallery that are the same ``n`` items, embedded by one or two models.

    Holds what every pair of models shares (label codes, leave-one-out exclusion, ks, the
    metric), so a caller only passes the embeddings of each pair to :meth:`evaluate`.
    """

    n: int
    codes: _IntArray
    exclude: _IntArray | None
    ks: tuple[int, ...]
    metric: str
    batch_size: int
    dropped: int = 0

    def evaluate(self, queries: torch.Tensor, gallery: torch.Tensor) -> dict[str, float]:
        """CMC top-k and mAP of ``queries`` against ``gallery`` (same items, same order)."""
        prepared = _Prepared(queries, gallery, self.codes, self.codes, self.exclude, self.ks)
        values, self.dropped = _evaluate(prepared, self.metric, self.batch_size)
        return values

    def warn_dropped(self) -> None:
        """Warn about queries without a relevant item (the same for every pair)."""
        _warn_dropped(self.dropped, self.n, stacklevel=4)


def _same_items(
    labels: ArrayLike,
    ids: ArrayLike | None,
    n: int,
    name: str,
    leave_one_out: bool,
    top_k: int | Sequence[int],
    metric: str,
    batch_size: int,
) -> _SameItems:
    """Check the options of an evaluation over the same ``n`` items and prepare it.

    ``name`` is the embedding argument the ``labels`` and ``ids`` belong to, for messages.
    """
    _check_metric(metric)
    label_arr = _labels_1d(labels, "labels", n, name)
    codes, _ = _joint_codes(label_arr, label_arr, ("labels", "labels"))
    exclude = _exclusion(ids, ids, leave_one_out, n, n, ("ids", "ids", name, name))
    ks = _check_top_k(top_k, n)
    return _SameItems(n, codes, exclude, ks, metric, check_int("batch_size", batch_size, low=1))


def _prepare(
    query_embeddings: ArrayLike,
    query_labels: ArrayLike,
    gallery_embeddings: ArrayLike,
    gallery_labels: ArrayLike,
    *,
    query_ids: ArrayLike | None,
    gallery_ids: ArrayLike | None,
    leave_one_out: bool,
    top_k: int | Sequence[int],
    metric: str,
    batch_size: int,
) -> _Prepared:
    """Validate every argument of :func:`retrieval_metrics`."""
    _check_metric(metric)
    check_int("batch_size", batch_size, low=1)
    queries = _embeddings(query_embeddings, "query_embeddings")
    gallery = _embeddings(gallery_embeddings, "gallery_embeddings")
    if queries.shape[1] != gallery.shape[1]:
        raise InputError(
            "Expected arguments `query_embeddings` and `gallery_embeddings` to have the same"
            f" dimension, but got shapes {tuple(queries.shape)} and {tuple(gallery.shape)}"
        )
    q_labels = _labels_1d(query_labels, "query_labels", queries.shape[0], "query_embeddings")
    g_labels = _labels_1d(gallery_labels, "gallery_labels", gallery.shape[0], "gallery_embeddings")
    q_codes, g_codes = _joint_codes(q_labels, g_labels, ("query_labels", "gallery_labels"))
    ks = _check_top_k(top_k, gallery.shape[0])
    exclude = _exclusion(query_ids, gallery_ids, leave_one_out, queries.shape[0], gallery.shape[0])
    return _Prepared(queries, gallery, q_codes, g_codes, exclude, ks)


def _evaluate(prepared: _Prepared, metric: str, batch_size: int) -> tuple[dict[str, float], int]:
    per_query = _per_query(
        prepared.queries,
        prepared.gallery,
        prepared.query_codes,
        prepared.gallery_codes,
        prepared.exclude,
        metric,
        batch_size,
    )
    return _summarise(per_query, prepared.top_k)


def retrieval_metrics(
    query_embeddings: ArrayLike,
    query_labels: ArrayLike,
    gallery_embeddings: ArrayLike,
    gallery_labels: ArrayLike,
    *,
    query_ids: ArrayLike | None = None,
    gallery_ids: ArrayLike | None = None,
    leave_one_out: bool = True,
    top_k: int | Sequence[int] = (1, 5),
    metric: str = "cosine",
    batch_size: int = 1024,
) -> dict[str, float]:
    """CMC top-k accuracy and mAP of ranking a gallery for each query.

    With ``R`` relevant (same-label) gallery items for a query and ``rank(r)`` the 1-based
    rank of relevant item ``r``::

        top{k} = mean over queries of [min_r rank(r) <= k]
        map    = mean over queries of (1 / R) * sum_r (#relevant ranked <= rank(r)) / rank(r)

    Ties are broken by gallery position (the earlier row ranks first).

    Args:
        query_embeddings: ``(Nq, D)`` queries (e.g. the new model's embeddings).
        query_labels: ``(Nq,)`` integer (or string) labels of the queries.
        gallery_embeddings: ``(Ng, D)`` gallery (e.g. the old model's embeddings).
        gallery_labels: ``(Ng,)`` labels of the gallery items.
        query_ids: ``(Nq,)`` item ids of the queries; give with ``gallery_ids``.
        gallery_ids: ``(Ng,)`` unique item ids of the gallery. With ids and
            ``leave_one_out``, each query skips the gallery item with its own id (the sets
            may overlap only partly).
        leave_one_out: each query skips its own item: by id when ids are given, else the
            gallery row at the query's position (the sets must then have the same size).
            ``False``: nothing is skipped (ids, if given, are only validated).
        top_k: one ``k`` or several distinct ones, each between 1 and ``Ng``.
        metric: ``"cosine"`` (larger inner product of normalised vectors is closer) or
            ``"l2"`` (smaller squared euclidean distance is closer).
        batch_size: queries ranked at a time (memory is a few ``batch_size x Ng`` arrays);
            the result does not depend on it (up to the rounding noted in the module).

    Returns:
        ``{"top1": ..., "top5": ..., "map": ...}``: one ``top{k}`` per ``k``, in the order
        given, then ``"map"``. Queries without any relevant gallery item are left out, with
        one :class:`~graceful.errors.UndefinedMetricWarning`; if none is left, all are NaN.

    Raises:
        InputError: for a bad argument; the message names it.

    Example:
        >>> import numpy as np
        >>> emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
        >>> labels = np.array([0, 0, 1, 1])
        >>> retrieval_metrics(emb, labels, emb, labels, top_k=(1, 2))
        {'top1': 0.5, 'top2': 1.0, 'map': 0.75}
    """
    prepared = _prepare(
        query_embeddings,
        query_labels,
        gallery_embeddings,
        gallery_labels,
        query_ids=query_ids,
        gallery_ids=gallery_ids,
        leave_one_out=leave_one_out,
        top_k=top_k,
        metric=metric,
        batch_size=batch_size,
    )
    values, dropped = _evaluate(prepared, metric, batch_size)
    _warn_dropped(dropped, prepared.queries.shape[0])
    return values
