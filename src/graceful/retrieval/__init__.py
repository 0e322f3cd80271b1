"""Retrieval evaluation for backward-compatible embeddings (BCT, Shen et al., CVPR 2020).

* :func:`retrieval_metrics`: exact CMC top-k and mAP of queries (one model) against a
  gallery (possibly another model), with leave-one-out by position or by id;
* :func:`cross_model_metrics` / :func:`cross_model_matrix`: every (query model, gallery
  model) pair of several model versions embedding the same items;
* :func:`is_compatible` and :func:`update_gain`: the empirical criterion
  ``M(new, old) > M(old, old)`` and the share of the paragon's gain obtained;
* :func:`backfill_curve` and :func:`curve_auc`: quality while the gallery is re-embedded;
* :func:`fit_query_adapter` / :class:`QueryAdapter`: a map from a new model's queries into
  the old model's space (Procrustes, low-rank affine, residual MLP), fitted on a few
  paired items, so the old gallery is searched without re-embedding it;
  :func:`select_query_adapter` chooses its centring and "all-but-the-top" projection on
  held-out pairs; :func:`compose_adapters` chains adapters along versions (v3 -> v2 -> v1);
* :func:`fit_centroids`, :func:`assign_clusters`, :func:`cluster_agreement`,
  :func:`cluster_purity`: an old model's clusters serving new-model vectors (directly or
  through an adapter), measured against the old assignment.

Argument order everywhere: queries before gallery, old before new.

Example:
    >>> import numpy as np
    >>> old = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    >>> new = np.array([[1.0, 0.1], [0.9, 0.1], [0.1, 1.0], [0.1, 0.9]])
    >>> labels = np.array([0, 0, 1, 1])
    >>> m_old_old = retrieval_metrics(old, labels, old, labels, top_k=1)["top1"]
    >>> m_new_old = retrieval_metrics(new, labels, old, labels, top_k=1)["top1"]
    >>> m_old_old, m_new_old, is_compatible(m_new_old, m_old_old)
    (0.5, 1.0, True)
"""

from .adapters import (
    ADAPTER_KINDS,
    QueryAdapter,
    compose_adapters,
    fit_query_adapter,
    select_query_adapter,
)
from .asymmetric import asymmetric_metrics
from .backfill_curve import DEFAULT_FRACTIONS, backfill_curve, curve_auc
from .clusters import assign_clusters, cluster_agreement, cluster_purity, fit_centroids
from .compatibility import cross_model_matrix, cross_model_metrics, is_compatible, update_gain
from .evaluation import METRICS, ArrayLike, retrieval_metrics

__all__ = [
    "ADAPTER_KINDS",
    "DEFAULT_FRACTIONS",
    "METRICS",
    "ArrayLike",
    "QueryAdapter",
    "assign_clusters",
    "asymmetric_metrics",
    "backfill_curve",
    "cluster_agreement",
    "cluster_purity",
    "compose_adapters",
    "cross_model_matrix",
    "cross_model_metrics",
    "curve_auc",
    "fit_centroids",
    "fit_query_adapter",
    "is_compatible",
    "retrieval_metrics",
    "select_query_adapter",
    "update_gain",
]
