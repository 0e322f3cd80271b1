"""Where a gallery keeps its items: the :class:`GalleryStore` seam and its SQLite default.

The store is the source of truth: item ids, the version each item is embedded under, the
vectors (float32), metadata, the versions registry, the compatibility registry and the
backfill plans. The faiss indexes of :class:`~graceful.gallery.Gallery` are derived from
it and rebuilt from it on open.

Every write is one transaction and takes the next value of a change sequence number
(``seq``), so a reader can ask for "everything changed since ``seq``"
(:meth:`GalleryStore.changes_since`) and another process's
:meth:`~graceful.gallery.Gallery.refresh` picks up those changes. A write that returned
is durable; after a crash the store holds every acknowledged write and each item under
exactly one version (one row per item, one ``version`` column).

A server database (PostgreSQL, say) would implement the same protocol; the gallery talks
only to it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from graceful._validation import fail
from graceful.errors import InputError

__all__ = [
    "Changes",
    "Compatibility",
    "GalleryStore",
    "ItemRecord",
    "Metadata",
    "PlanInfo",
    "SQLiteStore",
    "Upsert",
    "VersionInfo",
]

Metadata = Sequence[Mapping[str, Any] | None] | None
"""Items' metadata: one JSON-able dict (or ``None``) per item, or ``None`` for none."""
Upsert = tuple[npt.NDArray[np.int64], npt.NDArray[np.object_], npt.NDArray[np.float32]]
"""Items now under one version: ``(labels int64 (n,), ids (n,) object, vectors (n, dim))``."""

_CHUNK = 500  # ids per "IN (...)" query, below SQLite's bound-parameter limit
_SCHEMA = 1
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT PRIMARY KEY, dim INTEGER NOT NULL, metric TEXT NOT NULL,
    index_kind TEXT NOT NULL, options TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS compat (
    query_version TEXT NOT NULL REFERENCES versions(name),
    gallery_version TEXT NOT NULL REFERENCES versions(name),
    evidence TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (query_version, gallery_version));
CREATE TABLE IF NOT EXISTS items (
    label INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL REFERENCES versions(name),
    vector BLOB NOT NULL, metadata TEXT, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS items_seq ON items(seq);
CREATE INDEX IF NOT EXISTS items_version ON items(version);
CREATE TABLE IF NOT EXISTS removed (
    label INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS removed_seq ON removed(seq);
CREATE TABLE IF NOT EXISTS plans (
    job TEXT PRIMARY KEY, to_version TEXT NOT NULL REFERENCES versions(name),
    policy TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS plan_items (
    job TEXT NOT NULL REFERENCES plans(job), pos INTEGER NOT NULL,
    id TEXT NOT NULL, done_seq INTEGER, outcome TEXT,
    PRIMARY KEY (job, pos));
INSERT OR IGNORE INTO meta VALUES ('schema', 1), ('next_label', 1);
"""


@dataclass(frozen=True)
class VersionInfo:
    """One registered embedding version.

    Attributes:
        name: the version's name (e.g. ``"v1"``).
        dim: vector dimension.
        metric: ``"cosine"`` or ``"l2"``.
        index: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (approximate).
        options: index options (``nlist``, ``nprobe``, ``min_train``, ``m``,
            ``ef_construction``, ``ef_search``).
        seq: the change sequence number of the write that registered it.

    Example:
        >>> VersionInfo("v0", 4, "cosine", "flat").dim
        4
    """

    name: str
    dim: int
    metric: str
    index: str
    options: Mapping[str, int] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True)
class Compatibility:
    """A recorded compatibility: ``query_version`` queries may search ``gallery_version``.

    Attributes:
        query_version: the version that embeds the queries.
        gallery_version: the version the searched items are embedded under.
        evidence: the evaluation that showed it (a JSON-able dict).
        seq: the change sequence number of the write that recorded it.

    Example:
        >>> Compatibility("v1", "v0", {"top1_new_old": 0.62}).gallery_version
        'v0'
    """

    query_version: str
    gallery_version: str
    evidence: Mapping[str, Any]
    seq: int = 0


@dataclass(frozen=True)
class ItemRecord:
    """One item as stored.

    Attributes:
        id: the item id.
        version: the version it is embedded under.
        vector: its vector as added (float32, not normalised).
        metadata: its metadata (a JSON-able dict) or ``None``.

    Example:
        >>> import numpy as np
        >>> ItemRecord("a", "v0", np.zeros(2, np.float32), None).version
        'v0'
    """

    id: str
    version: str
    vector: npt.NDArray[np.float32]
    metadata: Mapping[str, Any] | None


@dataclass(frozen=True)
class Changes:
    """What one write (or every write since some ``seq``) changed.

    Attributes:
        seq: the store's change sequence number after those writes.
        removed: labels (int64) of items that are gone.
        upserts: per version, ``(labels int64 (n,), ids (n,) object, vectors (n, dim))``
            of items now under that version (newly added or moved there).

    Labels are the store's internal int64 item numbers, never reused, which the faiss
    indexes use as their ids.

    Example:
        >>> import numpy as np
        >>> Changes(3, np.zeros(0, np.int64), {}).seq
        3
    """

    seq: int
    removed: npt.NDArray[np.int64]
    upserts: Mapping[str, Upsert]


@dataclass(frozen=True)
class PlanInfo:
    """A stored backfill plan.

    Attributes:
        job: the job name.
        to_version: the version the job re-embeds items under.
        policy: a description of the ordering policy (JSON-able dict).
        total: number of plan positions.
        done: number of positions done (embedded or skipped).

    Example:
        >>> PlanInfo("default", "v1", {"policy": "random"}, 10, 4).total - 4
        6
    """

    job: str
    to_version: str
    policy: Mapping[str, Any]
    total: int
    done: int


@runtime_checkable
class GalleryStore(Protocol):
    """What a gallery needs from its storage (SQLite here, a server database later).

    Every method that writes runs in one transaction, takes the next change sequence
    number and raises :class:`~graceful.errors.InputError` (changing nothing) when the
    write is not possible (duplicate version or id, unknown id or version).

    Example:
        >>> isinstance(SQLiteStore(":memory:"), GalleryStore)
        True
    """

    def last_seq(self) -> int:
        """The change sequence number of the last committed write (0 when none)."""
        ...

    def add_version(self, info: VersionInfo, compat: Sequence[Compatibility]) -> int:
        """Register a version and its compatibilities in one write; return its seq."""
        ...

    def add_compatibility(self, compat: Compatibility) -> int:
        """Record (or overwrite) one compatibility; return the write's seq."""
        ...

    def versions(self) -> list[VersionInfo]:
        """All registered versions, in registration order."""
        ...

    def compatibility(self) -> list[Compatibility]:
        """All recorded compatibilities, in recording order."""
        ...

    def insert(
        self, ids: Sequence[str], version: str, vectors: npt.NDArray[np.float32], metadata: Metadata
    ) -> Changes:
        """Add new items (none may exist yet) under ``version``."""
        ...

    def replace(
        self, ids: Sequence[str], version: str, vectors: npt.NDArray[np.float32], metadata: Metadata
    ) -> Changes:
        """Move existing items (all must exist) to ``version`` with new vectors."""
        ...

    def delete(self, ids: Sequence[str]) -> Changes:
        """Remove existing items (all must exist)."""
        ...

    def get(self, ids: Sequence[str]) -> list[ItemRecord]:
        """The stored items, in the order of ``ids`` (all must exist)."""
        ...

    def changes_since(self, seq: int) -> Changes:
        """Everything changed after ``seq`` (``0``: the whole gallery), one snapshot."""
        ...

    def versions_of(self, ids: Sequence[str]) -> dict[str, str]:
        """The version of each of ``ids`` that is stored (absent ids are left out)."""
        ...

    def ids_not_at(self, version: str) -> list[str]:
        """Ids of the items not under ``version``, sorted."""
        ...

    def plan_info(self, job: str) -> PlanInfo | None:
        """The stored plan of ``job``, or ``None``."""
        ...

    def extend_plan(
        self, job: str, to_version: str, policy: Mapping[str, Any], ids: Sequence[str]
    ) -> int:
        """Create the plan of ``job`` or append ``ids`` to it; return the write's seq."""
        ...

    def plan(self, job: str) -> tuple[npt.NDArray[np.int64], list[str], npt.NDArray[np.int64]]:
        """The whole plan: positions, ids and ``done_seq`` (0 while not done)."""
        ...

    def pending(self, job: str) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Plan positions not done yet and their ids, in plan order."""
        ...

    def commit_batch(
        self,
        job: str,
        positions: Sequence[int],
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        version: str,
    ) -> tuple[Changes, int, int]:
        """Move a batch to ``version`` and mark its positions done, in one transaction.

        A row of ``vectors`` that is NaN means "not embedded": if its item needs moving,
        its position stays pending. Returns the changes, the number of items moved and
        the number of positions skipped (gone, already under ``version``, or already done
        by another worker).
        """
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


def _changes(
    seq: int, version: str, labels: npt.NDArray[np.int64], ids: Sequence[str], vectors: Any
) -> Changes:
    """The :class:`Changes` of a write that put ``ids`` (at ``labels``) under ``version``."""
    obj = np.empty(len(ids), dtype=object)
    obj[:] = list(ids)
    upserts = {version: (labels, obj, vectors)} if len(ids) else {}
    return Changes(seq, np.zeros(0, np.int64), upserts)


class SQLiteStore:
    """The embedded default :class:`GalleryStore`: one SQLite file (stdlib ``sqlite3``).

    WAL journal mode lets readers (a searching process) run while a writer (a backfill)
    commits. ``synchronous=FULL``: in WAL mode ``NORMAL`` survives a killed process but
    may lose the last commits on power loss or an OS crash; ``FULL`` fsyncs the WAL at
    every commit, so a write that returned is durable even then. The cost is one fsync
    per transaction, which batched writes (one per ``add`` call or backfill batch)
    amortise.

    Args:
        path: the database file (created if missing), or ``":memory:"``.
        timeout: seconds to wait for another process's write lock.

    Example:
        >>> store = SQLiteStore(":memory:")
        >>> store.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
        1
        >>> store.versions()[0].name, store.last_seq()
        ('v0', 1)
        >>> store.close()
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = str(path)
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            with self._write() as cur:
                for statement in _SCHEMA_SQL.split(";"):
                    if statement.strip():
                        cur.execute(statement)
            schema = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
        except sqlite3.DatabaseError as exc:  # not a database, a folder, no permission...
            raise InputError(f"Gallery file {self.path!r} cannot be opened: {exc}") from None
        if schema != _SCHEMA:
            raise InputError(f"Gallery file {self.path!r} has schema {schema}, expected 1")

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (``BEGIN IMMEDIATE``); rolled back on any error."""
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        """One read transaction: every query inside sees the same snapshot."""
        cur = self._conn.cursor()
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("COMMIT")

    @staticmethod
    def _log(cur: sqlite3.Cursor, kind: str, count: int) -> int:
        cur.execute("INSERT INTO log (kind, count) VALUES (?, ?)", (kind, count))
        seq = cur.lastrowid
        if seq is None:  # pragma: no cover - sqlite always sets it after INSERT
            raise RuntimeError("SQLite did not return a sequence number")
        return int(seq)

    @staticmethod
    def _require_version(cur: sqlite3.Cursor, version: str, what: str = "version") -> None:
        if cur.execute("SELECT 1 FROM versions WHERE name=?", (version,)).fetchone() is None:
            raise fail(what, "a registered version", version)

    @staticmethod
    def _items_of(cur: sqlite3.Cursor, columns: str, ids: Sequence[str]) -> Iterator[Any]:
        """The rows ``SELECT id, <columns>`` of the stored items among ``ids``."""
        for start in range(0, len(ids), _CHUNK):
            chunk = tuple(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            yield from cur.execute(
                f"SELECT id, {columns} FROM items WHERE id IN ({marks})", chunk
            ).fetchall()

    @staticmethod
    def _labels_of(cur: sqlite3.Cursor, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        rows = SQLiteStore._items_of(cur, "label, version", ids)
        return {id_: (int(label), version) for id_, label, version in rows}

    @staticmethod
    def _missing(ids: Sequence[str], found: Mapping[str, Any]) -> None:
        missing = [i for i in ids if i not in found]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise InputError(
                f"Expected argument `ids` to hold stored ids, but {missing[0]!r}{more} "
                "is not in the gallery"
            )

    # -- registry -------------------------------------------------------------------------

    def last_seq(self) -> int:
        """The change sequence number of the last committed write (0 when none).

        Example:
            >>> SQLiteStore(":memory:").last_seq()
            0
        """
        row = self._conn.execute("SELECT MAX(seq) FROM log").fetchone()
        return int(row[0] or 0)

    def add_version(self, info: VersionInfo, compat: Sequence[Compatibility]) -> int:
        """Register a version and its compatibilities in one write; return its seq.

        Example:
            >>> s = SQLiteStore(":memory:")
            >>> s.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
            1
        """
        with self._write() as cur:
            if cur.execute("SELECT 1 FROM versions WHERE name=?", (info.name,)).fetchone():
                raise InputError(
                    f"Expected argument `name` to be a new version, but {info.name!r} "
                    "is already registered"
                )
            seq = self._log(cur, "version", 1)
            cur.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                (info.name, info.dim, info.metric, info.index, json.dumps(dict(info.options)), seq),
            )
            for c in compat:
                self._put_compat(cur, c, seq)
        return seq

    def _put_compat(self, cur: sqlite3.Cursor, c: Compatibility, seq: int) -> None:
        self._require_version(cur, c.query_version, "query_version")
        self._require_version(cur, c.gallery_version, "gallery_version")
        cur.execute(
            "INSERT OR REPLACE INTO compat VALUES (?, ?, ?, ?)",
            (c.query_version, c.gallery_version, json.dumps(dict(c.evidence)), seq),
        )

    def add_compatibility(self, compat: Compatibility) -> int:
        """Record (or overwrite) one compatibility; return the write's seq.

        Example:
            >>> s = SQLiteStore(":memory:")
            >>> for v in ("v0", "v1"):
            ...     _ = s.add_version(VersionInfo(v, 2, "l2", "flat"), [])
            >>> s.add_compatibility(Compatibility("v1", "v0", {"top1": 0.5}))
            3
        """
        with self._write() as cur:
            seq = self._log(cur, "compat", 1)
            self._put_compat(cur, compat, seq)
        return seq

    def versions(self) -> list[VersionInfo]:
        """All registered versions, in registration order.

        Example:
            >>> SQLiteStore(":memory:").versions()
            []
        """
        rows = self._conn.execute(
            "SELECT name, dim, metric, index_kind, options, seq FROM versions ORDER BY seq, name"
        ).fetchall()
        return [VersionInfo(r[0], int(r[1]), r[2], r[3], json.loads(r[4]), int(r[5])) for r in rows]

    def compatibility(self) -> list[Compatibility]:
        """All recorded compatibilities, in recording order.

        Example:
            >>> s = SQLiteStore(":memory:")
            >>> for v in ("v0", "v1"):
            ...     _ = s.add_version(VersionInfo(v, 2, "l2", "flat"), [])
            >>> _ = s.add_compatibility(Compatibility("v1", "v0", {"top1": 0.5}))
            >>> [(c.query_version, c.gallery_version, c.seq) for c in s.compatibility()]
            [('v1', 'v0', 3)]
        """
        rows = self._conn.execute(
            "SELECT query_version, gallery_version, evidence, seq FROM compat ORDER BY seq"
        ).fetchall()
        return [Compatibility(r[0], r[1], json.loads(r[2]), int(r[3])) for r in rows]

    # -- items ----------------------------------------------------------------------------

    def insert(
        self, ids: Sequence[str], version: str, vectors: npt.NDArray[np.float32], metadata: Metadata
    ) -> Changes:
        """Add new items (none may exist yet) under ``version``.

        Example:
            >>> import numpy as np
            >>> s = SQLiteStore(":memory:")
            >>> _ = s.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
            >>> s.insert(["a"], "v0", np.ones((1, 2), np.float32), None).upserts["v0"][0]
            array([1])
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        meta = self._meta_json(metadata, len(ids))
        with self._write() as cur:
            self._require_version(cur, version)
            start = int(cur.execute("SELECT value FROM meta WHERE key='next_label'").fetchone()[0])
            labels = np.arange(start, start + len(ids), dtype=np.int64)
            seq = self._log(cur, "add", len(ids))
            try:
                cur.executemany(
                    "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)",
                    zip(
                        labels.tolist(),
                        ids,
                        [version] * len(ids),
                        [row.tobytes() for row in vectors],
                        meta,
                        [seq] * len(ids),
                        strict=True,
                    ),
                )
            except sqlite3.IntegrityError:
                cur.execute("ROLLBACK")
                cur.execute("BEGIN IMMEDIATE")  # the context manager rolls this one back
                found = self._labels_of(cur, ids)
                first = next((i for i in ids if i in found), "?")
                raise InputError(
                    f"Expected argument `ids` to hold new ids, but {first!r} "
                    "is already in the gallery (use replace() to re-embed it)"
                ) from None
            cur.execute("UPDATE meta SET value=? WHERE key='next_label'", (start + len(ids),))
        return _changes(seq, version, labels, ids, vectors)

    @staticmethod
    def _meta_json(metadata: Metadata, n: int) -> list[str | None]:
        if metadata is None:
            return [None] * n
        return [None if m is None else json.dumps(dict(m)) for m in metadata]

    def replace(
        self, ids: Sequence[str], version: str, vectors: npt.NDArray[np.float32], metadata: Metadata
    ) -> Changes:
        """Move existing items (all must exist) to ``version`` with new vectors.

        ``metadata=None`` keeps each item's metadata.

        Example:
            >>> import numpy as np
            >>> s = SQLiteStore(":memory:")
            >>> _ = s.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
            >>> _ = s.insert(["a"], "v0", np.ones((1, 2), np.float32), None)
            >>> s.replace(["a"], "v0", np.zeros((1, 2), np.float32), None).seq
            3
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._write() as cur:
            self._require_version(cur, version)
            found = self._labels_of(cur, ids)
            self._missing(ids, found)
            seq = self._log(cur, "replace", len(ids))
            labels = np.array([found[i][0] for i in ids], dtype=np.int64)
            self._move(cur, labels, version, vectors, seq, metadata)
        return _changes(seq, version, labels, ids, vectors)

    @staticmethod
    def _move(
        cur: sqlite3.Cursor,
        labels: npt.NDArray[np.int64],
        version: str,
        vectors: npt.NDArray[np.float32],
        seq: int,
        metadata: Metadata,
    ) -> None:
        """Move items to ``version`` with new vectors; ``metadata=None`` keeps theirs."""
        n = len(labels)
        columns: list[Sequence[Any]] = [[version] * n, [row.tobytes() for row in vectors]]
        sets = "version=?, vector=?"
        if metadata is not None:
            columns.append(SQLiteStore._meta_json(metadata, n))
            sets += ", metadata=?"
        cur.executemany(
            f"UPDATE items SET {sets}, seq=? WHERE label=?",
            zip(*columns, [seq] * n, labels.tolist(), strict=True),
        )

    def delete(self, ids: Sequence[str]) -> Changes:
        """Remove existing items (all must exist).

        Example:
            >>> import numpy as np
            >>> s = SQLiteStore(":memory:")
            >>> _ = s.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
            >>> _ = s.insert(["a"], "v0", np.ones((1, 2), np.float32), None)
            >>> s.delete(["a"]).removed
            array([1])
        """
        with self._write() as cur:
            found = self._labels_of(cur, ids)
            self._missing(ids, found)
            seq = self._log(cur, "remove", len(ids))
            labels = np.array([found[i][0] for i in ids], dtype=np.int64)
            cur.executemany("DELETE FROM items WHERE label=?", ((x,) for x in labels.tolist()))
            cur.executemany(
                "INSERT INTO removed VALUES (?, ?)", ((x, seq) for x in labels.tolist())
            )
        return Changes(seq, labels, {})

    def get(self, ids: Sequence[str]) -> list[ItemRecord]:
        """The stored items, in the order of ``ids`` (all must exist).

        Example:
            >>> import numpy as np
            >>> s = SQLiteStore(":memory:")
            >>> _ = s.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
            >>> _ = s.insert(["a"], "v0", np.ones((1, 2), np.float32), [{"t": 1}])
            >>> s.get(["a"])[0].metadata
            {'t': 1}
        """
        with self._read() as cur:
            rows = {
                id_: ItemRecord(
                    id_,
                    version,
                    np.frombuffer(blob, dtype=np.float32).copy(),
                    None if meta is None else json.loads(meta),
                )
                for id_, version, blob, meta in self._items_of(
                    cur, "version, vector, metadata", ids
                )
            }
        self._missing(ids, rows)
        return [rows[i] for i in ids]

    def changes_since(self, seq: int) -> Changes:
        """Everything changed after ``seq`` (``0``: the whole gallery), one snapshot.

        Example:
            >>> import numpy as np
            >>> s = SQLiteStore(":memory:")
            >>> _ = s.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
            >>> _ = s.insert(["a", "b"], "v0", np.ones((2, 2), np.float32), None)
            >>> s.changes_since(0).upserts["v0"][1].tolist()
            ['a', 'b']
        """
        upserts: dict[str, Upsert] = {}
        with self._read() as cur:
            last = int(cur.execute("SELECT MAX(seq) FROM log").fetchone()[0] or 0)
            if seq > 0:
                removed = np.array(
                    [r[0] for r in cur.execute("SELECT label FROM removed WHERE seq>?", (seq,))],
                    dtype=np.int64,
                )
            else:
                removed = np.zeros(0, np.int64)
            dims = dict(cur.execute("SELECT name, dim FROM versions").fetchall())
            for version, dim in dims.items():
                rows = cur.execute(
                    "SELECT label, id, vector FROM items WHERE version=? AND seq>? ORDER BY label",
                    (version, seq),
                ).fetchall()
                if not rows:
                    continue
                labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                ids = np.empty(len(rows), dtype=object)
                ids[:] = [r[1] for r in rows]
                vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
                upserts[version] = (labels, ids, vectors.reshape(len(rows), int(dim)).copy())
        return Changes(last, removed, upserts)

    def versions_of(self, ids: Sequence[str]) -> dict[str, str]:
        """The version of each of ``ids`` that is stored (absent ids are left out).

        Example:
            >>> SQLiteStore(":memory:").versions_of(["a"])
            {}
        """
        with self._read() as cur:
            return {i: v for i, (_, v) in self._labels_of(cur, ids).items()}

    def ids_not_at(self, version: str) -> list[str]:
        """Ids of the items not under ``version``, sorted.

        Example:
            >>> SQLiteStore(":memory:").ids_not_at("v1")
            []
        """
        rows = self._conn.execute(
            "SELECT id FROM items WHERE version<>? ORDER BY id", (version,)
        ).fetchall()
        return [r[0] for r in rows]

    # -- backfill plans -------------------------------------------------------------------

    def plan_info(self, job: str) -> PlanInfo | None:
        """The stored plan of ``job``, or ``None``.

        Example:
            >>> SQLiteStore(":memory:").plan_info("default") is None
            True
        """
        with self._read() as cur:
            row = cur.execute("SELECT to_version, policy FROM plans WHERE job=?", (job,)).fetchone()
            if row is None:
                return None
            total, done = cur.execute(
                "SELECT COUNT(*), COUNT(done_seq) FROM plan_items WHERE job=?", (job,)
            ).fetchone()
        return PlanInfo(job, row[0], json.loads(row[1]), int(total), int(done))

    def extend_plan(
        self, job: str, to_version: str, policy: Mapping[str, Any], ids: Sequence[str]
    ) -> int:
        """Create the plan of ``job`` or append ``ids`` to it; return the write's seq.

        Example:
            >>> s = SQLiteStore(":memory:")
            >>> _ = s.add_version(VersionInfo("v1", 2, "l2", "flat"), [])
            >>> s.extend_plan("job", "v1", {"policy": "random"}, ["b", "a"])
            2
            >>> s.plan("job")[1]
            ['b', 'a']
        """
        with self._write() as cur:
            self._require_version(cur, to_version, "to_version")
            seq = self._log(cur, "plan", len(ids))
            row = cur.execute("SELECT to_version FROM plans WHERE job=?", (job,)).fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO plans VALUES (?, ?, ?, ?)",
                    (job, to_version, json.dumps(dict(policy)), seq),
                )
            elif row[0] != to_version:
                raise InputError(
                    f"Expected argument `job` {job!r} to re-embed under {row[0]!r}, "
                    f"but got to_version={to_version!r}"
                )
            start = cur.execute(
                "SELECT COALESCE(MAX(pos) + 1, 0) FROM plan_items WHERE job=?", (job,)
            ).fetchone()[0]
            cur.executemany(
                "INSERT INTO plan_items (job, pos, id) VALUES (?, ?, ?)",
                ((job, start + i, id_) for i, id_ in enumerate(ids)),
            )
        return seq

    def plan(self, job: str) -> tuple[npt.NDArray[np.int64], list[str], npt.NDArray[np.int64]]:
        """The whole plan: positions, ids and ``done_seq`` (0 while not done).

        Example:
            >>> SQLiteStore(":memory:").plan("job")[1]
            []
        """
        rows = self._conn.execute(
            "SELECT pos, id, COALESCE(done_seq, 0) FROM plan_items WHERE job=? ORDER BY pos", (job,)
        ).fetchall()
        return (
            np.array([r[0] for r in rows], dtype=np.int64),
            [r[1] for r in rows],
            np.array([r[2] for r in rows], dtype=np.int64),
        )

    def pending(self, job: str) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Plan positions not done yet and their ids, in plan order.

        Example:
            >>> SQLiteStore(":memory:").pending("job")[1]
            []
        """
        rows = self._conn.execute(
            "SELECT pos, id FROM plan_items WHERE job=? AND done_seq IS NULL ORDER BY pos", (job,)
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def commit_batch(
        self,
        job: str,
        positions: Sequence[int],
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        version: str,
    ) -> tuple[Changes, int, int]:
        """Move a batch to ``version`` and mark its positions done, in one transaction.

        Items that are gone, already under ``version``, or whose position another worker
        already marked done are skipped (their vectors are not written). A NaN row of
        ``vectors`` means "not embedded": if that item needs moving after all (another
        process moved it back), its position stays pending.

        Returns:
            ``(changes, moved, skipped)``.

        Example:
            >>> import numpy as np
            >>> s = SQLiteStore(":memory:")
            >>> for v in ("v0", "v1"):
            ...     _ = s.add_version(VersionInfo(v, 2, "l2", "flat"), [])
            >>> _ = s.insert(["a"], "v0", np.ones((1, 2), np.float32), None)
            >>> _ = s.extend_plan("job", "v1", {}, ["a"])
            >>> s.commit_batch("job", [0], ["a"], np.zeros((1, 2), np.float32), "v1")[1:]
            (1, 0)
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        have = np.asarray(np.isfinite(vectors).all(axis=1), dtype=bool)
        with self._write() as cur:
            seq = self._log(cur, "backfill", len(ids))
            found = self._labels_of(cur, ids)
            keep: list[int] = []
            outcomes: list[tuple[int, str, str, int]] = []
            for row, (pos, id_) in enumerate(zip(positions, ids, strict=True)):
                state = cur.execute(
                    "SELECT done_seq FROM plan_items WHERE job=? AND pos=?", (job, int(pos))
                ).fetchone()
                if state is None or state[0] is not None:
                    continue  # done by another worker: leave it as it is
                hit = found.get(id_)
                moving = hit is not None and hit[1] != version
                if moving and not have[row]:
                    continue  # needs embedding after all: stays pending
                if moving:
                    keep.append(row)
                outcomes.append((seq, "embedded" if moving else "skipped", job, int(pos)))
            cur.executemany(
                "UPDATE plan_items SET done_seq=?, outcome=? WHERE job=? AND pos=?", outcomes
            )
            labels = np.array([found[ids[r]][0] for r in keep], dtype=np.int64)
            moved = vectors[keep]
            self._move(cur, labels, version, moved, seq, None)
        changes = _changes(seq, version, labels, [ids[r] for r in keep], moved)
        return changes, len(keep), len(outcomes) - len(keep)

    def close(self) -> None:
        """Close the connection.

        Example:
            >>> SQLiteStore(":memory:").close()
        """
        self._conn.close()
