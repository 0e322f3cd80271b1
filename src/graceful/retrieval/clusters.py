r"""Clusters that survive a model update: old centroids serving new-model vectors.

A gallery's clusters (k-means centroids, or identity clusters from labels) are made with
the old model. After the update, new items are embedded by the new model; re-clustering
everything with it changes every cluster id downstream. Instead, a new vector is assigned
to the *old* centroids directly (when the new model was trained compatible, its vectors
live in the old space) or after a query adapter maps it there
(:func:`~graceful.retrieval.fit_query_adapter`). How well that works is measured against
the old model's own assignment of the same items:

* :func:`fit_centroids`: k-means centroids (faiss; spherical under cosine);
* :func:`assign_clusters`: the nearest centroid of each vector, optionally through an
  adapter;
* :func:`cluster_agreement`: adjusted Rand index and normalised mutual information
  (arithmetic mean of the entropies, as scikit-learn's default) between two assignments,
  and the share of items that keep their cluster id (what downstream users of the ids
  see: ARI and NMI forgive a relabelling, a consumer of cluster ids does not);
* :func:`cluster_purity`: the share of items whose cluster's majority label is theirs.

Example:
    >>> import numpy as np
    >>> old_centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> new = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    >>> assign_clusters(new, old_centroids).tolist()
    [1, 0, 1]
    >>> cluster_agreement([1, 0, 1], [1, 0, 1])
    {'ari': 1.0, 'nmi': 1.0, 'same_id': 1.0}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from graceful._validation import check_bool, check_int, check_seed, check_vectors, fail
from graceful.errors import InputError

from .adapters import QueryAdapter, _unit

__all__ = ["assign_clusters", "cluster_agreement", "cluster_purity", "fit_centroids"]

_BATCH = 65_536  # rows scored against the centroids at a time (bounded memory)


def fit_centroids(
    x: npt.ArrayLike,
    k: int,
    *,
    normalize: bool = True,
    seed: int = 0,
    niter: int = 25,
) -> npt.NDArray[np.float32]:
    """k-means centroids of ``x`` (faiss's ``Kmeans``; spherical when ``normalize``).

    Args:
        x: ``(n, d)`` finite vectors, ``n >= k``.
        k: the number of clusters.
        normalize: L2-normalise the vectors and keep the centroids on the unit sphere
            (cosine retrieval); ``False`` for plain L2 k-means.
        seed: faiss's seed (initial centroids).
        niter: Lloyd iterations.

    Returns:
        ``(k, d)`` float32 centroids.

    Raises:
        InputError: naming the argument: bad vectors, ``k`` outside ``[1, n]``.
        MissingExtraError: faiss is not installed (the ``gallery`` extra).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(5, 0.1, (20, 2)), rng.normal(-5, 0.1, (20, 2))])
        >>> c = fit_centroids(x, 2, normalize=False)
        >>> sorted(np.round(c[:, 0]).tolist())
        [-5.0, 5.0]
    """
    from graceful._extras import require

    (faiss,) = require("gallery", "graceful.retrieval.fit_centroids", ("faiss",))
    normalize = check_bool("normalize", normalize)
    v = check_vectors("x", x, nonzero=normalize)
    k = check_int("k", k, low=1, high=max(1, len(v)))
    niter = check_int("niter", niter, low=1)
    seed = check_seed("seed", seed)
    if normalize:
        v = _unit(v)
    v = np.ascontiguousarray(v, dtype=np.float32)
    kmeans: Any = faiss.Kmeans(
        v.shape[1],
        k,
        niter=niter,
        seed=seed,
        spherical=normalize,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=max(256, -(-len(v) // k)),
    )
    kmeans.train(v)
    centroids: npt.NDArray[np.float32] = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    return centroids


def assign_clusters(
    x: npt.ArrayLike,
    centroids: npt.ArrayLike,
    *,
    normalize: bool = True,
    adapter: QueryAdapter | None = None,
) -> npt.NDArray[np.int64]:
    """The index of each vector's nearest centroid (cosine when ``normalize``, else L2).

    Args:
        x: ``(n, d_x)`` vectors, of the model that made the centroids, of one trained
            compatible with it, or of one ``adapter`` maps into its space.
        centroids: ``(k, d)`` centroids, e.g. from :func:`fit_centroids` on old vectors.
        normalize: compare by cosine (the vectors and centroids are L2-normalised).
        adapter: a :class:`~graceful.retrieval.QueryAdapter` from ``x``'s space into the
            centroids' (``dim_in == d_x``, ``dim_out == d``), applied first.

    Returns:
        ``(n,)`` int64 cluster indices in ``[0, k)``; ties go to the lower index.

    Raises:
        InputError: naming the argument: non-finite or empty arrays, or dimensions that do
            not fit (the adapter's or the centroids').

    Example:
        >>> assign_clusters([[3.0, 0.1]], [[0.0, 0.0], [4.0, 0.0]], normalize=False).tolist()
        [1]
    """
    normalize = check_bool("normalize", normalize)
    c = check_vectors("centroids", centroids, nonzero=normalize)
    if len(c) == 0:
        raise fail("centroids", "at least one centroid", "0 rows")
    v = check_vectors("x", x, nonzero=normalize and adapter is None)
    if adapter is not None:
        if not isinstance(adapter, QueryAdapter):
            raise fail("adapter", "a QueryAdapter or None", adapter)
        if adapter.dim_out != c.shape[1]:
            raise InputError(
                f"Expected argument `adapter` to map into the centroids' dim {c.shape[1]}, "
                f"but it maps dim {adapter.dim_in} to dim {adapter.dim_out}"
            )
        v = adapter(v)
    elif v.shape[1] != c.shape[1]:
        raise InputError(
            f"Expected argument `x` to have the centroids' dim {c.shape[1]}, but got dim "
            f"{v.shape[1]} (pass the adapter that maps it into the centroids' space)"
        )
    if normalize:
        c = _unit(c)
    out = np.empty(len(v), dtype=np.int64)
    half_norms = 0.5 * np.einsum("ij,ij->i", c, c)
    for start in range(0, len(v), _BATCH):
        part = v[start : start + _BATCH]
        if normalize:
            part = _unit(part)
        # argmin ||x - c||^2 == argmax (x.c - ||c||^2 / 2); cosine: the norms are equal
        scores = part @ c.T - (0.0 if normalize else half_norms)
        out[start : start + len(part)] = np.argmax(scores, axis=1)
    return out


def _codes(name: str, value: object) -> npt.NDArray[np.int64]:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.size == 0:
        raise fail(name, "a non-empty 1-D array of cluster ids or labels", f"shape {arr.shape}")
    _, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64)


def _contingency(a: object, b: object, names: tuple[str, str]) -> npt.NDArray[np.int64]:
    ca, cb = _codes(names[0], a), _codes(names[1], b)
    if len(ca) != len(cb):
        raise InputError(
            f"Expected arguments `{names[0]}` and `{names[1]}` to have the same length, but "
            f"got {len(ca)} and {len(cb)}"
        )
    table = np.zeros((int(ca.max()) + 1, int(cb.max()) + 1), dtype=np.int64)
    np.add.at(table, (ca, cb), 1)
    return table


def _entropy(counts: npt.NDArray[np.int64]) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def cluster_agreement(reference: npt.ArrayLike, assigned: npt.ArrayLike) -> dict[str, float]:
    """Adjusted Rand index, normalised mutual information and same-id share of two assignments.

    For ``ari`` and ``nmi`` cluster ids are arbitrary labels: a relabelling scores 1.
    ``ari`` is 0 in expectation for unrelated assignments (it can be negative); ``nmi`` is
    the mutual information over the arithmetic mean of the two entropies (1.0 when both put
    everything in one cluster). ``same_id`` is the share of items given the same id by
    both (ids compared as strings), which only an assignment to the *same* centroids can
    keep: re-clustering from scratch scores about ``1 / k`` whatever its ARI.

    Args:
        reference: ``(n,)`` cluster ids, e.g. the old model's assignment.
        assigned: ``(n,)`` cluster ids of the same items, e.g. the new model's.

    Returns:
        ``{"ari": ..., "nmi": ..., "same_id": ...}``.

    Raises:
        InputError: empty or not 1-D, or of different lengths.

    Example:
        >>> cluster_agreement([0, 0, 1, 1], [5, 5, 7, 7])
        {'ari': 1.0, 'nmi': 1.0, 'same_id': 0.0}
        >>> round(cluster_agreement([0, 0, 1, 1], [0, 1, 0, 1])["ari"], 3)
        -0.5
    """
    table = _contingency(reference, assigned, ("reference", "assigned"))
    n = int(table.sum())
    pairs = float((table * (table - 1)).sum()) / 2.0
    rows, cols = table.sum(1), table.sum(0)
    row_pairs = float((rows * (rows - 1)).sum()) / 2.0
    col_pairs = float((cols * (cols - 1)).sum()) / 2.0
    total = n * (n - 1) / 2.0
    expected = row_pairs * col_pairs / total if total else 0.0
    top = (row_pairs + col_pairs) / 2.0
    ari = 1.0 if top == expected else (pairs - expected) / (top - expected)
    h_ref, h_new = _entropy(rows), _entropy(cols)
    nz = table > 0
    joint = table[nz] / n
    outer = np.outer(rows, cols)[nz] / (n * n)
    mutual = float((joint * np.log(joint / outer)).sum())
    mean_h = (h_ref + h_new) / 2.0
    nmi = 1.0 if mean_h == 0 else max(0.0, mutual / mean_h)
    same = np.asarray(reference).astype(str) == np.asarray(assigned).astype(str)
    return {"ari": float(ari), "nmi": float(min(nmi, 1.0)), "same_id": float(same.mean())}


def cluster_purity(clusters: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """The share of items whose cluster's most common label is their own.

    Args:
        clusters: ``(n,)`` cluster ids.
        labels: ``(n,)`` ground-truth labels of the same items.

    Raises:
        InputError: empty or not 1-D, or of different lengths.

    Example:
        >>> cluster_purity([0, 0, 0, 1], ["a", "a", "b", "b"])
        0.75
    """
    table = _contingency(clusters, labels, ("clusters", "labels"))
    return float(table.max(axis=1).sum() / table.sum())
