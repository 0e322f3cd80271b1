"""The one ranking rule for class scores: best first, the lowest class index first on ties.

Every part of graceful that turns scores into ranked classes goes through this module: the
metrics (:mod:`graceful.metrics`), the prediction-file reader
(:mod:`graceful.io.predictions`) and the losses' "old model right" test
(:mod:`graceful.losses`). The rule:

    class ``a`` ranks before class ``b`` when ``score[a] > score[b]``, or when
    ``score[a] == score[b]`` and ``a < b``.

So the top-1 class is the first maximum, as :func:`torch.argmax` and :func:`numpy.argmax`
return it, and a top-k list is what a stable descending sort gives. ``-0.0`` and ``0.0``
are equal scores. Scores must not be NaN (the metrics and the reader refuse them).

There are two faces: :func:`rank` and :func:`in_top_k` for ``(N, C)`` tensors (any device,
no device-to-host synchronisation), and :func:`top1_columns` and :func:`rank_columns`
for the ``(C, B)`` NumPy matrices the streaming reader builds, one column per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the torch face imports torch when called; the NumPy face never does
    import torch

__all__ = ["in_top_k", "rank", "rank_columns", "top1_columns"]

_IntArray = np.ndarray[Any, np.dtype[np.int64]]

#: Up to this many classes a full stable sort is the fastest exact top-k (torch, CPU).
_TORCH_SORT_MAX_CLASSES = 32
#: The same for NumPy's stable argsort along the class axis of a ``(C, B)`` matrix.
_NUMPY_SORT_MAX_CLASSES = 64
#: Up to this many classes the NumPy top-1 packs the tied maxima into a bit mask.
_BIT_TRICK_MAX_CLASSES = 16


def rank(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` best classes of each row of ``(N, C)`` scores, best first, ties to the lower index.

    Args:
        scores: ``(N, C)`` floating scores (logits or probabilities), not NaN.
        k: how many classes to keep, ``1 <= k <= C``.

    Returns:
        ``(N, k)`` int64 class indices on the device of ``scores``.

    The result equals ``torch.sort(scores, dim=1, descending=True, stable=True).indices[:,
    :k]``; ``k == 1`` is :func:`torch.argmax`. Above a few dozen classes a full sort is
    slow, so the k-th best score is found with :func:`torch.topk` (exact on values) and
    the classes that reach it are chosen by the rule, with no host synchronisation.

    Example:
        >>> import torch
        >>> rank(torch.tensor([[0.2, 0.5, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0]]), 2).tolist()
        [[1, 2], [0, 1]]
    """
    import torch

    if k == 1:
        return scores.argmax(dim=1, keepdim=True)
    n_classes = scores.shape[1]
    if n_classes <= _TORCH_SORT_MAX_CLASSES or 4 * k >= n_classes:
        return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    kth = scores.topk(k, dim=1).values[:, k - 1 : k]
    # Priority of each class: above the k-th score first, then tied with it; within each,
    # the lower index first. The k highest priorities are exactly the top-k set.
    reversed_index = torch.arange(n_classes, 0, -1, dtype=torch.int32, device=scores.device)
    priority = torch.where(
        scores > kth,
        reversed_index + 2 * n_classes,
        torch.where(scores == kth, reversed_index, 0),
    )
    chosen = priority.topk(k, dim=1).indices  # ascending index within each group
    # Order the k chosen classes by score; the stable sort keeps the lower index first.
    order = scores.gather(1, chosen).sort(dim=1, descending=True, stable=True).indices
    return chosen.gather(1, order)


def in_top_k(scores: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """Whether ``target`` is among the ``k`` best classes of each row (the same rule).

    Counts the classes ranked before the target (a higher score, or an equal score and a
    lower index): the target is in the top k when fewer than ``k`` are. This is faster
    than ranking and gives the same answer as ``(rank(scores, k) == target[:, None]).any(1)``.
    A target outside ``[0, C)`` is never in the top k.

    Args:
        scores: ``(N, C)`` floating scores, not NaN.
        target: ``(N,)`` integer class indices.
        k: ``k >= 1``.

    Returns:
        ``(N,)`` bool.

    Example:
        >>> import torch
        >>> s = torch.tensor([[0.2, 0.5, 0.5, 0.1], [0.2, 0.5, 0.5, 0.1]])
        >>> in_top_k(s, torch.tensor([2, 0]), 2).tolist()
        [True, False]
    """
    import torch

    if k == 1:  # argmax is in [0, C): a target outside never equals it
        return scores.argmax(dim=1) == target
    n_classes = scores.shape[1]
    valid = (target >= 0) & (target < n_classes)
    safe = target.clamp(0, n_classes - 1).unsqueeze(1)
    own = scores.gather(1, safe)
    classes = torch.arange(n_classes, device=scores.device)
    ahead = (scores > own) | ((scores == own) & (classes < safe))
    return (ahead.view(torch.uint8).sum(dim=1, dtype=torch.int32) < k) & valid


_LOWEST_BIT: dict[int, _IntArray] = {}


def _lowest_bit_table(n_classes: int) -> _IntArray:
    """Index of the lowest set bit of every ``n_classes``-bit integer (cached per size)."""
    table = _LOWEST_BIT.get(n_classes)
    if table is None:
        values = np.arange(1 << n_classes, dtype=np.int64)
        table = np.zeros(1 << n_classes, dtype=np.int64)
        for j in range(n_classes - 1, -1, -1):
            table[(values >> j) & 1 == 1] = j
        _LOWEST_BIT[n_classes] = table
    return table


def top1_columns(
    mat: np.ndarray[Any, Any] | Sequence[np.ndarray[Any, Any]],
    best: np.ndarray[Any, Any] | None = None,
) -> tuple[_IntArray, np.ndarray[Any, Any]]:
    """Best class and best score of each column of a ``(C, B)`` score matrix.

    ``mat`` may also be the ``C`` rows as separate ``(B,)`` arrays (a file's score columns,
    read in place), and ``best`` their maximum when the caller has it. The best class is
    the lowest index among the maxima, as :func:`numpy.argmax`. ``argmax`` along the first
    axis of a ``(C, B)`` matrix is slow in NumPy; for up to 16 classes the classes equal to
    the column maximum are packed into a bit mask, row by row, and the lowest set bit is
    looked up, which follows the same rule several times faster.

    Returns:
        ``(index, best)``: ``(B,)`` int64 class indices and ``(B,)`` scores.

    Example:
        >>> index, best = top1_columns(np.array([[0.5, 1.0], [0.5, 2.0], [0.1, 2.0]]))
        >>> index.tolist(), best.tolist()
        ([0, 1], [0.5, 2.0])
        >>> top1_columns([np.array([0.5, 1.0]), np.array([0.5, 2.0])])[0].tolist()
        [0, 1]
    """
    rows = list(mat)
    if best is None:
        best = rows[0].copy()
        for row in rows[1:]:
            np.maximum(best, row, out=best)
    n = best.shape[0]
    if len(rows) > _BIT_TRICK_MAX_CLASSES:
        if isinstance(mat, np.ndarray):
            return np.asarray(mat.argmax(axis=0), dtype=np.int64), best
        index = np.zeros(n, dtype=np.int64)
        for j in range(len(rows) - 1, -1, -1):  # from the last class down: the lowest wins
            np.copyto(index, j, where=rows[j] == best)
        return index, best
    hit = np.empty(n, dtype=bool)
    bit = np.empty(n, dtype=np.uint16)
    mask = np.zeros(n, dtype=np.uint16)
    for j, row in enumerate(rows):
        np.equal(row, best, out=hit)
        np.left_shift(hit.view(np.uint8), j, out=bit, dtype=np.uint16)
        mask |= bit
    found: _IntArray = _lowest_bit_table(len(rows))[mask]
    return found, best


def rank_columns(mat: np.ndarray[Any, Any], k: int) -> _IntArray:
    """The ``k`` best classes of each column of a ``(C, B)`` score matrix, as ``(B, k)``.

    The NumPy twin of :func:`rank` for the streaming reader: the same rule (a stable
    descending sort). Above 64 classes a partition finds the k best and only they are
    sorted; columns where a class left out ties with the k-th score are sorted in full.

    Example:
        >>> rank_columns(np.array([[0.2, 1.0], [0.5, 1.0], [0.5, 1.0]]), 2).tolist()
        [[1, 2], [0, 1]]
    """
    n_classes = mat.shape[0]
    if n_classes <= _NUMPY_SORT_MAX_CLASSES or 4 * k >= n_classes:
        order = np.argsort(-mat, axis=0, kind="stable")[:k]
        return np.ascontiguousarray(order.T, dtype=np.int64)
    # Partition out k classes per column, then sort them by (score, index). That is
    # exact unless a class left out ties with the k-th score; such columns (rare with real
    # scores; NumPy may look at the data, unlike the torch face) get the full stable sort.
    chosen = np.argpartition(-mat, k - 1, axis=0)[:k]
    scores = np.take_along_axis(mat, chosen, axis=0)
    order = np.lexsort((chosen, -scores), axis=0)
    ranked: _IntArray = np.ascontiguousarray(
        np.take_along_axis(chosen, order, axis=0).T, dtype=np.int64
    )
    reaching = mat >= scores.min(axis=0)  # every column has at least k such classes
    if np.count_nonzero(reaching) > k * mat.shape[1]:
        tied = np.flatnonzero(np.count_nonzero(reaching, axis=0) > k)
        ranked[tied] = np.argsort(-mat[:, tied], axis=0, kind="stable")[:k].T
    return ranked
