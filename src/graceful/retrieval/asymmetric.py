"""Asymmetric retrieval: a small (edge) model's queries against a large model's gallery.

Duggal et al. ("Compatibility-aware heterogeneous visual search", CVPR 2021): the gallery
is embedded once by a large model; a small model embeds queries on the device. It is
*compatible* when searching the large gallery beats the small model's own gallery::

    M(small, large) > M(small, small)

and the large model against its own gallery, M(large, large), is the paragon.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .compatibility import _measure_names
from .evaluation import ArrayLike, _check_top_k, retrieval_metrics

__all__ = ["asymmetric_metrics"]


def asymmetric_metrics(
    small: ArrayLike,
    large: ArrayLike,
    labels: ArrayLike,
    *,
    independent: ArrayLike | None = None,
    ids: ArrayLike | None = None,
    metric: str = "cosine",
    leave_one_out: bool = True,
    top_k: int | Sequence[int] = (1, 5),
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Retrieval of the four settings of heterogeneous search, as a table.

    Rows (query model, gallery model): ``(small, large)``, ``(small, small)``,
    ``(large, large)`` (the paragon), and with ``independent`` (a small model trained
    without the compatibility objective) ``(independent, large)`` and
    ``(independent, independent)``. Every model embeds the same items (same order,
    ``labels``, ``ids``); evaluation is :func:`~graceful.retrieval.retrieval_metrics`.

    Args:
        small: ``(N, D)`` the compatible small model's embeddings.
        large: ``(N, D)`` the large model's embeddings (the gallery).
        labels: ``(N,)`` item labels.
        independent: ``(N, D)`` an independently trained small model's, or ``None``.
        ids: optional item ids for leave-one-out by id.
        metric: ``"cosine"`` or ``"l2"``.
        leave_one_out: each query skips its own item.
        top_k: the ``k`` of the top-k columns.
        batch_size: queries ranked at a time.

    Returns:
        A :class:`pandas.DataFrame` with columns ``query``, ``gallery``, ``top<k>``...,
        ``map`` and ``compatible`` (for the rows of a small model against the large
        gallery: whether it beats that model's own gallery on the first measure; NA
        elsewhere).

    Example:
        >>> import numpy as np
        >>> large = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> labels = np.array([0, 0, 1, 1])
        >>> table = asymmetric_metrics(large + 0.05, large, labels, top_k=1)
        >>> table[["query", "gallery", "top1"]].values.tolist()
        [['small', 'large', 1.0], ['small', 'small', 1.0], ['large', 'large', 1.0]]
    """
    ks = _check_top_k(top_k, 2**62)  # the gallery size is checked by retrieval_metrics
    measures = _measure_names(ks)
    models = {"small": small, "large": large}
    pairs = [("small", "large"), ("small", "small"), ("large", "large")]
    if independent is not None:
        models["independent"] = independent
        pairs += [("independent", "large"), ("independent", "independent")]
    rows: list[dict[str, object]] = []
    first: dict[tuple[str, str], float] = {}
    for query, gallery in pairs:
        values = retrieval_metrics(
            models[query],
            labels,
            models[gallery],
            labels,
            query_ids=ids,
            gallery_ids=ids,
            leave_one_out=leave_one_out,
            top_k=ks,
            metric=metric,
            batch_size=batch_size,
        )
        rows.append({"query": query, "gallery": gallery, **{m: values[m] for m in measures}})
        first[query, gallery] = values[measures[0]]
    table = pd.DataFrame(rows, columns=["query", "gallery", *measures])
    table["compatible"] = [
        first[q, g] > first[q, q] if g == "large" and q != "large" else pd.NA for q, g in pairs
    ]
    return table
