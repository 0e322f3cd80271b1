"""A versioned embedding gallery that updates without backfilling, and a resumable backfill.

When an embedding model is replaced by a backward-compatible one, record the
compatibility (:meth:`Gallery.record_compatibility`), search the mixed gallery at once
with new-model queries, and re-embed the items later with :func:`backfill`.

Example:
    >>> import numpy as np
    >>> g = Gallery(":memory:")
    >>> g.register_version("v0", dim=2)
    >>> g.add_with_ids(np.eye(2), ["a", "b"], version="v0")
    >>> g.register_version("v1", dim=2, compatible_with=["v0"], evidence={"top1": 0.6})
    >>> D, I = g.search(np.array([[0.0, 1.0]]), 1, version="v1")  # as faiss: (D, I)
    >>> I.tolist(), D.tolist()
    ([['b']], [[1.0]])

The API follows faiss (``add_with_ids(x, ids)``, ``search(x, k) -> (D, I)`` with faiss's
distances, ``remove_ids``, ``ntotal``); :mod:`graceful.gallery.gallery` states how, and
where a gallery of string ids differs.

Needs the ``gallery`` extra (faiss-cpu, pyarrow).
"""

from graceful._extras import require

require("gallery", "graceful.gallery")

from .backfill import (
    BackfillPolicy,
    BackfillReport,
    BatchInfo,
    RandomOrder,
    ScoreOrder,
    backfill,
    balanced_order,
    uncertainty_scores,
)
from .gallery import Gallery, IncompatibleVersionsError, SearchResult
from .index import VersionIndex
from .on_ray import BackfillFailedError, ray_backfill
from .persist import IndexSource
from .postgres import PostgresStore
from .store import (
    Changes,
    Compatibility,
    GalleryStore,
    ItemRecord,
    PlanInfo,
    SQLiteStore,
    VersionInfo,
)

__all__ = [
    "BackfillFailedError",
    "BackfillPolicy",
    "BackfillReport",
    "BatchInfo",
    "Changes",
    "Compatibility",
    "Gallery",
    "GalleryStore",
    "IncompatibleVersionsError",
    "IndexSource",
    "ItemRecord",
    "PlanInfo",
    "PostgresStore",
    "RandomOrder",
    "SQLiteStore",
    "ScoreOrder",
    "SearchResult",
    "VersionIndex",
    "VersionInfo",
    "backfill",
    "balanced_order",
    "ray_backfill",
    "uncertainty_scores",
]
