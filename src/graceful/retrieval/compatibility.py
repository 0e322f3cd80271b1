"""Backward compatibility of embedding models: the empirical criterion and the update gain.

Following Shen et al. (BCT, CVPR 2020), write ``M(q, g)`` for a retrieval metric (e.g.
top-1 or mAP from :func:`~graceful.retrieval.retrieval_metrics`) with queries embedded by
model ``q`` and the gallery by model ``g``. A new model is *compatible* with an old one when
searching the old gallery with new queries beats the old model on its own gallery::

    M(new, old) > M(old, old)

and the *update gain* says how much of the improvement of an independently trained new
model ``new*`` (the paragon) the compatible model delivers without backfilling::

    gain = (M(new, old) - M(old, old)) / (M(new*, new*) - M(old, old))

:func:`cross_model_metrics` evaluates every (query model, gallery model) pair of a set of
model versions embedding the same items; :func:`cross_model_matrix` shows one measure of
it as a square table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from graceful.errors import InputError, UndefinedMetricWarning

from .evaluation import (
    ArrayLike,
    _embeddings,
    _same_items,
)

__all__ = ["cross_model_matrix", "cross_model_metrics", "is_compatible", "update_gain"]


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"Expected argument `{name}` to be a real number, but got {value!r}")
    out = float(value)
    if math.isinf(out):
        raise InputError(f"Expected argument `{name}` to be finite or NaN, but got {out}")
    return out


def is_compatible(m_new_old: float, m_old_old: float) -> bool:
    """The empirical compatibility criterion ``M(new, old) > M(old, old)``.

    Args:
        m_new_old: metric of new-model queries against the old gallery.
        m_old_old: metric of the old model against its own gallery.

    Returns:
        True when the criterion holds. A NaN input gives False, with an
        :class:`~graceful.errors.UndefinedMetricWarning`.

    Example:
        >>> is_compatible(0.62, 0.60), is_compatible(0.55, 0.60)
        (True, False)
    """
    new_old, old_old = _real(m_new_old, "m_new_old"), _real(m_old_old, "m_old_old")
    if math.isnan(new_old) or math.isnan(old_old):
        warnings.warn(
            "compatibility is undefined for a NaN metric; returning False",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return False
    return new_old > old_old


def update_gain(m_new_old: float, m_old_old: float, m_newstar_newstar: float) -> float:
    """Share of the paragon's improvement a compatible model delivers without backfilling.

    Formula: ``(M(new, old) - M(old, old)) / (M(new*, new*) - M(old, old))``, where
    ``new*`` is the new model trained without the compatibility constraint.

    Args:
        m_new_old: metric of compatible-new queries against the old gallery.
        m_old_old: metric of the old model against its own gallery.
        m_newstar_newstar: metric of the paragon ``new*`` against its own gallery.

    Returns:
        The gain (1: as good as backfilling with the paragon; below 0: worse than the old
        model); NaN with an :class:`~graceful.errors.UndefinedMetricWarning` when the
        denominator is 0 or an input is NaN.

    Example:
        >>> round(update_gain(0.65, 0.60, 0.70), 6)
        0.5
    """
    new_old = _real(m_new_old, "m_new_old")
    old_old = _real(m_old_old, "m_old_old")
    paragon = _real(m_newstar_newstar, "m_newstar_newstar")
    den = paragon - old_old
    if math.isnan(new_old) or math.isnan(den) or den == 0:
        why = "an input is NaN" if math.isnan(new_old) or math.isnan(den) else "M(new*, new*)"
        if not (math.isnan(new_old) or math.isnan(den)):
            why += " - M(old, old) is 0"
        warnings.warn(
            f"update_gain is undefined ({why}); returning NaN",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return math.nan
    return (new_old - old_old) / den


def _measure_names(top_k: tuple[int, ...]) -> list[str]:
    return [f"top{k}" for k in top_k] + ["map"]


def cross_model_metrics(
    embeddings: Mapping[str, ArrayLike],
    labels: ArrayLike,
    *,
    ids: ArrayLike | None = None,
    metric: str = "cosine",
    leave_one_out: bool = True,
    top_k: int | Sequence[int] = (1, 5),
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Retrieval metrics of every (query model, gallery model) pair, as a long table.

    Each entry of ``embeddings`` holds one model version's embeddings of the same items
    (same order, hence the same ``labels`` and ``ids``). For each ordered pair the queries
    are the first model's embeddings and the gallery the second's, evaluated by
    :func:`~graceful.retrieval.retrieval_metrics` (leave-one-out by ``ids`` or by
    position). The diagonal holds each model against itself, ``M(old, old)``.

    Args:
        embeddings: model name -> ``(N, D)`` embeddings; dimensions may differ between
            models, and a pair with different dimensions gets NaN (one
            :class:`~graceful.errors.UndefinedMetricWarning` names the count).
        labels: ``(N,)`` labels of the items.
        ids: optional ``(N,)`` unique item ids (leave-one-out by id).
        metric: ``"cosine"`` or ``"l2"``.
        leave_one_out: each query skips its own item.
        top_k: the ``k`` of the top-k columns.
        batch_size: queries ranked at a time.

    Returns:
        A :class:`pandas.DataFrame` with one row per ordered pair, in the order of
        ``embeddings`` (query model outer), and columns ``query``, ``gallery``,
        ``top{k}`` for each ``k`` and ``map``.

    Example:
        >>> import numpy as np
        >>> old = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
        >>> new = np.array([[1.0, 0.1], [0.9, 0.1], [0.1, 1.0], [0.1, 0.9]])
        >>> cross_model_metrics({"old": old, "new": new}, [0, 0, 1, 1], top_k=1)
          query gallery  top1   map
        0   old     old   0.5  0.75
        1   old     new   1.0  1.00
        2   new     old   1.0  1.00
        3   new     new   1.0  1.00
    """
    if not isinstance(embeddings, Mapping) or len(embeddings) == 0:
        raise InputError(
            "Expected argument `embeddings` to be a non-empty mapping of model name to"
            f" embeddings, but got {type(embeddings).__name__} of length"
            f" {len(embeddings) if isinstance(embeddings, Mapping) else 'n/a'}"
        )
    tensors = {name: _embeddings(x, f"embeddings[{name!r}]") for name, x in embeddings.items()}
    sizes = {name: t.shape[0] for name, t in tensors.items()}
    first = next(iter(tensors))
    n = sizes[first]
    for name, size in sizes.items():
        if size != n:
            raise InputError(
                f"Expected argument `embeddings` to hold the same items for every model, but"
                f" {first!r} has {n} rows and {name!r} has {size}"
            )
    items = _same_items(labels, ids, n, "embeddings", leave_one_out, top_k, metric, batch_size)
    rows = []
    mismatched = 0
    for q_name, q in tensors.items():
        for g_name, g in tensors.items():
            if q.shape[1] != g.shape[1]:
                mismatched += 1
                values = dict.fromkeys(_measure_names(items.ks), math.nan)
            else:
                values = items.evaluate(q, g)
            rows.append({"query": q_name, "gallery": g_name, **values})
    items.warn_dropped()
    if mismatched:
        warnings.warn(
            f"{mismatched} model pairs have different embedding dimensions; their metrics are NaN",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return pd.DataFrame(rows, columns=["query", "gallery", *_measure_names(items.ks)])


def cross_model_matrix(
    embeddings: Mapping[str, ArrayLike],
    labels: ArrayLike,
    *,
    ids: ArrayLike | None = None,
    metric: str = "cosine",
    measure: str = "top1",
    leave_one_out: bool = True,
    top_k: int | Sequence[int] = (1, 5),
    batch_size: int = 1024,
) -> pd.DataFrame:
    """One retrieval measure of every (query model, gallery model) pair, as a square table.

    Entry ``[q, g]`` is ``M(q, g)``: queries embedded by model ``q`` searching a gallery
    embedded by model ``g`` (see :func:`cross_model_metrics`, which this pivots). A model
    ``new`` is compatible with ``old`` when ``M[new, old] > M[old, old]``.

    Args:
        embeddings: model name -> ``(N, D)`` embeddings of the same items.
        labels: ``(N,)`` labels of the items.
        ids: optional ``(N,)`` unique item ids (leave-one-out by id).
        metric: ``"cosine"`` or ``"l2"``.
        measure: ``"map"`` or ``"top{k}"`` (``k`` is added to ``top_k`` when missing).
        leave_one_out: each query skips its own item.
        top_k: the ``k`` evaluated (only ``measure`` is returned).
        batch_size: queries ranked at a time.

    Returns:
        A :class:`pandas.DataFrame` indexed by the query model (index name ``"query"``)
        with one column per gallery model (columns name ``"gallery"``), both in the order
        of ``embeddings``; NaN where the dimensions differ.

    Example:
        >>> import numpy as np
        >>> old = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
        >>> new = np.array([[1.0, 0.1], [0.9, 0.1], [0.1, 1.0], [0.1, 0.9]])
        >>> m = cross_model_matrix({"old": old, "new": new}, [0, 0, 1, 1], top_k=1)
        >>> float(m.loc["new", "old"]), float(m.loc["old", "old"])  # M(new, old) > M(old, old)
        (1.0, 0.5)
        >>> m.index.name, m.columns.name, m.columns.tolist()
        ('query', 'gallery', ['old', 'new'])
    """
    ks = (top_k,) if isinstance(top_k, int | np.integer) else tuple(top_k)
    if measure != "map":
        k_text = measure[3:] if isinstance(measure, str) and measure.startswith("top") else ""
        if not (k_text.isdigit() and int(k_text) >= 1 and k_text == str(int(k_text))):
            raise InputError(
                f"Expected argument `measure` to be 'map' or 'top<k>' (e.g. 'top1'), but got"
                f" {measure!r}"
            )
        if int(k_text) not in ks:
            ks = (*ks, int(k_text))
    long = cross_model_metrics(
        embeddings,
        labels,
        ids=ids,
        metric=metric,
        leave_one_out=leave_one_out,
        top_k=ks,
        batch_size=batch_size,
    )
    names = list(embeddings)
    values = long[measure].to_numpy(dtype=np.float64).reshape(len(names), len(names))
    return pd.DataFrame(
        values,
        index=pd.Index(names, name="query"),
        columns=pd.Index(names, name="gallery"),
    )
