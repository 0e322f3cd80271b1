"""One faiss index per embedding version: exact (flat) or approximate (IVF-Flat, HNSW).

The index is derived data: :class:`~graceful.gallery.Gallery` fills it from its store and
keeps it in step after every write. Items are known to faiss by their int64 *labels*
(the store's item numbers). Vectors arrive already normalised for the cosine metric, so
the cosine index is an inner-product index.

* ``"flat"``: ``IndexIDMap2`` over ``IndexFlatIP``/``IndexFlatL2``: exact; removal is
  exact (``remove_ids``).
* ``"ivf"``: ``IndexIVFFlat``. It needs training on the version's own vectors, so until
  the version holds ``min_train`` vectors (default 1024) it searches exactly (a flat
  index); at that size it is trained with ``nlist`` lists (default
  ``clamp(sqrt(n), 1, n // 39)``) and searched with ``nprobe`` lists (default
  ``max(8, nlist // 16)``). The quantizer is not retrained as the version grows; a fresh
  :class:`~graceful.gallery.Gallery` (reopening) retrains on all vectors.
* ``"hnsw"``: ``IndexIDMap2`` over ``IndexHNSWFlat`` (``m`` 32, ``ef_construction``
  80, ``ef_search`` 128). HNSW cannot delete, so removed labels are tombstoned: searches
  exclude them with a faiss ``IDSelector`` (the results stay exactly the live items'),
  and the graph is rebuilt from the live vectors once a fifth of it is dead, or before a
  tombstoned label is added again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

__all__ = ["INDEX_KINDS", "INDEX_OPTIONS", "METRICS", "PAD_DISTANCE", "VersionIndex"]

METRICS = ("cosine", "l2")
INDEX_KINDS = ("flat", "ivf", "hnsw")
INDEX_OPTIONS: dict[str, tuple[str, ...]] = {
    "flat": (),
    "ivf": ("nlist", "nprobe", "min_train"),
    "hnsw": ("m", "ef_construction", "ef_search"),
}
"""Index kind -> the ``index_options`` it takes."""
PAD_DISTANCE = {
    "cosine": np.float32(-np.finfo(np.float32).max),
    "l2": np.float32(np.finfo(np.float32).max),
}
"""Metric -> the distance faiss pads missing results with (``-FLT_MAX``, ``FLT_MAX``)."""


class VersionIndex:
    """The faiss index of one version's items.

    Args:
        dim: vector dimension.
        metric: ``"cosine"`` (vectors must be normalised by the caller) or ``"l2"``.
        kind: ``"flat"``, ``"ivf"`` or ``"hnsw"``.
        options: index options (see the module docstring).

    Example:
        >>> import numpy as np
        >>> idx = VersionIndex(2, "l2", "flat")
        >>> idx.add_with_ids(np.array([[0, 0], [1, 1]], np.float32), np.array([7, 9]))
        >>> D, I = idx.search(np.array([[1, 1]], np.float32), 3)
        >>> I.tolist(), D[0, :2].tolist()
        ([[9, 7, -1]], [0.0, 2.0])
        >>> D[0, 2] == PAD_DISTANCE["l2"]
        np.True_
    """

    def __init__(
        self, dim: int, metric: str, kind: str, options: Mapping[str, int] | None = None
    ) -> None:
        self.dim = dim
        self.metric = metric
        self.kind = kind
        self.options = dict(options or {})
        self.higher_is_better = metric == "cosine"
        self._faiss_metric = (
            faiss.METRIC_INNER_PRODUCT if self.higher_is_better else faiss.METRIC_L2
        )
        self._dead: set[int] = set()
        self._trained = kind != "ivf"
        self._index: Any = self._new_flat() if kind != "hnsw" else self._new_hnsw()

    # -- construction ---------------------------------------------------------------------

    def _new_flat(self) -> Any:
        flat = faiss.IndexFlatIP(self.dim) if self.higher_is_better else faiss.IndexFlatL2(self.dim)
        return faiss.IndexIDMap2(flat)

    def _new_hnsw(self) -> Any:
        hnsw = faiss.IndexHNSWFlat(self.dim, int(self.options.get("m", 32)), self._faiss_metric)
        hnsw.hnsw.efConstruction = int(self.options.get("ef_construction", 80))
        hnsw.hnsw.efSearch = int(self.options.get("ef_search", 128))
        return faiss.IndexIDMap2(hnsw)

    def _all(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Every (label, vector) held (live or tombstoned), from a flat/HNSW IDMap2."""
        n = int(self._index.ntotal)
        labels = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = (
            self._index.index.reconstruct_n(0, n) if n else np.zeros((0, self.dim), np.float32)
        )
        return labels, np.asarray(vectors, dtype=np.float32)

    def _train_ivf(self, labels: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        """Replace the flat stand-in by an IVF index trained on (and holding) ``vectors``."""
        n = len(labels)
        nlist = int(self.options.get("nlist", max(1, min(int(math.sqrt(n)), n // 39))))
        quantizer = (
            faiss.IndexFlatIP(self.dim) if self.higher_is_better else faiss.IndexFlatL2(self.dim)
        )
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, self._faiss_metric)
        ivf.cp.max_points_per_centroid = 64  # train on a sample: fast, accurate enough
        ivf.train(vectors)
        ivf.nprobe = min(nlist, int(self.options.get("nprobe", max(8, nlist // 16))))
        ivf.add_with_ids(vectors, labels)
        self._quantizer = quantizer  # keep the Python object alive with the index
        self._index = ivf
        self._trained = True

    def _compact(self) -> None:
        """Rebuild the HNSW graph from its live vectors (drops the tombstones)."""
        labels, vectors = self._all()
        alive = ~np.isin(labels, np.fromiter(self._dead, np.int64, len(self._dead)))
        self._index = self._new_hnsw()
        self._dead = set()
        if alive.any():
            self._index.add_with_ids(vectors[alive], labels[alive])

    # -- saving and reading back (graceful.gallery.persist) ------------------------------

    @property
    def held(self) -> int:
        """Number of vectors the faiss index holds (live and tombstoned).

        Example:
            >>> VersionIndex(2, "l2", "flat").held
            0
        """
        return int(self._index.ntotal)

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the faiss index to ``path`` (``faiss.write_index``; tombstones included).

        Example:
            >>> import numpy as np, tempfile, os
            >>> idx = VersionIndex(2, "l2", "hnsw")
            >>> idx.add_with_ids(np.eye(2, dtype=np.float32), np.array([3, 4]))
            >>> path = os.path.join(tempfile.mkdtemp(), "v0.faiss")
            >>> idx.write(path)
            >>> VersionIndex.read(path, 2, "l2", "hnsw").search(np.eye(2, dtype=np.float32), 1)[1]
            array([[3],
                   [4]])
        """
        faiss.write_index(self._index, str(path))

    @classmethod
    def read(
        cls,
        path: str | os.PathLike[str],
        dim: int,
        metric: str,
        kind: str,
        options: Mapping[str, int] | None = None,
    ) -> VersionIndex:
        """The index written by :meth:`write`, checked against its version's definition.

        Raises:
            ValueError: the file is not a faiss index of that dim, metric and kind.
            RuntimeError: faiss cannot read the file (truncated, not faiss's).
        """
        out = cls(dim, metric, kind, options)
        index: Any = faiss.read_index(str(path))
        if int(index.d) != dim or int(index.metric_type) != out._faiss_metric:
            raise ValueError(f"{str(path)!r} holds an index of another dim or metric")
        inner: Any = (
            faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
        )
        if kind == "hnsw":
            ok = isinstance(inner, faiss.IndexHNSWFlat)
            if ok:
                inner.hnsw.efSearch = int(out.options.get("ef_search", 128))
        elif kind == "flat":
            ok = isinstance(inner, faiss.IndexFlat)
        else:
            ok = isinstance(inner, faiss.IndexFlat) or isinstance(index, faiss.IndexIVFFlat)
        if not ok:
            raise ValueError(f"{str(path)!r} holds a faiss index of another kind than {kind!r}")
        if isinstance(index, faiss.IndexIVFFlat):
            index.nprobe = min(
                int(index.nlist), int(out.options.get("nprobe", max(8, int(index.nlist) // 16)))
            )
            out._trained = True
        out._index = index
        return out

    def bury_all_but(self, code_of: npt.NDArray[np.int32], code: int) -> None:
        """Tombstone the held labels whose ``code_of`` is not ``code`` (HNSW, after reading).

        An HNSW index cannot delete, so a saved one holds the vectors of removed items;
        the label table says which labels are live under this version.

        Example:
            >>> import numpy as np
            >>> idx = VersionIndex(2, "l2", "hnsw")
            >>> idx.add_with_ids(np.eye(2, dtype=np.float32), np.array([0, 1]))
            >>> idx.bury_all_but(np.array([5, -1], np.int32), 5)
            >>> idx.ntotal, idx.held
            (1, 2)
        """
        if self.kind != "hnsw" or not self.held:
            return
        labels = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        live = np.zeros(len(labels), dtype=bool)
        inside = labels < len(code_of)
        live[inside] = code_of[labels[inside]] == code
        self._dead = set(labels[~live].tolist())

    # -- faiss's API: add_with_ids(x, ids), remove_ids(ids), search(x, k) -> (D, I) -----

    @property
    def ntotal(self) -> int:
        """Number of live vectors (tombstones excluded).

        Example:
            >>> VersionIndex(2, "l2", "hnsw").ntotal
            0
        """
        return int(self._index.ntotal) - len(self._dead)

    def add_with_ids(self, vectors: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> None:
        """Add ``vectors`` under ``labels`` (labels must not be live in this index).

        Example:
            >>> import numpy as np
            >>> idx = VersionIndex(2, "cosine", "hnsw")
            >>> idx.add_with_ids(np.eye(3, 2, dtype=np.float32), np.arange(3))
            >>> idx.ntotal
            3
        """
        if len(labels) == 0:
            return
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._dead and not self._dead.isdisjoint(labels.tolist()):
            self._compact()
        held = int(self._index.ntotal)
        if not self._trained and held + len(labels) >= int(self.options.get("min_train", 1024)):
            if held:
                old_labels, old_vectors = self._all()
                labels = np.concatenate([old_labels, labels])
                vectors = np.concatenate([old_vectors, vectors])
            self._train_ivf(labels, vectors)
            return
        self._index.add_with_ids(vectors, labels)

    def remove_ids(self, labels: npt.NDArray[np.int64]) -> int:
        """Remove the labels this index holds (others are ignored); return how many.

        Example:
            >>> import numpy as np
            >>> idx = VersionIndex(2, "l2", "flat")
            >>> idx.add_with_ids(np.zeros((3, 2), np.float32), np.arange(3))
            >>> idx.remove_ids(np.array([0, 5])), idx.ntotal
            (1, 2)
        """
        if len(labels) == 0 or self.ntotal == 0:
            return 0
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if self.kind != "hnsw":
            return int(self._index.remove_ids(faiss.IDSelectorBatch(labels)))
        held = faiss.vector_to_array(self._index.id_map)
        hit = set(labels[np.isin(labels, held)].tolist()) - self._dead
        self._dead |= hit
        if len(self._dead) > 0.2 * int(self._index.ntotal):
            self._compact()
        return len(hit)

    def search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The ``k`` best live labels per query and their distances, as faiss returns them.

        Returns:
            ``(D (n, k) float32, I (n, k) int64)``, best first: inner products (cosine)
            or squared L2 distances (l2); missing slots have label ``-1`` and faiss's pad
            distance (:data:`PAD_DISTANCE`).

        Example:
            >>> import numpy as np
            >>> idx = VersionIndex(2, "cosine", "flat")
            >>> idx.add_with_ids(np.array([[1, 0]], np.float32), np.array([4]))
            >>> idx.search(np.array([[1, 0]], np.float32), 1)[1]
            array([[4]])
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self._dead:
            dead = np.fromiter(self._dead, np.int64, len(self._dead))
            self._selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(dead))
            params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                sel=self._selector, efSearch=int(self.options.get("ef_search", 128))
            )
            distances, labels = self._index.search(queries, k, params=params)
        else:
            distances, labels = self._index.search(queries, k)
        return np.asarray(distances, dtype=np.float32), np.asarray(labels, dtype=np.int64)
