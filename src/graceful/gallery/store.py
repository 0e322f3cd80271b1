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

:class:`~graceful.gallery.PostgresStore` implements the same protocol on a PostgreSQL
server (many writers on many machines); the gallery talks only to the protocol.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from graceful._validation import check_bool, check_real, fail
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
_APPLICATION_ID = 0x67726366  # "grcf" in the SQLite header: the file is a graceful gallery
_TABLES = frozenset(
    {"meta", "log", "versions", "compat", "items", "removed", "plans", "plan_items"}
)
# A gallery written before query adapters existed lacks this table: it is optional (not in
# _TABLES), read as empty when absent and created by the first write of an adapter.
_ADAPTERS_SQL = """CREATE TABLE IF NOT EXISTS compat_adapters (
    query_version TEXT NOT NULL, gallery_version TEXT NOT NULL,
    adapter BLOB NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (query_version, gallery_version))"""
# New galleries get the optional table from the start.
_SCHEMA_SQL = (
    """
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
    + _ADAPTERS_SQL
    + ";\n"
)


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
        adapter: ``None`` when ``query_version`` vectors live in ``gallery_version``'s
            space; else a saved :class:`~graceful.retrieval.QueryAdapter`
            (:meth:`~graceful.retrieval.QueryAdapter.to_bytes`) that maps the queries
            there first.

    Example:
        >>> Compatibility("v1", "v0", {"top1_new_old": 0.62}).gallery_version
        'v0'
    """

    query_version: str
    gallery_version: str
    evidence: Mapping[str, Any]
    seq: int = 0
    adapter: bytes | None = field(default=None, repr=False)


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
    """What a gallery needs from its storage (:class:`SQLiteStore`, or a PostgreSQL server).

    Every method that writes runs in one transaction, takes the next change sequence
    number and raises :class:`~graceful.errors.InputError` (changing nothing) when the
    write is not possible (duplicate version or id, unknown id or version). A failure of
    the storage itself (not a gallery, damaged, locked, read-only, full) is an
    :class:`~graceful.errors.InputError` too, one line naming the store and what is wrong.

    Example:
        >>> isinstance(SQLiteStore(":memory:"), GalleryStore)
        True
    """

    def identity(self) -> str | None:
        """A random id of the gallery drawn at its creation (``None``: it has none)."""
        ...

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
        """Create the plan of ``job`` or append ``ids`` (not pending, not yet moved); its seq."""
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


# SQLite's primary result codes (https://sqlite.org/rescode.html); ``sqlite3`` exports
# them, and ``sqlite_errorcode`` on its errors, only from Python 3.11 on
_PERM, _BUSY, _LOCKED, _NOMEM, _READONLY = 3, 5, 6, 7, 8
_IOERR, _CORRUPT, _FULL, _CANTOPEN, _AUTH, _NOTADB = 10, 11, 13, 14, 23, 26
_CODE_OF_TEXT = {  # SQLite's text of each code: what Python 3.10 gives instead
    "database is locked": _BUSY,
    "database table is locked": _LOCKED,
    "attempt to write a readonly database": _READONLY,
    "disk I/O error": _IOERR,
    "database disk image is malformed": _CORRUPT,
    "database or disk is full": _FULL,
    "unable to open database file": _CANTOPEN,
    "file is not a database": _NOTADB,
    "authorization denied": _AUTH,
    "access permission denied": _PERM,
    "out of memory": _NOMEM,
}


def _primary(exc: BaseException) -> int:
    """The primary SQLite result code of ``exc`` (``-1`` when it has none).

    Example:
        >>> _primary(sqlite3.OperationalError("database is locked"))
        5
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    return _CODE_OF_TEXT.get(str(exc).strip(), -1)


def _row_bytes(vectors: npt.NDArray[np.float32]) -> list[bytes]:
    """Each row of a C-contiguous float32 ``(n, d)`` array as its raw bytes.

    Example:
        >>> _row_bytes(np.array([[1.0, 0.0]], np.float32)) == [np.float32([1, 0]).tobytes()]
        True
    """
    if vectors.size == 0:
        return [b""] * len(vectors)
    rows = vectors.view(np.dtype((np.void, vectors.shape[1] * 4))).ravel().tolist()
    return cast(list[bytes], rows)


def _changes(
    seq: int, version: str, labels: npt.NDArray[np.int64], ids: Sequence[str], vectors: Any
) -> Changes:
    """The :class:`Changes` of a write that put ``ids`` (at ``labels``) under ``version``."""
    obj = np.empty(len(ids), dtype=object)
    obj[:] = list(ids)
    upserts = {version: (labels, obj, vectors)} if len(ids) else {}
    return Changes(seq, np.zeros(0, np.int64), upserts)


def _plan_additions(
    ids: Sequence[str],
    to_version: str,
    stored: Mapping[str, tuple[int, str]],
    plan_rows: Iterable[tuple[str, Any]],
) -> list[str]:
    """The ``ids`` a plan extension appends, judged inside the write that appends them.

    ``stored``: ``(label, version)`` of each stored id (``_labels_of``); ``plan_rows``:
    ``(id, pending)`` for each of the plan's positions. An id is left out when one of its
    positions is pending, when it is already under ``to_version``, or when it was planned
    before and is gone since: a caller's list may be stale (read before another worker
    planned and moved the same items), and appending those would plan an item twice.
    """
    planned: dict[str, bool] = {}
    for id_, waiting in plan_rows:
        planned[id_] = planned.get(id_, False) or bool(waiting)
    return [
        i
        for i in ids
        if not planned.get(i, False)
        and (i not in stored or stored[i][1] != to_version)
        and not (i in planned and i not in stored)
    ]


def _missing(ids: Sequence[str], found: Mapping[str, Any]) -> None:
    """Refuse ``ids`` that are not among ``found`` (one line naming the first)."""
    missing = [i for i in ids if i not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(
            f"Expected argument `ids` to hold stored ids, but {missing[0]!r}{more} "
            "is not in the gallery"
        )


class SQLiteStore:
    """The embedded default :class:`GalleryStore`: one SQLite file (stdlib ``sqlite3``).

    WAL journal mode lets readers (a searching process) run while a writer (a backfill)
    commits. ``synchronous=FULL``: in WAL mode ``NORMAL`` survives a killed process but
    may lose the last commits on power loss or an OS crash; ``FULL`` fsyncs the WAL at
    every commit, so a write that returned is durable even then. The cost is one fsync
    per transaction, which batched writes (one per ``add`` call or backfill batch)
    amortise.

    Opening never writes: the schema is created (and WAL switched on) only when the
    file is new (missing, or an empty SQLite file), and only with ``create=True``. An
    existing file must be a graceful gallery (its tables and format marker); any other
    SQLite file, or a file that is not a database, is refused untouched. Every SQLite
    failure, on opening or later (not a database, corrupt, truncated, locked by another
    writer past ``timeout``, read-only, disk full, a schema of another graceful version),
    is an :class:`~graceful.errors.InputError` naming the file and what was wrong.

    Args:
        path: the database file, or ``":memory:"``.
        timeout: seconds to wait for another process's write lock.
        create: create the gallery if ``path`` is missing or empty; with ``False`` such
            a path is refused.
        read_only: open for reading only (SQLite's ``mode=ro``): nothing is ever written
            and every write raises :class:`~graceful.errors.InputError`. A read-only file
            or folder can be read without it (a write then raises the same error).

    Attributes:
        path: the database file, as given.
        read_only: whether writes are refused: ``read_only=True``, a file this process
            cannot write, or a gallery in a folder that cannot be written (read as
            SQLite's ``immutable``).

    Example:
        >>> store = SQLiteStore(":memory:")
        >>> store.add_version(VersionInfo("v0", 2, "l2", "flat"), [])
        1
        >>> store.versions()[0].name, store.last_seq()
        ('v0', 1)
        >>> store.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 60.0,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = str(path)
        self.read_only = check_bool("read_only", read_only)
        create = check_bool("create", create)
        self._timeout = check_real("timeout", timeout, low=0)
        self._why_read_only = "it was opened with read_only=True"
        memory = self.path == ":memory:"
        if memory and self.read_only:
            raise InputError("Expected argument `read_only` to be False for a ':memory:' gallery")
        if not memory:
            self._check_file(create=create and not self.read_only)
            writable = os.access(self.path, os.W_OK)
            if not self.read_only and os.path.isfile(self.path) and not writable:
                self.read_only = True
                self._why_read_only = "the file cannot be written"
        mode = "ro" if self.read_only else ("rwc" if create else "rw")
        self._conn = self._connect(mode)
        try:
            self._open(create=create and not self.read_only)
        except BaseException:
            self._conn.close()
            raise

    # -- opening --------------------------------------------------------------------------

    @property
    def _name(self) -> str:
        return f"Gallery file {self.path!r}"

    def _check_file(self, *, create: bool) -> None:
        """Refuse, before SQLite opens it, a path that cannot hold a gallery."""
        file = Path(self.path)
        try:
            if file.is_dir():
                raise InputError(f"{self._name} is a folder, not a file")
            if file.exists() and not file.is_file():
                raise InputError(f"{self._name} is not a regular file")
            if not file.exists():
                if not create:
                    raise InputError(f"{self._name} does not exist")
                if not file.parent.is_dir():
                    raise InputError(
                        f"{self._name} cannot be created: its folder {str(file.parent)!r} "
                        "does not exist"
                    )
                return
            with file.open("rb") as handle:
                head = handle.read(100)
                size = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            raise InputError(f"{self._name} cannot be read: {exc.strerror or exc}") from None
        if not head:
            return  # an empty file is an empty database: a new gallery, with create=True
        if not head.startswith(b"SQLite format 3\x00"):
            raise InputError(f"{self._name} is not a SQLite database")
        truncated = self._truncated(head, size)
        if truncated:
            raise InputError(f"{self._name} is truncated: {truncated}")

    def _truncated(self, head: bytes, size: int) -> str | None:
        """Why the file is shorter than its SQLite header says, or ``None``."""
        if len(head) < 100:
            return f"{size} bytes, shorter than a SQLite header"
        for suffix in ("-wal", "-journal"):  # SQLite recovers from these: let it
            journal = Path(self.path + suffix)
            if journal.is_file() and journal.stat().st_size > 0:
                return None
        page_size = int.from_bytes(head[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(head[28:32], "big")
        if head[24:28] == head[92:96] and size < pages * page_size:  # the page count is valid
            return f"{size} bytes, its header says {pages * page_size}"
        return None

    def _connect(self, query: str) -> sqlite3.Connection:
        """A connection to the file with the URI parameters ``query`` (``mode=...``)."""
        if self.path == ":memory:":
            target, uri = ":memory:", False
        else:
            target, uri = f"{Path(self.path).absolute().as_uri()}?mode={query}", True
        try:
            return sqlite3.connect(target, timeout=self._timeout, isolation_level=None, uri=uri)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _open(self, *, create: bool) -> None:
        """Check that the database is a gallery of this schema; create a new one if asked."""
        try:
            self._conn.execute("PRAGMA synchronous=FULL")  # per connection: no write
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens it
        except sqlite3.Error as exc:
            if _primary(exc) not in (_CANTOPEN, _READONLY) or not self._cannot_share():
                raise self._error(exc) from None
            # a WAL gallery in a folder we cannot write (so no writer can use it either):
            # SQLite cannot create its shared-memory file there (SQLITE_READONLY_DIRECTORY,
            # or CANTOPEN in older versions), so read the file as it is
            self._conn.close()
            self.read_only = True
            self._why_read_only = "its folder cannot be written"
            self._conn = self._connect("ro&immutable=1")
        if self._state() is None:
            if not create:
                raise InputError(f"{self._name} is empty: it holds no graceful gallery")
            self._create()

    def _cannot_share(self) -> bool:
        """Whether SQLite could not open the WAL's shared files (a read-only folder)."""
        if self.path == ":memory:":
            return False
        folder = Path(self.path).absolute().parent
        wal = Path(self.path + "-wal")
        return not os.access(folder, os.W_OK) and not (wal.is_file() and wal.stat().st_size)

    def _state(self) -> int | None:
        """The gallery's schema number, ``None`` for an empty database; else refuse it.

        A gallery has the tables of :data:`_TABLES` and a ``meta`` row ``schema``; those
        written since the format marker was introduced also carry :data:`_APPLICATION_ID`
        in the SQLite header, and a file with another application's id is never ours.
        """
        foreign = InputError(
            f"{self._name} is a SQLite database of another application, not a graceful "
            "gallery (left unchanged)"
        )
        with self._read() as cur:
            app = int(cur.execute("PRAGMA application_id").fetchone()[0])
            user = int(cur.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in cur.execute("SELECT name FROM sqlite_master")}
            if not tables and app == 0 and user == 0:
                return None
            ours = app == _APPLICATION_ID
            if not ours and (app != 0 or not tables >= _TABLES):
                raise foreign
            try:
                row = cur.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            except sqlite3.OperationalError:  # no `meta` table of our shape
                row = None
        if row is None:
            if ours:
                raise InputError(f"{self._name} is damaged: it has no schema number")
            raise foreign
        if row[0] != _SCHEMA:
            raise InputError(
                f"{self._name} has gallery schema {row[0]!r}, but this version of graceful "
                f"reads schema {_SCHEMA}: open it with the graceful version that wrote it"
            )
        missing = sorted(_TABLES - tables)
        if missing:
            raise InputError(f"{self._name} is damaged: its tables {missing} are missing")
        return _SCHEMA

    def _create(self) -> None:
        """Create the schema in an empty database (once, even with racing processes)."""
        with self._write() as cur:
            if cur.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
                for statement in _SCHEMA_SQL.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                cur.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('gallery_id', ?)", (secrets.randbits(62),)
                )
        if self.path != ":memory:":
            with self._guard():
                self._conn.execute("PRAGMA journal_mode=WAL")
        self._state()  # another process may have created something else meanwhile

    # -- plumbing -------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> InputError:
        """The one-line :class:`InputError` of a failure of SQLite."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, sqlite3.ProgrammingError) and "closed" in text:
            return InputError(f"{self._name} is closed")
        primary = _primary(exc)
        if primary == _CORRUPT and self.path != ":memory:":
            try:
                with open(self.path, "rb") as handle:
                    truncated = self._truncated(handle.read(100), os.fstat(handle.fileno()).st_size)
            except OSError:
                truncated = None
            if truncated:
                return InputError(f"{self._name} is truncated: {truncated}")
        what = {
            _NOTADB: "is not a SQLite database",
            _CORRUPT: "is corrupt",
            _BUSY: (f"is locked by another writer: gave up after waiting {self._timeout:g} s"),
            _LOCKED: "is locked by another connection",
            _READONLY: "is read-only: cannot write to it",
            _FULL: "cannot be written: the disk is full",
            _CANTOPEN: "cannot be opened",
            _IOERR: "cannot be read or written (an I/O error)",
            _PERM: "cannot be accessed (permission denied)",
            _AUTH: "cannot be accessed (permission denied)",
            _NOMEM: "cannot be read: SQLite is out of memory",
        }.get(primary, "failed in SQLite")
        if "no such table" in text or "no such column" in text:
            what = "does not hold the schema of a graceful gallery"
        return InputError(f"{self._name} {what} ({text})")

    @contextmanager
    def _guard(self, *, decoding: bool = False) -> Iterator[None]:
        """Turn a failure of SQLite inside into an :class:`InputError`.

        With ``decoding``, also a stored value that cannot be read back (invalid JSON, a
        vector blob of the wrong size): the file was damaged or written by someone else.
        """
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        except InputError:
            raise
        except (ValueError, TypeError) as exc:
            if not decoding:
                raise
            raise InputError(
                f"{self._name} is damaged: it holds a value graceful cannot read "
                f"({type(exc).__name__}: {' '.join(str(exc).split())})"
            ) from None

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):  # the failure being raised says more
                self._conn.execute("ROLLBACK")

    @contextmanager
    def _transaction(self, begin: str, *, decoding: bool = False) -> Iterator[sqlite3.Cursor]:
        """One transaction opened by ``begin``, committed at the end, rolled back on error."""
        with self._guard(decoding=decoding):
            cur = self._conn.cursor()
            cur.execute(begin)
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (``BEGIN IMMEDIATE``); rolled back on any error."""
        if self.read_only:
            raise InputError(f"{self._name} is read-only ({self._why_read_only}): cannot write")
        with self._transaction("BEGIN IMMEDIATE") as cur:
            yield cur

    def _read(self) -> AbstractContextManager[sqlite3.Cursor]:
        """One read transaction: every query inside sees the same snapshot."""
        return self._transaction("BEGIN", decoding=True)

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

    _missing = staticmethod(_missing)

    # -- registry -------------------------------------------------------------------------

    def identity(self) -> str | None:
        """A random id drawn when the gallery was created; ``None`` for one from before ids.

        Saved indexes (:meth:`~graceful.gallery.Gallery.save_indexes`) record it, so that
        an index folder is never taken for another gallery's.

        Example:
            >>> SQLiteStore(":memory:").identity().startswith("sqlite:")
            True
        """
        with self._read() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key='gallery_id'").fetchone()
        return None if row is None else f"sqlite:{int(row[0])}"

    def last_seq(self) -> int:
        """The change sequence number of the last committed write (0 when none).

        Example:
            >>> SQLiteStore(":memory:").last_seq()
            0
        """
        with self._read() as cur:
            row = cur.execute("SELECT MAX(seq) FROM log").fetchone()
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
        pair = (c.query_version, c.gallery_version)
        if c.adapter is not None:
            cur.execute(_ADAPTERS_SQL)
            cur.execute(
                "INSERT OR REPLACE INTO compat_adapters VALUES (?, ?, ?, ?)",
                (*pair, sqlite3.Binary(c.adapter), seq),
            )
        elif self._has_adapters(cur):  # recorded again without one: the old one goes
            cur.execute(
                "DELETE FROM compat_adapters WHERE query_version=? AND gallery_version=?", pair
            )

    @staticmethod
    def _has_adapters(cur: sqlite3.Cursor) -> bool:
        return bool(
            cur.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='compat_adapters'"
            ).fetchone()
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
        with self._read() as cur:
            rows = cur.execute(
                "SELECT name, dim, metric, index_kind, options, seq FROM versions"
                " ORDER BY seq, name"
            ).fetchall()
            return [
                VersionInfo(r[0], int(r[1]), r[2], r[3], json.loads(r[4]), int(r[5])) for r in rows
            ]

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
        with self._read() as cur:
            rows = cur.execute(
                "SELECT query_version, gallery_version, evidence, seq FROM compat ORDER BY seq"
            ).fetchall()
            adapters: dict[tuple[str, str], bytes] = {}
            if self._has_adapters(cur):
                adapters = {
                    (r[0], r[1]): bytes(r[2])
                    for r in cur.execute(
                        "SELECT query_version, gallery_version, adapter FROM compat_adapters"
                    )
                }
            return [
                Compatibility(r[0], r[1], json.loads(r[2]), int(r[3]), adapters.get((r[0], r[1])))
                for r in rows
            ]

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
                        _row_bytes(vectors),
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
        columns: list[Sequence[Any]] = [[version] * n, _row_bytes(vectors)]
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
            # after a seq, look the rows up by seq: without the hint SQLite scans the whole
            # table in label order to find the few changed rows
            table = "items" if seq <= 0 else "items INDEXED BY items_seq"
            for version, dim in dims.items():
                rows = cur.execute(
                    f"SELECT label, id, vector FROM {table} WHERE version=? AND seq>? "
                    "ORDER BY label",
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
        with self._read() as cur:
            rows = cur.execute(
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

        Ids already pending in the plan, already under ``to_version``, or planned before and
        removed since are not appended, so that two workers that extend one plan from
        stale lists never plan an item twice.

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
            stored = self._labels_of(cur, ids)
            rows = cur.execute("SELECT id, done_seq IS NULL FROM plan_items WHERE job=?", (job,))
            new = _plan_additions(ids, to_version, stored, rows)
            cur.executemany(
                "INSERT INTO plan_items (job, pos, id) VALUES (?, ?, ?)",
                ((job, start + i, id_) for i, id_ in enumerate(new)),
            )
        return seq

    def plan(self, job: str) -> tuple[npt.NDArray[np.int64], list[str], npt.NDArray[np.int64]]:
        """The whole plan: positions, ids and ``done_seq`` (0 while not done).

        Example:
            >>> SQLiteStore(":memory:").plan("job")[1]
            []
        """
        with self._read() as cur:
            rows = cur.execute(
                "SELECT pos, id, COALESCE(done_seq, 0) FROM plan_items WHERE job=? ORDER BY pos",
                (job,),
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
        with self._read() as cur:
            rows = cur.execute(
                "SELECT pos, id FROM plan_items WHERE job=? AND done_seq IS NULL ORDER BY pos",
                (job,),
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
