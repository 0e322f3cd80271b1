"""A versioned embedding gallery: search a gallery whose items are under several versions.

When an embedding model is replaced by a backward-compatible one (its vectors live in the
old space), queries embedded by the new model can search the old items at once, and the
items are re-embedded later (:func:`~graceful.gallery.backfill`) while search keeps
working on the mixed gallery. :class:`Gallery` records which query version may search
which gallery version (with the evaluation that showed it), keeps one faiss index per
version, searches every index the query version may search and merges the top ``k``.

The API follows faiss: :meth:`Gallery.add`, :meth:`Gallery.search`,
:attr:`Gallery.ntotal`. Item ids are strings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graceful.errors import InputError

from .index import INDEX_KINDS, METRICS, VersionIndex
from .store import Changes, Compatibility, GalleryStore, ItemRecord, SQLiteStore, VersionInfo

__all__ = ["Gallery", "IncompatibleVersionsError", "SearchResult"]


class IncompatibleVersionsError(InputError):
    """A search would compare vectors of two versions with no compatibility recorded.

    Example:
        >>> issubclass(IncompatibleVersionsError, ValueError)
        True
    """


@dataclass(frozen=True)
class SearchResult:
    """The ``k`` nearest items of each query, best first.

    Attributes:
        ids: ``(n, k)`` object array of item ids (``str``); ``None`` in missing slots
            (the searched items are fewer than ``k``).
        scores: ``(n, k)`` float32. Cosine: the inner product of the normalised vectors
            (higher is better); l2: the Euclidean distance (lower is better). ``NaN`` in
            missing slots.
        versions: ``(n, k)`` object array: the version each hit is embedded under
            (``None`` in missing slots).

    Example:
        >>> import numpy as np
        >>> r = SearchResult(np.array([["a"]], object), np.ones((1, 1), np.float32),
        ...                  np.array([["v0"]], object))
        >>> r.ids[0, 0], r.versions[0, 0]
        ('a', 'v0')
    """

    ids: npt.NDArray[np.object_]
    scores: npt.NDArray[np.float32]
    versions: npt.NDArray[np.object_]


def _check_name(value: object, arg: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"Expected argument `{arg}` to be a non-empty str, but got {value!r}")
    return value


def _check_ids(ids: object, arg: str = "ids") -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, Sequence | np.ndarray):
        raise InputError(
            f"Expected argument `{arg}` to be a sequence of str, but got {type(ids).__name__}"
        )
    out = list(ids)
    for item in out:
        if not isinstance(item, str):
            raise InputError(
                f"Expected argument `{arg}` to hold only str ids, but got {item!r} "
                f"({type(item).__name__})"
            )
    if len(set(out)) != len(out):
        seen: set[str] = set()
        for item in out:
            if item in seen:
                raise InputError(
                    f"Expected argument `{arg}` to hold distinct ids, but {item!r} appears twice"
                )
            seen.add(item)
    return out


class Gallery:
    """A gallery of item embeddings under several versions, stored in SQLite.

    The store (SQLite by default: :class:`~graceful.gallery.SQLiteStore`) is the source
    of truth; the faiss indexes are rebuilt from it when the gallery is opened. Every
    write (``register_version``, ``record_compatibility``, ``add``, ``replace``,
    ``remove``, a backfill batch) is one transaction: when it returns it is durable, and
    the in-memory indexes are updated after the commit. Another :class:`Gallery` on the
    same file (another process, say) sees those writes after :meth:`refresh`.

    Args:
        path: the SQLite file (created if missing); ``":memory:"`` for a throw-away one.
        store: another :class:`~graceful.gallery.GalleryStore` instead of ``path``.

    Example:
        >>> import numpy as np
        >>> g = Gallery(":memory:")
        >>> g.register_version("v0", dim=2)
        >>> g.add(["a", "b"], np.array([[1, 0], [0, 1]], np.float32), version="v0")
        >>> r = g.search(np.array([[1, 0.1]], np.float32), 1, version="v0")
        >>> r.ids.tolist(), g.ntotal
        ([['a']], 2)
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, store: GalleryStore | None = None
    ) -> None:
        if (path is None) == (store is None):
            raise InputError("Expected exactly one of the arguments `path` and `store`")
        if store is None:
            if str(path) != ":memory:" and not Path(str(path)).parent.is_dir():
                raise InputError(
                    f"Expected argument `path` to be in an existing folder, got {str(path)!r}"
                )
            store = SQLiteStore(str(path))
        self.store: GalleryStore = store
        self._seq = 0
        self._versions: dict[str, VersionInfo] = {}
        self._compat: dict[tuple[str, str], Compatibility] = {}
        self._indexes: dict[str, VersionIndex] = {}
        self._codes: dict[str, int] = {}
        self._names = np.array([None], dtype=object)  # code -> name; last slot: None
        self._id_of = np.empty(0, dtype=object)  # label -> item id
        self._code_of = np.empty(0, dtype=np.int32)  # label -> version code (-1: none)
        self.refresh()

    # -- context manager ------------------------------------------------------------------

    def close(self) -> None:
        """Close the store.

        Example:
            >>> Gallery(":memory:").close()
        """
        self.store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registry -------------------------------------------------------------------------

    def register_version(
        self,
        name: str,
        *,
        dim: int,
        metric: str = "cosine",
        index: str = "flat",
        compatible_with: Sequence[str] = (),
        evidence: Mapping[str, Any] | None = None,
        index_options: Mapping[str, int] | None = None,
    ) -> None:
        """Register an embedding version.

        Args:
            name: the version's name.
            dim: the vector dimension.
            metric: ``"cosine"`` or ``"l2"``.
            index: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (approximate; see
                :mod:`graceful.gallery.index`).
            compatible_with: versions whose items this version's queries may search (its
                vectors live in their space); each must have the same ``dim`` and
                ``metric``.
            evidence: the evaluation that showed the compatibility (a JSON-able dict),
                recorded with each entry of ``compatible_with``.
            index_options: ``nlist``/``nprobe``/``min_train`` (ivf) or
                ``m``/``ef_construction``/``ef_search`` (hnsw).

        Example:
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=4)
            >>> g.register_version("v1", dim=4, compatible_with=["v0"],
            ...                    evidence={"top1_new_old": 0.62})
            >>> [(c.query_version, c.gallery_version) for c in g.compatibility()]
            [('v1', 'v0')]
        """
        self.refresh()
        _check_name(name, "name")
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
            raise InputError(f"Expected argument `dim` to be a positive int, but got {dim!r}")
        if metric not in METRICS:
            raise InputError(
                f"Expected argument `metric` to be one of {METRICS}, but got {metric!r}"
            )
        if index not in INDEX_KINDS:
            raise InputError(
                f"Expected argument `index` to be one of {INDEX_KINDS}, but got {index!r}"
            )
        options = dict(index_options or {})
        allowed = {
            "ivf": ("nlist", "nprobe", "min_train"),
            "hnsw": ("m", "ef_construction", "ef_search"),
        }
        for key, value in options.items():
            if key not in allowed.get(index, ()):
                raise InputError(
                    f"Expected argument `index_options` to hold options of a {index!r} index, "
                    f"but got {key!r}"
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f"Expected argument `index_options[{key!r}]` to be a positive int, "
                    f"but got {value!r}"
                )
        if name in self._versions:
            raise InputError(
                f"Expected argument `name` to be a new version, but {name!r} is already registered"
            )
        if isinstance(compatible_with, str):
            compatible_with = [compatible_with]
        info = VersionInfo(name, int(dim), metric, index, options)
        ev = self._check_evidence(evidence)
        compat = []
        for other in compatible_with:
            self._check_pair(info, self._version(other, "compatible_with"))
            compat.append(Compatibility(name, other, ev))
        self._apply_registry(self.store.add_version(info, compat))

    def record_compatibility(
        self, query_version: str, gallery_version: str, evidence: Mapping[str, Any]
    ) -> None:
        """Record that ``query_version`` queries may search ``gallery_version`` items.

        Args:
            query_version: the version that embeds the queries.
            gallery_version: the version of the items searched.
            evidence: the evaluation that showed it, a JSON-able dict such as
                ``{"top1_new_old": 0.62, "top1_old_old": 0.55}``. Recording the same pair
                again replaces it.

        Example:
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=4)
            >>> g.register_version("v1", dim=4)
            >>> g.record_compatibility("v1", "v0", {"top1_new_old": 0.62})
            >>> g.compatibility()[0].evidence
            {'top1_new_old': 0.62}
        """
        self.refresh()
        q = self._version(query_version, "query_version")
        gv = self._version(gallery_version, "gallery_version")
        self._check_pair(q, gv)
        ev = self._check_evidence(evidence, required=True)
        self._apply_registry(self.store.add_compatibility(Compatibility(q.name, gv.name, ev)))

    def versions(self) -> list[VersionInfo]:
        """The registered versions, in registration order.

        Example:
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=3, metric="l2")
            >>> g.versions()[0].metric
            'l2'
        """
        return list(self._versions.values())

    def compatibility(self) -> list[Compatibility]:
        """The recorded compatibilities, in recording order.

        Example:
            >>> Gallery(":memory:").compatibility()
            []
        """
        return list(self._compat.values())

    @staticmethod
    def _check_evidence(
        evidence: Mapping[str, Any] | None, required: bool = False
    ) -> dict[str, Any]:
        if evidence is None and not required:
            return {}
        if not isinstance(evidence, Mapping):
            raise InputError(
                f"Expected argument `evidence` to be a dict, but got {type(evidence).__name__}"
            )
        try:
            json.dumps(dict(evidence), allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Expected argument `evidence` to be JSON-able, but {exc}") from None
        return dict(evidence)

    @staticmethod
    def _check_pair(q: VersionInfo, g: VersionInfo) -> None:
        if q.dim != g.dim or q.metric != g.metric:
            raise InputError(
                f"Expected compatible versions to share dim and metric, but {q.name!r} has "
                f"dim={q.dim}, metric={q.metric!r} and {g.name!r} has dim={g.dim}, "
                f"metric={g.metric!r}"
            )

    def _version(self, name: object, arg: str = "version") -> VersionInfo:
        if not isinstance(name, str) or name not in self._versions:
            raise InputError(
                f"Expected argument `{arg}` to be a registered version, but got {name!r}"
            )
        return self._versions[name]

    def _apply_registry(self, seq: int) -> None:
        if seq == self._seq + 1:
            self._load_registry()
            self._seq = seq
        else:
            self.refresh()

    def _load_registry(self) -> None:
        for info in self.store.versions():
            if info.name not in self._versions:
                self._versions[info.name] = info
                self._codes[info.name] = len(self._codes)
                self._indexes[info.name] = VersionIndex(
                    info.dim, info.metric, info.index, info.options
                )
        self._names = np.array([*self._codes, None], dtype=object)
        self._compat = {(c.query_version, c.gallery_version): c for c in self.store.compatibility()}

    # -- items ----------------------------------------------------------------------------

    def _check_vectors(
        self, vectors: object, n: int, info: VersionInfo, arg: str = "vectors"
    ) -> npt.NDArray[np.float32]:
        try:
            arr = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(
                f"Expected argument `{arg}` to be a float array, but got {type(vectors).__name__}"
            ) from None
        if arr.ndim != 2 or arr.shape != (n, info.dim):
            raise InputError(
                f"Expected argument `{arg}` to have shape ({n}, {info.dim}) for version "
                f"{info.name!r}, but got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
            raise InputError(
                f"Expected argument `{arg}` to be finite, but row {row} holds NaN or inf"
            )
        if info.metric == "cosine" and n:
            norms = np.linalg.norm(arr, axis=1)
            if (norms == 0).any():
                row = int(np.flatnonzero(norms == 0)[0])
                raise InputError(
                    f"Expected argument `{arg}` to have non-zero rows for the cosine metric, "
                    f"but row {row} is zero"
                )
        return np.ascontiguousarray(arr)

    def _check_metadata(self, metadata: object, n: int) -> list[Mapping[str, Any] | None] | None:
        if metadata is None:
            return None
        if not isinstance(metadata, Sequence) or isinstance(metadata, str) or len(metadata) != n:
            raise InputError(
                f"Expected argument `metadata` to be a list of {n} dicts (or None), "
                f"but got {type(metadata).__name__}"
            )
        out: list[Mapping[str, Any] | None] = []
        for m in metadata:
            if m is not None and not isinstance(m, Mapping):
                raise InputError(
                    "Expected argument `metadata` to hold dicts or None, "
                    f"but got {type(m).__name__}"
                )
            out.append(m if m is None else self._check_evidence(m, required=True))
        return out

    def add(
        self,
        ids: Sequence[str],
        vectors: npt.ArrayLike,
        *,
        version: str,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items embedded under ``version``, in one durable transaction.

        Args:
            ids: item ids, ``str`` (distinct, none already in the gallery).
            vectors: ``(len(ids), dim)`` finite floats (stored as float32, as given;
                cosine normalises only the index's copy; zero rows are refused).
            version: a registered version.
            metadata: optional JSON-able dicts, one per item.

        Raises:
            InputError: a bad argument; nothing is written.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2, metric="l2")
            >>> g.add(["a"], np.zeros((1, 2)), version="v0", metadata=[{"title": "A"}])
            >>> g.add(["a"], np.zeros((1, 2)), version="v0")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            graceful.errors.InputError: Expected argument `ids` to hold new ids, but 'a' is ...
        """
        id_list = _check_ids(ids)
        info = self._version(version)
        arr = self._check_vectors(vectors, len(id_list), info)
        meta = self._check_metadata(metadata, len(id_list))
        if not id_list:
            return
        self._apply(self.store.insert(id_list, info.name, arr, meta))

    def replace(
        self,
        ids: Sequence[str],
        vectors: npt.ArrayLike,
        *,
        version: str,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Re-embed existing items under ``version`` (often a newer one), atomically.

        Each item moves from its old version to ``version`` in one transaction: it is
        never under two versions or none. ``metadata=None`` keeps the items' metadata.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.register_version("v1", dim=2, compatible_with=["v0"])
            >>> g.add(["a", "b"], np.eye(2), version="v0")
            >>> g.replace(["a"], np.ones((1, 2)), version="v1")
            >>> g.status()
            {'v0': 1, 'v1': 1}
        """
        id_list = _check_ids(ids)
        info = self._version(version)
        arr = self._check_vectors(vectors, len(id_list), info)
        meta = self._check_metadata(metadata, len(id_list))
        if not id_list:
            return
        self._apply(self.store.replace(id_list, info.name, arr, meta))

    def remove(self, ids: Sequence[str]) -> None:
        """Remove items (every id must be in the gallery), in one transaction.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.add(["a", "b"], np.eye(2), version="v0")
            >>> g.remove(["a"])
            >>> g.ntotal
            1
        """
        id_list = _check_ids(ids)
        if not id_list:
            return
        self._apply(self.store.delete(id_list))

    def get(self, ids: Sequence[str]) -> list[ItemRecord]:
        """The stored items (version, vector as added, metadata), in the order of ``ids``.

        Reads the store, so it sees other processes' writes without :meth:`refresh`.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.add(["a"], np.array([[3, 4]]), version="v0")
            >>> item = g.get(["a"])[0]
            >>> item.version, item.vector.tolist()
            ('v0', [3.0, 4.0])
        """
        return self.store.get(_check_ids(ids))

    @property
    def ntotal(self) -> int:
        """Number of items (as of the last write or :meth:`refresh`).

        Example:
            >>> Gallery(":memory:").ntotal
            0
        """
        return sum(idx.ntotal for idx in self._indexes.values())

    @property
    def seq(self) -> int:
        """The store's change sequence number this gallery is up to date with.

        Example:
            >>> Gallery(":memory:").seq
            0
        """
        return self._seq

    def status(self) -> dict[str, int]:
        """Number of items under each registered version.

        Example:
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.status()
            {'v0': 0}
        """
        return {name: idx.ntotal for name, idx in self._indexes.items()}

    # -- keeping the indexes in step ------------------------------------------------------

    def refresh(self) -> int:
        """Pick up every write committed since this gallery last looked (any process).

        Returns:
            The number of writes picked up.

        Example:
            >>> import numpy as np, tempfile, os
            >>> path = os.path.join(tempfile.mkdtemp(), "g.sqlite")
            >>> a, b = Gallery(path), Gallery(path)
            >>> a.register_version("v0", dim=2)
            >>> a.add(["x"], np.ones((1, 2)), version="v0")
            >>> b.refresh(), b.ntotal
            (2, 1)
        """
        before = self._seq
        if self.store.last_seq() == before and before > 0:
            return 0
        self._load_registry()
        changes = self.store.changes_since(before)
        self._apply_changes(changes)
        return changes.seq - before

    def _apply(self, changes: Changes) -> None:
        """Apply a write's own changes, or refresh when another process wrote in between."""
        if changes.seq == self._seq + 1:
            self._apply_changes(changes)
        else:
            self.refresh()

    def _apply_changes(self, changes: Changes) -> None:
        if len(changes.removed):
            self._drop(changes.removed)
        for version, (labels, ids, vectors) in changes.upserts.items():
            if version not in self._indexes:  # registered after our registry snapshot
                self._load_registry()
            info = self._versions[version]
            top = int(labels.max()) + 1
            if top > len(self._id_of):
                size = max(top, 2 * len(self._id_of), 1024)
                id_of = np.empty(size, dtype=object)
                id_of[: len(self._id_of)] = self._id_of
                code_of = np.full(size, -1, dtype=np.int32)
                code_of[: len(self._code_of)] = self._code_of
                self._id_of, self._code_of = id_of, code_of
            self._drop(labels)
            if info.metric == "cosine":
                vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            self._indexes[version].add(labels, vectors)
            self._id_of[labels] = ids
            self._code_of[labels] = self._codes[version]
        self._seq = changes.seq

    def _drop(self, labels: npt.NDArray[np.int64]) -> None:
        """Remove labels from whichever index holds them."""
        labels = labels[labels < len(self._code_of)]
        codes = self._code_of[labels]
        for name, code in self._codes.items():
            mine = labels[codes == code]
            if len(mine):
                self._indexes[name].remove(mine)
        self._code_of[labels] = -1
        self._id_of[labels] = None

    # -- search ---------------------------------------------------------------------------

    def searchable(self, version: str) -> list[str]:
        """The gallery versions that ``version`` queries may search (itself first).

        Example:
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.register_version("v1", dim=2, compatible_with=["v0"])
            >>> g.searchable("v1")
            ['v1', 'v0']
        """
        info = self._version(version)
        return [info.name] + [g for (q, g) in self._compat if q == info.name and g != info.name]

    def search(self, queries: npt.ArrayLike, k: int, *, version: str) -> SearchResult:
        """The ``k`` nearest items of each query among all items it may be compared with.

        Searches the items under ``version`` and under every version recorded compatible
        for ``version`` queries, merging the per-version top ``k``. If the gallery holds
        items of any other version, the search is refused
        (:class:`IncompatibleVersionsError`): their vectors live in another space.
        Searches the gallery as of the last write or :meth:`refresh`.

        Args:
            queries: ``(n, dim)`` finite floats embedded by ``version``'s model.
            k: a positive int; when fewer items are searched, the missing slots hold id
                ``None``, score ``NaN`` and version ``None``.
            version: the version that embedded the queries.

        Returns:
            A :class:`SearchResult`.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2, metric="l2")
            >>> g.add(["a", "b"], np.array([[0, 0], [3, 4]]), version="v0")
            >>> r = g.search(np.zeros((1, 2)), 3, version="v0")
            >>> r.ids.tolist(), r.scores.tolist()
            ([['a', 'b', None]], [[0.0, 5.0, nan]])
        """
        info = self._version(version)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InputError(f"Expected argument `k` to be a positive int, but got {k!r}")
        k = int(k)
        try:
            q = np.asarray(queries, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(
                f"Expected argument `queries` to be a float array, but got {type(queries).__name__}"
            ) from None
        if q.ndim != 2:
            raise InputError(
                f"Expected argument `queries` to be 2-D (n, {info.dim}), but got shape {q.shape}"
            )
        q = self._check_vectors(q, q.shape[0], info, "queries")
        allowed = self.searchable(info.name)
        for name, idx in self._indexes.items():
            if idx.ntotal and name not in allowed:
                raise IncompatibleVersionsError(
                    f"Cannot search with `version`={info.name!r}: no compatibility recorded from "
                    f"query version {info.name!r} to gallery version {name!r}; record one or "
                    "backfill those items"
                )
        if info.metric == "cosine":
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        parts = [self._indexes[name].search(q, k) for name in allowed if self._indexes[name].ntotal]
        n = q.shape[0]
        if not parts:
            return SearchResult(
                np.full((n, k), None, dtype=object),
                np.full((n, k), np.nan, np.float32),
                np.full((n, k), None, dtype=object),
            )
        if len(parts) == 1:
            scores, labels = parts[0]
        else:
            scores = np.concatenate([p[0] for p in parts], axis=1)
            labels = np.concatenate([p[1] for p in parts], axis=1)
            key = -scores if info.metric == "cosine" else scores
            order = np.argsort(key, axis=1, kind="stable")[:, :k]
            scores = np.take_along_axis(scores, order, axis=1)
            labels = np.take_along_axis(labels, order, axis=1)
        missing = labels < 0
        safe = np.where(missing, 0, labels) if missing.any() else labels
        ids = self._id_of[safe]
        versions = self._names[self._code_of[safe]]
        scores = np.sqrt(np.maximum(scores, 0)) if info.metric == "l2" else scores.copy()
        if missing.any():
            ids[missing] = None
            versions[missing] = None
            scores[missing] = np.nan
        return SearchResult(ids, scores.astype(np.float32, copy=False), versions)
