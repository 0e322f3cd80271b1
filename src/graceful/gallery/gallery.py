"""A versioned embedding gallery: search a gallery whose items are under several versions.

When an embedding model is replaced by a backward-compatible one (its vectors live in the
old space), queries embedded by the new model can search the old items at once, and the
items are re-embedded later (:func:`~graceful.gallery.backfill`) while search keeps
working on the mixed gallery. :class:`Gallery` records which query version may search
which gallery version (with the evaluation that showed it), keeps one faiss index per
version, searches every index the query version may search and merges the top ``k``.

**The API follows faiss.** Where faiss has an operation, the gallery has it under faiss's
name, with faiss's argument order and results, so that faiss code reads the same:

* :meth:`Gallery.add_with_ids` ``(x, ids, *, version)``: the vectors first, then their ids.
* :meth:`Gallery.search` ``(x, k, *, version) -> (D, I)``: a :class:`SearchResult`, a
  tuple ``(distances, ids)``, so ``D, I = gallery.search(xq, k, version="v1")``.
  ``D`` holds what the faiss index returns: for ``metric="cosine"``, the inner product of
  the normalised vectors (``METRIC_INNER_PRODUCT``, highest first); for ``"l2"``, the
  *squared* Euclidean distance (``METRIC_L2``, lowest first). Hits from several versions
  are merged in the same order (a tie between versions: the query's own version first,
  then the order of :meth:`Gallery.searchable`).
* Fewer than ``k`` items searched: the missing slots are padded as faiss pads them, the
  distance with ``-FLT_MAX`` (cosine) or ``FLT_MAX`` (l2), see
  :data:`~graceful.gallery.index.PAD_DISTANCE`. faiss pads ids with ``-1``; here ids are
  ``str``, and the pad is ``None`` (in ``I`` and in :attr:`SearchResult.versions`).
* :meth:`Gallery.remove_ids` ``(ids) -> int`` and :attr:`Gallery.ntotal`.

It differs from faiss on purpose where a gallery of string ids needs it: ids are ``str``,
not int64, so there is no ``add(x)`` that numbers the items; ``add_with_ids`` refuses an
id already there and ``remove_ids`` one that is not (faiss would duplicate or ignore it);
every search names the ``version`` of its queries; and the version of each hit is the
attribute :attr:`SearchResult.versions`, outside the ``(D, I)`` pair. What faiss has no
counterpart for has its own name: :meth:`~Gallery.register_version`,
:meth:`~Gallery.replace` (vectors first, as in ``add_with_ids``), :meth:`~Gallery.get`,
:meth:`~Gallery.refresh`, :meth:`~Gallery.status` and :meth:`~Gallery.backfill_batch`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from graceful._validation import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_name,
    check_names,
    check_str,
    check_vectors,
    fail,
)
from graceful.errors import InputError
from graceful.retrieval.adapters import QueryAdapter, compose_adapters

from .index import INDEX_KINDS, INDEX_OPTIONS, METRICS, PAD_DISTANCE, VersionIndex
from .persist import IndexSource, StaleSnapshotError, read_snapshot, write_snapshot
from .store import (
    Changes,
    Compatibility,
    GalleryStore,
    ItemRecord,
    Metadata,
    SQLiteStore,
    VersionInfo,
)

__all__ = ["Gallery", "IncompatibleVersionsError", "SearchResult"]


class IncompatibleVersionsError(InputError):
    """A search would compare vectors of two versions with no compatibility recorded.

    Example:
        >>> issubclass(IncompatibleVersionsError, ValueError)
        True
    """


class SearchResult(tuple[npt.NDArray[np.float32], npt.NDArray[np.object_]]):
    """The ``k`` nearest items of each query: the pair ``(distances, ids)``, faiss's ``(D, I)``.

    A tuple of two, so ``D, I = gallery.search(xq, k, version=v)`` works as with faiss;
    the version of each hit is the attribute ``versions``, not a third element.

    Attributes:
        distances: ``(n, k)`` float32, best first, as faiss returns them: inner products
            of the normalised vectors for cosine (highest first), squared L2 distances for
            l2 (lowest first); missing slots hold faiss's pad (``-FLT_MAX`` for cosine,
            ``FLT_MAX`` for l2).
        ids: ``(n, k)`` object array of item ids (``str``); ``None`` in missing slots.
        versions: ``(n, k)`` object array: the version each hit is embedded under
            (``None`` in missing slots).

    Example:
        >>> import numpy as np
        >>> r = SearchResult(np.ones((1, 1), np.float32), np.array([["a"]], object),
        ...                  np.array([["v0"]], object))
        >>> D, I = r
        >>> I[0, 0], r.versions[0, 0], len(r)
        ('a', 'v0', 2)
    """

    versions: npt.NDArray[np.object_]

    def __new__(
        cls,
        distances: npt.NDArray[np.float32],
        ids: npt.NDArray[np.object_],
        versions: npt.NDArray[np.object_],
    ) -> SearchResult:
        """The pair ``(distances, ids)`` with ``versions`` attached."""
        self = super().__new__(cls, (distances, ids))
        self.versions = versions
        return self

    @property
    def distances(self) -> npt.NDArray[np.float32]:
        """``D``: the distances, ``(n, k)`` float32."""
        return self[0]

    @property
    def ids(self) -> npt.NDArray[np.object_]:
        """``I``: the item ids, ``(n, k)`` object array of ``str`` (``None`` pads)."""
        return self[1]

    def __reduce__(self) -> tuple[Any, ...]:
        return (SearchResult, (self[0], self[1], self.versions))

    def __repr__(self) -> str:
        return f"SearchResult(distances={self[0]!r}, ids={self[1]!r}, versions={self.versions!r})"


def _unit_rows(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``x`` with each row divided by its L2 norm (a new array; rows are non-zero).

    The one normalisation of cosine versions: of the indexed vectors and of the queries.
    """
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    out: npt.NDArray[np.float32] = x / norms[:, None]
    return out


def _check_ids(ids: object, name: str = "ids") -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, Sequence | np.ndarray):
        raise InputError(
            f"Expected argument `{name}` to be a sequence of str, but got {type(ids).__name__}"
        )
    out = list(ids)
    for item in out:
        if not isinstance(item, str):
            raise InputError(
                f"Expected argument `{name}` to hold only str ids, but got {item!r} "
                f"({type(item).__name__})"
            )
    if len(set(out)) != len(out):
        twice = next(i for i, count in Counter(out).items() if count > 1)
        raise InputError(
            f"Expected argument `{name}` to hold distinct ids, but {twice!r} appears twice"
        )
    return out


def _check_json(name: str, value: object) -> dict[str, Any]:
    """``value`` as a dict that ``json.dumps`` can write (metadata, evidence)."""
    out: dict[str, Any] = dict(check_instance(name, value, Mapping, "a dict"))
    try:
        json.dumps(out, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Expected argument `{name}` to be JSON-able, but {exc}") from None
    return out


class Gallery:
    """A gallery of item embeddings under several versions, stored in SQLite.

    The store (SQLite by default: :class:`~graceful.gallery.SQLiteStore`) is the source
    of truth; the faiss indexes are rebuilt from it when the gallery is opened. Every
    write (``register_version``, ``record_compatibility``, ``add_with_ids``, ``replace``,
    ``remove_ids``, a backfill batch) is one transaction: when it returns it is durable,
    and the in-memory indexes are updated after the commit. Another :class:`Gallery` on
    the same file (another process, say) sees those writes after :meth:`refresh`.

    With ``index_dir``, the indexes are saved there (:meth:`save_indexes`, and by
    :meth:`close` when they moved on since) and read back on the next open with
    ``faiss.read_index`` instead of a rebuild: as they are when they are current, caught
    up from the store's change log when the store moved on, rebuilt from the store when
    they are damaged or another gallery's (:mod:`graceful.gallery.persist`;
    :attr:`index_source` says which). An IVF index read back keeps its trained lists;
    delete the folder to retrain them on all vectors at the next open.

    Args:
        path: the SQLite file (created if missing); ``":memory:"`` for a throw-away one.
        store: another :class:`~graceful.gallery.GalleryStore` instead of ``path``
            (:class:`~graceful.gallery.PostgresStore`, say).
        index_dir: a folder for the saved indexes (created if missing); ``None``: the
            indexes are rebuilt from the store at every open. One folder per gallery and
            machine: for a server store, a local cache folder of each serving process.

    Attributes:
        store: the store.
        index_dir: the folder of the saved indexes, or ``None``.
        index_source: an :class:`~graceful.gallery.persist.IndexSource`: were the indexes
            read back (and how many writes were applied on top) or rebuilt, and why.

    Example:
        >>> import numpy as np
        >>> g = Gallery(":memory:")
        >>> g.register_version("v0", dim=2)
        >>> g.add_with_ids(np.array([[1, 0], [0, 1]], np.float32), ["a", "b"], version="v0")
        >>> D, I = g.search(np.array([[1, 0]], np.float32), 1, version="v0")
        >>> I.tolist(), D.tolist(), g.ntotal
        ([['a']], [[1.0]], 2)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        store: GalleryStore | None = None,
        index_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if (path is None) == (store is None):
            raise InputError("Expected exactly one of the arguments `path` and `store`")
        owned = store is None
        if store is None:
            if str(path) != ":memory:" and not Path(str(path)).parent.is_dir():
                raise fail("path", "a file in an existing folder", str(path))
            store = SQLiteStore(str(path))
        self.store: GalleryStore = store
        self._seq = 0
        self._versions: dict[str, VersionInfo] = {}
        self._compat: dict[tuple[str, str], Compatibility] = {}
        self._adapters: dict[tuple[str, str], tuple[int, QueryAdapter]] = {}  # pair -> (seq, a)
        self._indexes: dict[str, VersionIndex] = {}
        self._codes: dict[str, int] = {}
        self._names = np.array([None], dtype=object)  # code -> name; last slot: None
        # label -> item id; after an open from saved indexes, the Arrow column read (made
        # Python strings on the first write, looked up by take() until then)
        self._id_of: npt.NDArray[np.object_] | pa.ChunkedArray = np.empty(0, dtype=object)
        self._code_of = np.empty(0, dtype=np.int32)  # label -> version code (-1: none)
        self.index_dir = None if index_dir is None else Path(index_dir)
        self.index_source = IndexSource("rebuilt")
        self._saved_seq = -1  # the seq of the snapshot in index_dir that matches ours
        self._identity: str | None = None
        try:
            if self.index_dir is None:
                self.refresh()
            else:
                self._open_saved(self.index_dir)
        except BaseException:
            if owned:
                store.close()
            raise

    # -- context manager ------------------------------------------------------------------

    def close(self) -> None:
        """Save the indexes (with ``index_dir``, when they moved on), then close the store.

        Example:
            >>> Gallery(":memory:").close()
        """
        try:
            if self.index_dir is not None and self._seq != self._saved_seq and self._identity:
                self.save_indexes()
        finally:
            self.store.close()

    # -- saved indexes --------------------------------------------------------------------

    def _open_saved(self, folder: Path) -> None:
        """Read the indexes saved in ``folder`` and catch up, or rebuild (saying why)."""
        identity = self.store.identity()
        self._identity = identity
        try:
            snap = read_snapshot(
                folder,
                identity=identity,
                last_seq=self.store.last_seq(),
                versions=self.store.versions(),
            )
        except StaleSnapshotError as exc:
            self.refresh()
            self.index_source = IndexSource("rebuilt", reason=str(exc))
            return
        for code, (info, index) in enumerate(zip(snap.versions, snap.indexes, strict=True)):
            self._versions[info.name] = info
            self._codes[info.name] = code
            self._indexes[info.name] = index
        self._id_of, self._code_of = snap.id_of, snap.code_of
        self._seq = self._saved_seq = snap.seq
        self._load_registry()
        changes = self.store.changes_since(snap.seq)
        self._apply_changes(changes)
        self.index_source = IndexSource("saved", snap.seq, changes.seq - snap.seq)

    def save_indexes(self, index_dir: str | os.PathLike[str] | None = None) -> Path:
        """Save every version's faiss index, as of :attr:`seq`, for a fast reopen.

        One snapshot (:mod:`graceful.gallery.persist`): a new folder of
        ``faiss.write_index`` files and the label table, published by an atomic replace of
        its ``manifest.json``; the previous snapshot stays in use until then.

        Args:
            index_dir: the folder; default: the gallery's ``index_dir``.

        Returns:
            The manifest's path.

        Raises:
            InputError: no folder given, a store without a gallery id (an older SQLite
                file), or a folder that cannot be written.

        Example:
            >>> import numpy as np, tempfile
            >>> folder = tempfile.mkdtemp()
            >>> g = Gallery(":memory:", index_dir=folder)
            >>> g.register_version("v0", dim=2)
            >>> g.add_with_ids(np.eye(2), ["a", "b"], version="v0")
            >>> g.save_indexes().name
            'manifest.json'
            >>> g.index_source.kind, g.index_source.reason
            ('rebuilt', "no saved indexes in '...'")
        """
        folder = self.index_dir if index_dir is None else Path(index_dir)
        if folder is None:
            raise InputError("Expected argument `index_dir` (the gallery has none), but got None")
        identity = self._identity if self._identity is not None else self.store.identity()
        if identity is None:
            raise InputError(
                "Cannot save the indexes: the store has no gallery id (a gallery file written "
                "by an older graceful); they are rebuilt at every open"
            )
        names = list(self._versions)
        path = write_snapshot(
            folder,
            identity=identity,
            seq=self._seq,
            versions=[self._versions[n] for n in names],
            indexes=[self._indexes[n] for n in names],
            id_of=self._id_of,
            code_of=self._code_of,
        )
        if folder == self.index_dir:
            self._saved_seq = self._seq
        return path

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
            metric: ``"cosine"`` (faiss inner product of normalised vectors) or ``"l2"``
                (faiss's squared L2).
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
        check_name("name", name)
        dim = check_int("dim", dim, low=1)
        check_choice("metric", metric, METRICS)
        check_choice("index", index, INDEX_KINDS)
        options = dict(index_options or {})
        for key, value in options.items():
            if key not in INDEX_OPTIONS[index]:
                raise InputError(
                    f"Expected argument `index_options` to hold options of a {index!r} index "
                    f"({', '.join(INDEX_OPTIONS[index]) or 'none'}), but got {key!r}"
                )
            options[key] = check_int(f"index_options[{key!r}]", value, low=1)
        if name in self._versions:
            raise fail("name", "a new version", name)
        if isinstance(compatible_with, str):
            compatible_with = [compatible_with]
        info = VersionInfo(name, dim, metric, index, options)
        ev = {} if evidence is None else _check_json("evidence", evidence)
        compat = []
        for other in compatible_with:
            self._check_pair(info, self._version(other, "compatible_with"))
            compat.append(Compatibility(name, other, ev))
        self._apply_registry(self.store.add_version(info, compat))

    def record_compatibility(
        self,
        query_version: str,
        gallery_version: str,
        evidence: Mapping[str, Any],
        *,
        adapter: QueryAdapter | None = None,
    ) -> None:
        """Record that ``query_version`` queries may search ``gallery_version`` items.

        Args:
            query_version: the version that embeds the queries.
            gallery_version: the version of the items searched.
            evidence: the evaluation that showed it, a JSON-able dict such as
                ``{"top1_new_old": 0.62, "top1_old_old": 0.55}``. Recording the same pair
                again replaces it (and its adapter, or drops it when none is given).
            adapter: a :class:`~graceful.retrieval.QueryAdapter` from ``query_version``'s
                space into ``gallery_version``'s (:func:`~graceful.retrieval.fit_query_adapter`
                on paired items); :meth:`search` sends the queries through it before
                searching those items, so the stored vectors stay as they are. Its
                dimensions must be the two versions' (they may differ); without one the
                versions must share ``dim``.

        Raises:
            InputError: an unregistered version, different metrics, or dimensions that do
                not fit (naming both versions); nothing is recorded.

        Example:
            >>> import numpy as np
            >>> from graceful.retrieval import fit_query_adapter
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.register_version("v1", dim=3)
            >>> g.add_with_ids(np.eye(2), ["a", "b"], version="v0")
            >>> paired_new = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
            >>> paired_old = np.array([[1.0, 0], [0, 1], [0.7, 0.7]])
            >>> a = fit_query_adapter(paired_new, paired_old, kind="affine")
            >>> g.record_compatibility("v1", "v0", {"map_ratio": 0.97}, adapter=a)
            >>> g.search(np.array([[0.0, 1.0, 0.0]]), 1, version="v1").ids.tolist()
            [['b']]
        """
        self.refresh()
        q = self._version(query_version, "query_version")
        gv = self._version(gallery_version, "gallery_version")
        if adapter is None:
            self._check_pair(q, gv)
            blob = None
        else:
            check_instance("adapter", adapter, QueryAdapter, "a QueryAdapter or None")
            if q.metric != gv.metric or (adapter.dim_in, adapter.dim_out) != (q.dim, gv.dim):
                raise InputError(
                    f"Expected an adapter from {q.name!r} (dim={q.dim}, metric={q.metric!r}) "
                    f"to {gv.name!r} (dim={gv.dim}, metric={gv.metric!r}), but it maps "
                    f"dim {adapter.dim_in} to dim {adapter.dim_out}"
                    + (" and the metrics differ" if q.metric != gv.metric else "")
                )
            blob = adapter.to_bytes()
        ev = _check_json("evidence", evidence)
        self._apply_registry(
            self.store.add_compatibility(Compatibility(q.name, gv.name, ev, adapter=blob))
        )

    def adapter(self, query_version: str, gallery_version: str) -> QueryAdapter | None:
        """The adapter recorded for the pair, ``None`` when its queries go in as they are.

        Example:
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.adapter("v0", "v0") is None
            True
        """
        q = self._version(query_version, "query_version")
        gv = self._version(gallery_version, "gallery_version")
        entry = self._adapters.get((q.name, gv.name))
        return None if entry is None else entry[1]

    def chain_adapter(self, versions: Sequence[str]) -> QueryAdapter | None:
        """The map from ``versions[0]``'s queries into ``versions[-1]``'s space, link by link.

        Each consecutive pair (``v3 -> v2``, ``v2 -> v1``) must have a recorded
        compatibility: its adapter is a link of the chain
        (:func:`~graceful.retrieval.compose_adapters`), and a pair recorded without one
        (trained compatible: the same space) passes the vectors on as they are. The chain
        is not recorded: measure it, then record it with its evidence, e.g.
        ``record_compatibility("v3", "v1", evidence, adapter=g.chain_adapter(["v3", "v2",
        "v1"]))``; compatibility is not transitive without that evidence.

        Args:
            versions: at least two registered versions, newest first.

        Returns:
            The composed adapter, or ``None`` when every link is trained compatibility.

        Raises:
            InputError: fewer than two versions, an unregistered one, or a link with no
                recorded compatibility (naming both of its versions); nothing changes.

        Example:
            >>> import numpy as np
            >>> from graceful.retrieval import fit_query_adapter
            >>> g = Gallery(":memory:")
            >>> for name, dim in (("v1", 2), ("v2", 3), ("v3", 4)):
            ...     g.register_version(name, dim=dim)
            >>> rng = np.random.default_rng(0)
            >>> x1, x2, x3 = (rng.normal(size=(20, d)) for d in (2, 3, 4))
            >>> g.record_compatibility("v2", "v1", {}, adapter=fit_query_adapter(x2, x1))
            >>> g.record_compatibility("v3", "v2", {}, adapter=fit_query_adapter(x3, x2))
            >>> chain = g.chain_adapter(["v3", "v2", "v1"])
            >>> chain.dim_in, chain.dim_out, len(chain.links)
            (4, 2, 2)
            >>> g.chain_adapter(["v3", "v1"])  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            graceful.errors.InputError: ...no compatibility recorded from 'v3' to 'v1'...
        """
        if isinstance(versions, str) or not isinstance(versions, Sequence) or len(versions) < 2:
            raise fail("versions", "a sequence of at least 2 versions", versions)
        infos = [self._version(name, "versions") for name in versions]
        links = []
        path = " -> ".join(repr(v.name) for v in infos)
        for i, (q, g) in enumerate(pairwise(infos)):
            if (q.name, g.name) not in self._compat:
                raise InputError(
                    f"Cannot chain {path}: no compatibility recorded from {q.name!r} to "
                    f"{g.name!r} (link {i + 1}); record that link first"
                )
            entry = self._adapters.get((q.name, g.name))
            if entry is not None:
                links.append(entry[1])
        return compose_adapters(*links) if links else None

    def to_space(
        self, x: npt.ArrayLike, *, version: str, gallery_version: str
    ) -> npt.NDArray[np.float32]:
        """``version``'s vectors ``x`` as :meth:`search` sends them to ``gallery_version``'s.

        Through the recorded adapter when there is one, as they are when the versions are
        the same or trained compatible; unit length under cosine. Use it to assign new
        vectors to clusters made with an old version
        (:func:`~graceful.retrieval.assign_clusters`).

        Raises:
            InputError: bad vectors for ``version``, or no compatibility recorded from
                ``version`` to ``gallery_version`` (naming both).

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.register_version("v1", dim=2, compatible_with=["v0"])
            >>> g.to_space([[3.0, 4.0]], version="v1", gallery_version="v0").tolist()
            [[0.6000000238418579, 0.800000011920929]]
        """
        info = self._version(version)
        target = self._version(gallery_version, "gallery_version")
        q = self._check_x(x, info)
        if target.name != info.name and (info.name, target.name) not in self._compat:
            raise InputError(
                f"Cannot map {info.name!r} vectors into {target.name!r}'s space: no "
                f"compatibility recorded from {info.name!r} to {target.name!r}"
            )
        entry = self._adapters.get((info.name, target.name))
        if entry is not None:
            return self._adapted(entry[1], q, info, target.name)
        if info.metric != "cosine":
            return q
        return _unit_rows(q)

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
    def _check_pair(q: VersionInfo, g: VersionInfo) -> None:
        if q.dim != g.dim or q.metric != g.metric:
            raise InputError(
                f"Expected compatible versions to share dim and metric, but {q.name!r} has "
                f"dim={q.dim}, metric={q.metric!r} and {g.name!r} has dim={g.dim}, "
                f"metric={g.metric!r}"
            )

    def _version(self, name: object, arg: str = "version") -> VersionInfo:
        if not isinstance(name, str) or name not in self._versions:
            raise fail(arg, "a registered version", name)
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
        adapters = {}
        for pair, c in self._compat.items():
            if c.adapter is None:
                continue
            cached = self._adapters.get(pair)
            if cached is not None and cached[0] == c.seq:
                adapters[pair] = cached  # decoded once per write
                continue
            try:
                adapters[pair] = (c.seq, QueryAdapter.from_bytes(c.adapter))
            except InputError as exc:
                raise InputError(
                    f"The adapter recorded from {pair[0]!r} to {pair[1]!r} is damaged: {exc}"
                ) from None
        self._adapters = adapters

    # -- items ----------------------------------------------------------------------------

    @staticmethod
    def _check_x(
        x: object, info: VersionInfo, rows: int | None = None, name: str = "x"
    ) -> npt.NDArray[np.float32]:
        """``x`` as float32 vectors of version ``info`` (cosine: no zero rows)."""
        return check_vectors(
            name,
            x,
            rows=rows,
            dim=info.dim,
            nonzero=info.metric == "cosine",
            where=f" for {info.metric} version {info.name!r}",
        )

    def _check_items(
        self, x: object, ids: object, version: object, metadata: object
    ) -> tuple[list[str], VersionInfo, npt.NDArray[np.float32], list[dict[str, Any] | None] | None]:
        """The checked arguments of ``add_with_ids`` and ``replace``."""
        id_list = _check_ids(ids)
        info = self._version(version)
        arr = self._check_x(x, info, len(id_list))
        if metadata is None:
            return id_list, info, arr, None
        if (
            not isinstance(metadata, Sequence)
            or isinstance(metadata, str)
            or len(metadata) != len(id_list)
        ):
            raise fail("metadata", f"a list of {len(id_list)} dicts (or None)", metadata)
        meta = [
            m if m is None else _check_json(f"metadata[{i}]", m) for i, m in enumerate(metadata)
        ]
        return id_list, info, arr, meta

    def add_with_ids(
        self, x: npt.ArrayLike, ids: Sequence[str], *, version: str, metadata: Metadata = None
    ) -> None:
        """Add new items embedded under ``version``, in one durable transaction (faiss's order).

        Args:
            x: ``(len(ids), dim)`` finite floats (stored as float32, as given; cosine
                normalises only the index's copy; zero rows are refused).
            ids: item ids, ``str`` (distinct, none already in the gallery).
            version: a registered version.
            metadata: optional JSON-able dicts, one per item.

        Raises:
            InputError: a bad argument; nothing is written.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2, metric="l2")
            >>> g.add_with_ids(np.zeros((1, 2)), ["a"], version="v0", metadata=[{"title": "A"}])
            >>> g.add_with_ids(np.zeros((1, 2)), ["a"], version="v0")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            graceful.errors.InputError: Expected argument `ids` to hold new ids, but 'a' is ...
        """
        id_list, info, arr, meta = self._check_items(x, ids, version, metadata)
        check_names("ids", id_list)
        if id_list:
            self._apply(self.store.insert(id_list, info.name, arr, meta))

    def replace(
        self, x: npt.ArrayLike, ids: Sequence[str], *, version: str, metadata: Metadata = None
    ) -> None:
        """Re-embed existing items under ``version`` (often a newer one), atomically.

        The arguments are those of :meth:`add_with_ids`, but every id must be stored. Each
        item moves from its old version to ``version`` in one transaction: it is never
        under two versions or none. ``metadata=None`` keeps the items' metadata.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.register_version("v1", dim=2, compatible_with=["v0"])
            >>> g.add_with_ids(np.eye(2), ["a", "b"], version="v0")
            >>> g.replace(np.ones((1, 2)), ["a"], version="v1")
            >>> g.status()
            {'v0': 1, 'v1': 1}
        """
        id_list, info, arr, meta = self._check_items(x, ids, version, metadata)
        if id_list:
            self._apply(self.store.replace(id_list, info.name, arr, meta))

    def remove_ids(self, ids: Sequence[str]) -> int:
        """Remove items (every id must be in the gallery), in one transaction.

        Returns:
            The number of items removed (``len(ids)``), as faiss's ``remove_ids``.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.add_with_ids(np.eye(2), ["a", "b"], version="v0")
            >>> g.remove_ids(["a"]), g.ntotal
            (1, 1)
        """
        id_list = _check_ids(ids)
        if id_list:
            self._apply(self.store.delete(id_list))
        return len(id_list)

    def get(self, ids: Sequence[str]) -> list[ItemRecord]:
        """The stored items (version, vector as added, metadata), in the order of ``ids``.

        Reads the store, so it sees other processes' writes without :meth:`refresh`.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2)
            >>> g.add_with_ids(np.array([[3, 4]]), ["a"], version="v0")
            >>> item = g.get(["a"])[0]
            >>> item.version, item.vector.tolist()
            ('v0', [3.0, 4.0])
        """
        return self.store.get(_check_ids(ids))

    def backfill_batch(
        self,
        job: str,
        positions: Sequence[int],
        ids: Sequence[str],
        embed: Callable[[list[str]], npt.ArrayLike],
        *,
        to_version: str,
    ) -> tuple[int, int]:
        """Re-embed one batch of the stored backfill plan of ``job``, in one transaction.

        Calls ``embed`` once with the ids of the batch not under ``to_version`` (no call
        when there are none), then moves those items there and marks the batch's plan
        positions done in one transaction
        (:meth:`~graceful.gallery.GalleryStore.commit_batch`), and updates the indexes.
        Positions another process has done meanwhile are left as they are.
        :func:`~graceful.gallery.backfill` runs a whole plan with it.

        Args:
            job: the job whose plan holds the positions.
            positions: plan positions (:meth:`~graceful.gallery.GalleryStore.pending`).
            ids: the ids at those positions.
            embed: ``embed(ids) -> (len(ids), dim)`` vectors under ``to_version``.
            to_version: a registered version.

        Returns:
            ``(moved, skipped)``: items moved, and positions done without a move (the
            item is gone or already under ``to_version``).

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("old", dim=2, metric="l2")
            >>> g.register_version("new", dim=2, metric="l2", compatible_with=["old"])
            >>> g.add_with_ids(np.zeros((2, 2)), ["a", "b"], version="old")
            >>> _ = g.store.extend_plan("job", "new", {}, ["a", "b"])
            >>> g.backfill_batch("job", [0, 1], ["a", "b"], lambda ids: np.ones((2, 2)),
            ...                  to_version="new"), g.status()
            ((2, 0), {'old': 0, 'new': 2})
        """
        info, id_list = self._check_batch(job, positions, ids, to_version)
        check_callable("embed", embed)
        todo = self._todo(id_list, info)
        out = np.full((len(id_list), info.dim), np.nan, dtype=np.float32)  # NaN: not embedded
        if todo:
            got = self._check_x(embed(todo), info, len(todo), "embed(ids)")
            row = {item: r for r, item in enumerate(id_list)}
            out[[row[k] for k in todo]] = got
        return self._commit(job, positions, id_list, out, info)

    def _check_batch(
        self, job: object, positions: Sequence[int], ids: object, to_version: object
    ) -> tuple[VersionInfo, list[str]]:
        """The checked version and ids of one batch of a backfill plan."""
        info = self._version(to_version, "to_version")
        check_str("job", job)
        id_list = _check_ids(ids)
        if len(positions) != len(id_list):
            raise fail("positions", f"{len(id_list)} plan positions (one per id)", positions)
        return info, id_list

    def backfill_todo(self, ids: Sequence[str], *, to_version: str) -> list[str]:
        """The ids among ``ids`` that exist and are not under ``to_version`` (in order).

        What a backfill batch embeds; :meth:`commit_backfill_batch` commits the vectors.

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("old", dim=2)
            >>> g.register_version("new", dim=2, compatible_with=["old"])
            >>> g.add_with_ids(np.eye(2), ["a", "b"], version="old")
            >>> g.add_with_ids(np.eye(2), ["c", "d"], version="new")
            >>> g.backfill_todo(["a", "c", "gone", "b"], to_version="new")
            ['a', 'b']
        """
        return self._todo(_check_ids(ids), self._version(to_version, "to_version"))

    def _todo(self, ids: list[str], info: VersionInfo) -> list[str]:
        where = self.store.versions_of(ids)
        return [i for i in ids if where.get(i, info.name) != info.name]

    def commit_backfill_batch(
        self,
        job: str,
        positions: Sequence[int],
        ids: Sequence[str],
        vectors: Mapping[str, npt.ArrayLike],
        *,
        to_version: str,
    ) -> tuple[int, int]:
        """Commit one batch of ``job``'s plan with vectors computed elsewhere, in one transaction.

        For a backfill whose model runs in other processes (:func:`~graceful.gallery.
        ray_backfill`): ``vectors`` maps the ids that were embedded (those of
        :meth:`backfill_todo`) to their vectors under ``to_version``. An item that needs
        moving but has no vector (another process moved it back meanwhile) keeps its plan
        position pending; items gone or already there are skipped, as in
        :meth:`backfill_batch`.

        Returns:
            ``(moved, skipped)``.

        Raises:
            InputError: a bad argument (a vector of another dimension, an id not in
                ``ids``); nothing is written.
        """
        info, id_list = self._check_batch(job, positions, ids, to_version)
        if not isinstance(vectors, Mapping):
            raise fail("vectors", "a mapping of id -> vector", vectors)
        row = {item: r for r, item in enumerate(id_list)}
        stray = [item for item in vectors if item not in row]
        if stray:
            raise fail("vectors", "vectors of ids of the batch only", stray[:5])
        out = np.full((len(id_list), info.dim), np.nan, dtype=np.float32)  # NaN: not embedded
        if vectors:
            keys = list(vectors)
            got = self._check_x([vectors[k] for k in keys], info, len(keys), "vectors")
            out[[row[k] for k in keys]] = got
        return self._commit(job, positions, id_list, out, info)

    def _commit(
        self,
        job: str,
        positions: Sequence[int],
        ids: list[str],
        vectors: npt.NDArray[np.float32],
        info: VersionInfo,
    ) -> tuple[int, int]:
        """Commit a checked batch (NaN rows: not embedded) and apply it to the indexes."""
        changes, moved, skipped = self.store.commit_batch(
            job, [int(p) for p in positions], ids, vectors, info.name
        )
        self._apply(changes)
        return moved, skipped

    @property
    def ntotal(self) -> int:
        """Number of items (as of the last write or :meth:`refresh`), as faiss's ``ntotal``.

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
            >>> a.add_with_ids(np.ones((1, 2)), ["x"], version="v0")
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
            id_of = self._writable_ids()
            if top > len(id_of):
                size = max(top, 2 * len(id_of), 1024)
                grown = np.empty(size, dtype=object)
                grown[: len(id_of)] = id_of
                code_of = np.full(size, -1, dtype=np.int32)
                code_of[: len(self._code_of)] = self._code_of
                self._id_of, self._code_of = id_of, code_of = grown, code_of
            self._drop(labels)
            if info.metric == "cosine":
                vectors = _unit_rows(vectors)
            self._indexes[version].add_with_ids(vectors, labels)
            id_of[labels] = ids
            self._code_of[labels] = self._codes[version]
        self._seq = changes.seq

    def _drop(self, labels: npt.NDArray[np.int64]) -> None:
        """Remove labels from whichever index holds them."""
        labels = labels[labels < len(self._code_of)]
        codes = self._code_of[labels]
        for name, code in self._codes.items():
            mine = labels[codes == code]
            if len(mine):
                self._indexes[name].remove_ids(mine)
        self._code_of[labels] = -1
        self._writable_ids()[labels] = None

    def _writable_ids(self) -> npt.NDArray[np.object_]:
        """The label -> id table as a NumPy object array (made from the Arrow column once)."""
        if isinstance(self._id_of, pa.ChunkedArray):
            self._id_of = self._id_of.to_numpy(zero_copy_only=False)  # a new object array
        return self._id_of

    def _ids_at(self, labels: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
        """The ids of ``labels`` (valid labels), in their shape."""
        if isinstance(self._id_of, pa.ChunkedArray):
            taken = self._id_of.take(pa.array(labels.ravel()))
            ids: npt.NDArray[np.object_] = taken.to_numpy(zero_copy_only=False)
            return ids.reshape(labels.shape)
        return self._id_of[labels]

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

    @staticmethod
    def _adapted(
        adapter: QueryAdapter, q: npt.NDArray[np.float32], info: VersionInfo, gallery: str
    ) -> npt.NDArray[np.float32]:
        """Queries ``q`` of version ``info`` mapped into ``gallery``'s space (unit under cosine)."""
        out = adapter(q)
        if info.metric != "cosine":
            return out
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        if not norms.all():
            row = int(np.flatnonzero(norms[:, 0] == 0)[0])
            raise InputError(
                f"The adapter from {info.name!r} to {gallery!r} maps query {row} of "
                "argument `x` to a zero vector, which cosine search cannot normalise"
            )
        unit: npt.NDArray[np.float32] = out / norms
        return unit

    def search(self, x: npt.ArrayLike, k: int, *, version: str) -> SearchResult:
        """The ``k`` nearest items of each query among all items it may be compared with.

        Searches the items under ``version`` and under every version recorded compatible
        for ``version`` queries, merging the per-version top ``k`` (see the module
        docstring for the distances, their order and the padding). If the gallery holds
        items of any other version, the search is refused
        (:class:`IncompatibleVersionsError`): their vectors live in another space.
        Searches the gallery as of the last write or :meth:`refresh`.

        Args:
            x: ``(n, dim)`` finite floats, the queries, embedded by ``version``'s model.
            k: a positive int; when fewer items are searched, the missing slots hold
                faiss's pad distance, id ``None`` and version ``None``.
            version: the version that embedded the queries.

        Returns:
            A :class:`SearchResult`, ``D, I`` (and ``.versions``).

        Example:
            >>> import numpy as np
            >>> g = Gallery(":memory:")
            >>> g.register_version("v0", dim=2, metric="l2")
            >>> g.add_with_ids(np.array([[0, 0], [3, 4]]), ["a", "b"], version="v0")
            >>> D, I = g.search(np.zeros((1, 2)), 3, version="v0")
            >>> I.tolist(), D[:, :2].tolist(), D[0, 2] == np.finfo(np.float32).max
            ([['a', 'b', None]], [[0.0, 25.0]], np.True_)
        """
        info = self._version(version)
        k = check_int("k", k, low=1)
        q = self._check_x(x, info)
        allowed = self.searchable(info.name)
        for name, idx in self._indexes.items():
            if idx.ntotal and name not in allowed:
                raise IncompatibleVersionsError(
                    f"Cannot search with `version`={info.name!r}: no compatibility recorded from "
                    f"query version {info.name!r} to gallery version {name!r}; record one or "
                    "backfill those items"
                )
        native = _unit_rows(q) if info.metric == "cosine" else q
        parts = []
        for name in allowed:
            if not self._indexes[name].ntotal:
                continue
            entry = self._adapters.get((info.name, name))
            qv = native if entry is None else self._adapted(entry[1], q, info, name)
            parts.append(self._indexes[name].search(qv, k))
        n = q.shape[0]
        if not parts:
            none = np.full((n, k), None, dtype=object)
            return SearchResult(np.full((n, k), PAD_DISTANCE[info.metric]), none, none.copy())
        if len(parts) == 1:
            distances, labels = parts[0]
        else:
            distances = np.concatenate([p[0] for p in parts], axis=1)
            labels = np.concatenate([p[1] for p in parts], axis=1)
            key = -distances if info.metric == "cosine" else distances
            order = np.argsort(key, axis=1, kind="stable")[:, :k]
            distances = np.take_along_axis(distances, order, axis=1)
            labels = np.take_along_axis(labels, order, axis=1)
        missing = labels < 0  # faiss's -1; its distance is already faiss's pad
        safe = np.where(missing, 0, labels) if missing.any() else labels
        ids = self._ids_at(safe)
        versions = self._names[self._code_of[safe]]
        if missing.any():
            ids[missing] = None
            versions[missing] = None
        return SearchResult(distances, ids, versions)
