"""A :class:`~graceful.gallery.GalleryStore` on a PostgreSQL server: :class:`PostgresStore`.

The same contract as :class:`~graceful.gallery.SQLiteStore` (items, versions, the
compatibility registry with its evidence and adapters, backfill plans, sequence-numbered
writes, :meth:`~PostgresStore.changes_since`), for a gallery whose source of truth is a
server that many processes on many machines write to at once.

**Writes are serialised on one row.** Every write transaction starts by taking the next
change sequence number with ``UPDATE meta SET value = value + 1 WHERE key = 'seq'``; that
row lock is held until the transaction commits, so writers commit one after another in
``seq`` order. That is what makes :meth:`~PostgresStore.changes_since` exact: a reader
that has seen ``seq`` ``s`` has seen every write numbered up to ``s`` (with a plain
``SEQUENCE`` a write numbered ``s - 1`` could commit after one numbered ``s`` and be
missed). The expensive work (embedding a batch, a Ray worker's model call) runs in
parallel; only the commits queue, each a few set-based statements.

**Failures are one line and never half a write.** Each write is one transaction: a server
that is unreachable, goes away mid-batch or refuses the login, a wrong password, a schema
of another graceful version, a lock held past ``timeout``, a missing privilege, are each
an :class:`~graceful.errors.InputError` naming the server, the database and the schema,
and the server rolls back whatever was sent. When the connection is lost at ``COMMIT``
itself, the store reconnects and looks for the write's token in the log, so it reports
exactly whether the write was applied. A lost connection is reopened at the start of the
next call.

Needs the ``postgres`` extra (``pip install 'graceful[postgres]'``: psycopg 3).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from graceful._extras import require
from graceful._validation import check_bool, check_real, check_str, fail
from graceful.errors import InputError

from .store import (
    Changes,
    Compatibility,
    ItemRecord,
    Metadata,
    PlanInfo,
    Upsert,
    VersionInfo,
    _changes,
    _missing,
    _plan_additions,
    _row_bytes,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

_SCHEMA = 1
_APPLICATION_ID = 0x67726366  # "grcf": the same marker as the SQLite header's
_TABLES = frozenset(
    {"meta", "log", "versions", "compat", "items", "removed", "plans", "plan_items"}
)
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SCHEMA_SQL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE log (
    seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, count BIGINT NOT NULL,
    token TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE versions (
    name TEXT PRIMARY KEY, dim INTEGER NOT NULL, metric TEXT NOT NULL,
    index_kind TEXT NOT NULL, options TEXT NOT NULL, seq BIGINT NOT NULL);
CREATE TABLE compat (
    query_version TEXT NOT NULL REFERENCES versions(name),
    gallery_version TEXT NOT NULL REFERENCES versions(name),
    evidence TEXT NOT NULL, seq BIGINT NOT NULL, adapter BYTEA,
    PRIMARY KEY (query_version, gallery_version));
CREATE TABLE items (
    label BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL REFERENCES versions(name),
    vector BYTEA NOT NULL, metadata TEXT, seq BIGINT NOT NULL);
CREATE INDEX items_seq ON items(seq);
CREATE INDEX items_version ON items(version);
CREATE TABLE removed (label BIGINT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE INDEX removed_seq ON removed(seq);
CREATE TABLE plans (
    job TEXT PRIMARY KEY, to_version TEXT NOT NULL REFERENCES versions(name),
    policy TEXT NOT NULL, seq BIGINT NOT NULL);
CREATE TABLE plan_items (
    job TEXT NOT NULL REFERENCES plans(job), pos BIGINT NOT NULL,
    id TEXT NOT NULL, done_seq BIGINT, outcome TEXT,
    PRIMARY KEY (job, pos))
"""

# SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) -> what it means
_WHAT = {
    "55P03": "is locked by another writer",  # lock_not_available (lock_timeout)
    "42501": "cannot be accessed (permission denied)",  # insufficient_privilege
    "25006": "is read-only on this server: cannot write",  # read_only_sql_transaction
    "53100": "cannot be written: the server's disk is full",  # disk_full
    "53200": "cannot be written: the server is out of memory",  # out_of_memory
    "53300": "cannot be opened: the server has too many connections",
    "57014": "was cancelled (a statement timeout or a cancel request)",  # query_canceled
    "40P01": "was in a deadlock with another transaction",  # deadlock_detected
    "42P01": "does not hold the schema of a graceful gallery",  # undefined_table
    "42703": "does not hold the schema of a graceful gallery",  # undefined_column
    "3D000": "names a database that does not exist",  # invalid_catalog_name
}


def _psycopg() -> ModuleType:
    (module,) = require("postgres", "graceful.gallery.PostgresStore", ("psycopg",))
    return module


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _server_text(exc: BaseException) -> str:
    """The server's or libpq's own words, one line, without psycopg's prefix."""
    text = _one_line(str(exc)) or type(exc).__name__
    return text.removeprefix("connection failed: ")


def _reopen(conninfo: str, options: dict[str, Any]) -> PostgresStore:
    return PostgresStore(conninfo, **options)


class PostgresStore:
    """A :class:`~graceful.gallery.GalleryStore` in a PostgreSQL schema (psycopg 3).

    One gallery is one PostgreSQL schema (``schema``, default ``"graceful"``) of one
    database, so a database can hold several galleries. Several processes (servers,
    ingesters, backfill workers on other machines) may open the same gallery: each opens
    its own :class:`PostgresStore`, writes commit one at a time in ``seq`` order, and
    each :class:`~graceful.gallery.Gallery` follows the others' writes with
    :meth:`~graceful.gallery.Gallery.refresh`. Reads run in a ``REPEATABLE READ``
    snapshot, never blocked by writers.

    Opening never writes unless the schema holds no tables yet and ``create=True``; a
    schema with another application's tables, or a gallery of another schema version, is
    refused untouched. Ids and plans are ordered by code point (``COLLATE "C"``), as
    Python and SQLite order them, whatever the database's collation.

    A store pickles as its connection parameters (e.g. for a Ray actor), opening a new
    connection where it is unpickled: give the password through ``PGPASSWORD`` or a
    ``~/.pgpass`` file rather than in ``conninfo`` if the pickle travels.

    Args:
        conninfo: a libpq connection string (``"host=db port=5432 dbname=photos
            user=gallery"``) or URI (``"postgresql://gallery@db/photos"``); what it omits
            comes from the ``PG*`` environment variables, as for ``psql``.
        schema: the PostgreSQL schema that holds the gallery (lower-case letters, digits
            and ``_``; created with its tables when missing and ``create=True``).
        create: create the gallery when the schema is missing or empty; with ``False``
            that is refused.
        read_only: refuse every write (transactions are ``READ ONLY`` too).
        timeout: seconds a write waits for another writer's lock (``lock_timeout``)
            before it gives up.
        connect_timeout: seconds to wait for the server to answer a connection.

    Attributes:
        schema: the gallery's schema.
        read_only: whether writes are refused.

    Example:
        >>> PostgresStore("host=127.0.0.1 port=1 dbname=photos connect_timeout=5")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: PostgreSQL gallery 'graceful' in database 'photos' at \
127.0.0.1:1 is unreachable (...Connection refused...
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        schema: str = "graceful",
        create: bool = True,
        read_only: bool = False,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._pg = _psycopg()
        self._conninfo = check_str("conninfo", conninfo)
        if not isinstance(schema, str) or not _IDENT.fullmatch(schema):
            raise fail("schema", "a PostgreSQL schema name ([a-z_][a-z0-9_]*, <= 63)", schema)
        self.schema = schema
        self.read_only = check_bool("read_only", read_only)
        create = check_bool("create", create)
        self._timeout = check_real("timeout", timeout, low=0)
        self._connect_timeout = check_real("connect_timeout", connect_timeout, low=0)
        try:
            self._params = self._pg.conninfo.conninfo_to_dict(self._conninfo)
        except self._pg.Error as exc:
            raise InputError(
                f"Expected argument `conninfo` to be a libpq connection string, but "
                f"{_server_text(exc)}"
            ) from None
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._connect()
        try:
            if self._state() is None:
                if not create or self.read_only:
                    why = "create=False" if not create else "read_only=True"
                    raise InputError(f"{self._name} does not exist (and {why})")
                self._create()
        except BaseException:
            self.close()
            raise

    def __reduce__(self) -> tuple[Any, ...]:
        options = {
            "schema": self.schema,
            "create": False,
            "read_only": self.read_only,
            "timeout": self._timeout,
            "connect_timeout": self._connect_timeout,
        }
        return (_reopen, (self._conninfo, options))

    def __repr__(self) -> str:
        return f"PostgresStore({self._where}, schema={self.schema!r})"

    # -- naming ---------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        """``database 'x' at host:port``, from the parameters and libpq's environment."""
        p = self._params
        host = p.get("host") or p.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
        port = p.get("port") or os.environ.get("PGPORT") or "5432"
        user = p.get("user") or os.environ.get("PGUSER")
        db = p.get("dbname") or os.environ.get("PGDATABASE") or user or "postgres"
        return f"database {db!r} at {host}:{port}"

    @property
    def _name(self) -> str:
        return f"PostgreSQL gallery {self.schema!r} in {self._where}"

    # -- connections ----------------------------------------------------------------------

    def _connect(self) -> None:
        """Open the connection (raise one line when the server cannot be reached)."""
        pg = self._pg
        try:
            conn = pg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(2, math.ceil(self._connect_timeout)),
                application_name="graceful",
            )
        except pg.Error as exc:
            raise self._connect_error(exc) from None
        try:
            conn.execute(f"SET search_path TO {self.schema}")
            conn.execute(f"SET lock_timeout = {int(self._timeout * 1000)}")
        except pg.Error as exc:
            conn.close()
            raise self._error(exc) from None
        self._conn = conn

    def _connect_error(self, exc: BaseException) -> InputError:
        text = _server_text(exc)
        low = text.lower()
        user = self._params.get("user") or os.environ.get("PGUSER") or "(default user)"
        if "password authentication failed" in low or "authentication failed" in low:
            what = f"refused the login of user {user!r}: wrong password or user"
        elif "no password supplied" in low or "password is required" in low:
            what = f"asks user {user!r} for a password, and none was given"
        elif "does not exist" in low and "database" in low:
            what = "names a database that does not exist"
        elif "role" in low and "does not exist" in low:
            what = f"has no user {user!r}"
        elif "timeout expired" in low:
            what = f"did not answer within {self._connect_timeout:g} s"
        elif "translate host name" in low or "name or service not known" in low:
            what = "names a host that cannot be found"
        elif "no pg_hba.conf entry" in low:
            what = "refuses connections from this host (pg_hba.conf)"
        else:
            what = "is unreachable"
        return InputError(f"{self._name} {what} ({text})")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise InputError(f"{self._name} is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                with suppress(Exception):
                    self._conn.close()
            self._conn = None
            self._connect()
        if self._conn is None:  # _connect sets it or raises
            raise InputError(f"{self._name}: no connection to the server")
        return self._conn

    def close(self) -> None:
        """Close the connection (a closed store refuses every call)."""
        self._closed = True
        if self._conn is not None:
            with suppress(Exception):
                self._conn.close()
            self._conn = None

    # -- errors and transactions ----------------------------------------------------------

    def _lost(self, exc: BaseException) -> bool:
        return self._conn is None or self._conn.broken or self._conn.closed

    def _error(self, exc: BaseException, *, writing: bool = False) -> InputError:
        """The one-line :class:`InputError` of a failure inside a transaction."""
        text = _server_text(exc)
        if isinstance(exc, self._pg.OperationalError) and self._lost(exc):
            tail = ": nothing was written" if writing else ""
            return InputError(f"{self._name} lost its connection to the server{tail} ({text})")
        state = getattr(exc, "sqlstate", None) or ""
        what = _WHAT.get(state, "failed in PostgreSQL")
        if state == "55P03":
            what += f": gave up after waiting {self._timeout:g} s"
        if writing:
            what += "; nothing was written"
        code = f"SQLSTATE {state}: " if state else ""
        return InputError(f"{self._name} {what} ({code}{text})")

    def _begin(self, statement: str) -> psycopg.Cursor[Any]:
        """A cursor in a new transaction; a connection lost since the last call is reopened.

        Nothing has been sent inside the transaction yet, so retrying once is always safe.
        """
        pg = self._pg
        for attempt in (0, 1):
            conn = self._connection()
            try:
                cur = conn.cursor(binary=True)
                cur.execute(statement)
                return cur
            except pg.OperationalError as exc:
                if attempt or not self._lost(exc):
                    raise self._error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _rollback(self) -> None:
        conn = self._conn
        if conn is not None and not conn.broken and not conn.closed:
            with suppress(Exception):  # the failure being raised says more
                conn.execute("ROLLBACK")

    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[Any]]:
        """One read-only transaction: every query inside sees the same snapshot."""
        cur = self._begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield cur
            cur.execute("COMMIT")
        except self._pg.Error as exc:
            self._rollback()
            raise self._error(exc) from None
        except (ValueError, TypeError) as exc:
            self._rollback()
            if isinstance(exc, InputError):
                raise
            raise InputError(
                f"{self._name} is damaged: it holds a value graceful cannot read "
                f"({type(exc).__name__}: {_one_line(str(exc))})"
            ) from None
        except BaseException:
            self._rollback()
            raise

    @contextmanager
    def _write(self, kind: str, count: int) -> Iterator[tuple[psycopg.Cursor[Any], int]]:
        """One write transaction holding the next ``seq``: ``(cursor, seq)``.

        The ``seq`` row lock serialises writers (see the module docstring); the log row
        carries a random token so that a commit whose answer was lost can be checked.
        """
        if self.read_only:
            raise InputError(f"{self._name} is read-only (it was opened with read_only=True)")
        pg = self._pg
        cur = self._begin("BEGIN")
        token = secrets.token_hex(8)
        try:
            row = cur.execute(
                "UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value"
            ).fetchone()
            if row is None:
                raise InputError(f"{self._name} is damaged: it has no change sequence number")
            seq = int(row[0])
            cur.execute(
                "INSERT INTO log (seq, kind, count, token) VALUES (%s, %s, %s, %s)",
                (seq, kind, count, token),
            )
            yield cur, seq
        except pg.Error as exc:
            self._rollback()
            raise self._error(exc, writing=True) from None
        except BaseException:
            self._rollback()
            raise
        try:
            self._commit(cur)
        except pg.Error as exc:
            if not (isinstance(exc, pg.OperationalError) and self._lost(exc)):
                self._rollback()
                raise self._error(exc, writing=True) from None
            self._settle(seq, token, exc)

    def _commit(self, cur: psycopg.Cursor[Any]) -> None:
        cur.execute("COMMIT")

    def _settle(self, seq: int, token: str, exc: BaseException) -> None:
        """After the connection was lost at ``COMMIT``: return if it was applied, else raise."""
        text = _server_text(exc)
        try:
            with self._read() as cur:
                applied = cur.execute(
                    "SELECT 1 FROM log WHERE seq = %s AND token = %s", (seq, token)
                ).fetchone()
        except InputError:
            raise InputError(
                f"{self._name} lost its connection while committing write {seq} and cannot "
                f"be reached to check it: it may or may not be applied; refresh() once the "
                f"server is back shows it ({text})"
            ) from None
        if applied is None:
            raise InputError(
                f"{self._name} lost its connection while committing: nothing was written ({text})"
            )

    # -- opening --------------------------------------------------------------------------

    def _state(self) -> int | None:
        """The gallery's schema number, ``None`` when the schema holds no tables; or refuse."""
        foreign = InputError(
            f"{self._name} holds tables of another application, not a graceful gallery "
            "(left unchanged)"
        )
        with self._read() as cur:
            tables = {
                r[0]
                for r in cur.execute(
                    "SELECT table_name::text FROM information_schema.tables "
                    "WHERE table_schema = %s",
                    (self.schema,),
                )
            }
            if not tables:
                return None
            if "meta" not in tables:
                raise foreign
            try:
                cur.execute("SAVEPOINT probe")
                meta = dict(cur.execute("SELECT key, value FROM meta").fetchall())
            except self._pg.Error:
                raise foreign from None
        if meta.get("application") != _APPLICATION_ID:
            raise foreign
        if meta.get("schema") != _SCHEMA:
            raise InputError(
                f"{self._name} has gallery schema {meta.get('schema')!r}, but this version of "
                f"graceful reads schema {_SCHEMA}: open it with the graceful version that wrote it"
            )
        missing = sorted(_TABLES - tables)
        if missing or "seq" not in meta:
            raise InputError(
                f"{self._name} is damaged: its tables {missing or ['meta']} are missing"
            )
        return _SCHEMA

    def _create(self) -> None:
        """Create the schema and its tables (once, even with racing processes)."""
        cur = self._begin("BEGIN")
        try:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"graceful:{self.schema}",))
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            exists = cur.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s LIMIT 1",
                (self.schema,),
            ).fetchone()
            if exists is None:
                for statement in _SCHEMA_SQL.split(";"):
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO meta VALUES ('schema', %s), ('application', %s), "
                    "('seq', 0), ('next_label', 1), ('gallery_id', %s)",
                    (_SCHEMA, _APPLICATION_ID, secrets.randbits(62)),
                )
            cur.execute("COMMIT")
        except self._pg.Error as exc:
            self._rollback()
            raise self._error(exc, writing=True) from None
        except BaseException:
            self._rollback()
            raise
        self._state()  # another process may have created something else meanwhile

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _require_version(cur: psycopg.Cursor[Any], version: str, what: str = "version") -> None:
        if cur.execute("SELECT 1 FROM versions WHERE name = %s", (version,)).fetchone() is None:
            raise fail(what, "a registered version", version)

    @staticmethod
    def _labels_of(cur: psycopg.Cursor[Any], ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        rows = cur.execute(
            "SELECT id, label, version FROM items WHERE id = ANY(%s)", (list(ids),)
        ).fetchall()
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    @staticmethod
    def _meta_json(metadata: Metadata, n: int) -> list[str | None]:
        if metadata is None:
            return [None] * n
        return [None if m is None else json.dumps(dict(m)) for m in metadata]

    @staticmethod
    def _blobs(vectors: npt.NDArray[np.float32]) -> list[bytes]:
        return _row_bytes(np.ascontiguousarray(vectors, dtype="<f4"))

    def _move(
        self,
        cur: psycopg.Cursor[Any],
        labels: npt.NDArray[np.int64],
        version: str,
        vectors: npt.NDArray[np.float32],
        seq: int,
        metadata: Metadata,
    ) -> None:
        """Move items to ``version`` with new vectors; ``metadata=None`` keeps theirs."""
        if not len(labels):
            return
        if metadata is None:
            cur.execute(
                "UPDATE items SET version = %s, vector = v.vector, seq = %s "
                "FROM unnest(%s::bigint[], %s::bytea[]) AS v(label, vector) "
                "WHERE items.label = v.label",
                (version, seq, labels.tolist(), self._blobs(vectors)),
            )
        else:
            cur.execute(
                "UPDATE items SET version = %s, vector = v.vector, metadata = v.metadata, "
                "seq = %s FROM unnest(%s::bigint[], %s::bytea[], %s::text[]) "
                "AS v(label, vector, metadata) WHERE items.label = v.label",
                (
                    version,
                    seq,
                    labels.tolist(),
                    self._blobs(vectors),
                    self._meta_json(metadata, len(labels)),
                ),
            )

    # -- registry -------------------------------------------------------------------------

    def identity(self) -> str:
        """A random id drawn when the gallery was created (saved indexes check it)."""
        with self._read() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = 'gallery_id'").fetchone()
        return f"postgres:{row[0] if row else 0}"

    def last_seq(self) -> int:
        """The change sequence number of the last committed write (0 when none)."""
        with self._read() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def add_version(self, info: VersionInfo, compat: Sequence[Compatibility]) -> int:
        """Register a version and its compatibilities in one write; return its seq."""
        with self._write("version", 1) as (cur, seq):
            if cur.execute("SELECT 1 FROM versions WHERE name = %s", (info.name,)).fetchone():
                raise InputError(
                    f"Expected argument `name` to be a new version, but {info.name!r} "
                    "is already registered"
                )
            cur.execute(
                "INSERT INTO versions VALUES (%s, %s, %s, %s, %s, %s)",
                (info.name, info.dim, info.metric, info.index, json.dumps(dict(info.options)), seq),
            )
            for c in compat:
                self._put_compat(cur, c, seq)
        return seq

    def _put_compat(self, cur: psycopg.Cursor[Any], c: Compatibility, seq: int) -> None:
        self._require_version(cur, c.query_version, "query_version")
        self._require_version(cur, c.gallery_version, "gallery_version")
        cur.execute(
            "INSERT INTO compat VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (query_version, gallery_version) DO UPDATE SET "
            "evidence = EXCLUDED.evidence, seq = EXCLUDED.seq, adapter = EXCLUDED.adapter",
            (
                c.query_version,
                c.gallery_version,
                json.dumps(dict(c.evidence)),
                seq,
                None if c.adapter is None else bytes(c.adapter),
            ),
        )

    def add_compatibility(self, compat: Compatibility) -> int:
        """Record (or overwrite) one compatibility; return the write's seq."""
        with self._write("compat", 1) as (cur, seq):
            self._put_compat(cur, compat, seq)
        return seq

    def versions(self) -> list[VersionInfo]:
        """All registered versions, in registration order."""
        with self._read() as cur:
            rows = cur.execute(
                "SELECT name, dim, metric, index_kind, options, seq FROM versions "
                'ORDER BY seq, name COLLATE "C"'
            ).fetchall()
            return [
                VersionInfo(r[0], int(r[1]), r[2], r[3], json.loads(r[4]), int(r[5])) for r in rows
            ]

    def compatibility(self) -> list[Compatibility]:
        """All recorded compatibilities, in recording order."""
        with self._read() as cur:
            rows = cur.execute(
                "SELECT query_version, gallery_version, evidence, seq, adapter FROM compat "
                'ORDER BY seq, query_version COLLATE "C", gallery_version COLLATE "C"'
            ).fetchall()
            return [
                Compatibility(
                    r[0], r[1], json.loads(r[2]), int(r[3]), None if r[4] is None else bytes(r[4])
                )
                for r in rows
            ]

    # -- items ----------------------------------------------------------------------------

    def insert(
        self, ids: Sequence[str], version: str, vectors: npt.NDArray[np.float32], metadata: Metadata
    ) -> Changes:
        """Add new items (none may exist yet) under ``version`` (one ``COPY``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        meta = self._meta_json(metadata, len(ids))
        blobs = self._blobs(vectors)
        with self._write("add", len(ids)) as (cur, seq):
            self._require_version(cur, version)
            row = cur.execute(
                "UPDATE meta SET value = value + %s WHERE key = 'next_label' RETURNING value",
                (len(ids),),
            ).fetchone()
            start = int(row[0]) - len(ids) if row else 1
            labels = np.arange(start, start + len(ids), dtype=np.int64)
            cur.execute("SAVEPOINT copy")
            try:
                with cur.copy(
                    "COPY items (label, id, version, vector, metadata, seq) FROM STDIN"
                ) as copy:
                    for label, id_, blob, m in zip(labels.tolist(), ids, blobs, meta, strict=True):
                        copy.write_row((label, id_, version, blob, m, seq))
            except self._pg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT copy")
                found = self._labels_of(cur, ids)
                first = next((i for i in ids if i in found), "?")
                raise InputError(
                    f"Expected argument `ids` to hold new ids, but {first!r} "
                    "is already in the gallery (use replace() to re-embed it)"
                ) from None
        return _changes(seq, version, labels, ids, vectors)

    def replace(
        self, ids: Sequence[str], version: str, vectors: npt.NDArray[np.float32], metadata: Metadata
    ) -> Changes:
        """Move existing items (all must exist) to ``version`` with new vectors.

        ``metadata=None`` keeps each item's metadata.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._write("replace", len(ids)) as (cur, seq):
            self._require_version(cur, version)
            found = self._labels_of(cur, ids)
            _missing(ids, found)
            labels = np.array([found[i][0] for i in ids], dtype=np.int64)
            self._move(cur, labels, version, vectors, seq, metadata)
        return _changes(seq, version, labels, ids, vectors)

    def delete(self, ids: Sequence[str]) -> Changes:
        """Remove existing items (all must exist)."""
        with self._write("remove", len(ids)) as (cur, seq):
            found = self._labels_of(cur, ids)
            _missing(ids, found)
            labels = np.array([found[i][0] for i in ids], dtype=np.int64)
            cur.execute("DELETE FROM items WHERE label = ANY(%s)", (labels.tolist(),))
            cur.execute(
                "INSERT INTO removed SELECT unnest(%s::bigint[]), %s", (labels.tolist(), seq)
            )
        return Changes(seq, labels, {})

    def get(self, ids: Sequence[str]) -> list[ItemRecord]:
        """The stored items, in the order of ``ids`` (all must exist)."""
        with self._read() as cur:
            rows = cur.execute(
                "SELECT id, version, vector, metadata FROM items WHERE id = ANY(%s)", (list(ids),)
            ).fetchall()
            found = {
                r[0]: ItemRecord(
                    r[0],
                    r[1],
                    np.frombuffer(bytes(r[2]), dtype="<f4").astype(np.float32),
                    None if r[3] is None else json.loads(r[3]),
                )
                for r in rows
            }
        _missing(ids, found)
        return [found[i] for i in ids]

    def changes_since(self, seq: int) -> Changes:
        """Everything changed after ``seq`` (``0``: the whole gallery), one snapshot."""
        upserts: dict[str, Upsert] = {}
        with self._read() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            last = int(row[0]) if row else 0
            removed = np.zeros(0, np.int64)
            if seq > 0:
                removed = np.array(
                    [r[0] for r in cur.execute("SELECT label FROM removed WHERE seq > %s", (seq,))],
                    dtype=np.int64,
                )
            dims = dict(cur.execute("SELECT name, dim FROM versions").fetchall())
            for version, dim in dims.items():
                rows = cur.execute(
                    "SELECT label, id, vector FROM items WHERE version = %s AND seq > %s "
                    "ORDER BY label",
                    (version, seq),
                ).fetchall()
                if not rows:
                    continue
                labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                ids = np.empty(len(rows), dtype=object)
                ids[:] = [r[1] for r in rows]
                blob = b"".join(r[2] for r in rows)
                if len(blob) != 4 * int(dim) * len(rows):
                    raise ValueError(f"vectors of version {version!r} are not of dim {dim}")
                vectors = np.frombuffer(blob, dtype="<f4").astype(np.float32)
                upserts[version] = (labels, ids, vectors.reshape(len(rows), int(dim)))
        return Changes(last, removed, upserts)

    def versions_of(self, ids: Sequence[str]) -> dict[str, str]:
        """The version of each of ``ids`` that is stored (absent ids are left out)."""
        with self._read() as cur:
            return {i: v for i, (_, v) in self._labels_of(cur, ids).items()}

    def ids_not_at(self, version: str) -> list[str]:
        """Ids of the items not under ``version``, sorted (by code point)."""
        with self._read() as cur:
            rows = cur.execute(
                'SELECT id FROM items WHERE version <> %s ORDER BY id COLLATE "C"', (version,)
            ).fetchall()
        return [r[0] for r in rows]

    # -- backfill plans -------------------------------------------------------------------

    def plan_info(self, job: str) -> PlanInfo | None:
        """The stored plan of ``job``, or ``None``."""
        with self._read() as cur:
            row = cur.execute(
                "SELECT to_version, policy FROM plans WHERE job = %s", (job,)
            ).fetchone()
            if row is None:
                return None
            counts = cur.execute(
                "SELECT COUNT(*), COUNT(done_seq) FROM plan_items WHERE job = %s", (job,)
            ).fetchone()
            total, done = counts if counts else (0, 0)
            return PlanInfo(job, row[0], json.loads(row[1]), int(total), int(done))

    def extend_plan(
        self, job: str, to_version: str, policy: Mapping[str, Any], ids: Sequence[str]
    ) -> int:
        """Create the plan of ``job`` or append ``ids`` (see SQLiteStore's); its seq."""
        with self._write("plan", len(ids)) as (cur, seq):
            self._require_version(cur, to_version, "to_version")
            row = cur.execute("SELECT to_version FROM plans WHERE job = %s", (job,)).fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO plans VALUES (%s, %s, %s, %s)",
                    (job, to_version, json.dumps(dict(policy)), seq),
                )
            elif row[0] != to_version:
                raise InputError(
                    f"Expected argument `job` {job!r} to re-embed under {row[0]!r}, "
                    f"but got to_version={to_version!r}"
                )
            top = cur.execute(
                "SELECT COALESCE(MAX(pos) + 1, 0) FROM plan_items WHERE job = %s", (job,)
            ).fetchone()
            start = int(top[0]) if top else 0
            stored = self._labels_of(cur, ids)
            rows = cur.execute(
                "SELECT id, done_seq IS NULL FROM plan_items WHERE job = %s", (job,)
            ).fetchall()
            new = _plan_additions(ids, to_version, stored, rows)
            with cur.copy("COPY plan_items (job, pos, id) FROM STDIN") as copy:
                for i, id_ in enumerate(new):
                    copy.write_row((job, start + i, id_))
        return seq

    def plan(self, job: str) -> tuple[npt.NDArray[np.int64], list[str], npt.NDArray[np.int64]]:
        """The whole plan: positions, ids and ``done_seq`` (0 while not done)."""
        with self._read() as cur:
            rows = cur.execute(
                "SELECT pos, id, COALESCE(done_seq, 0) FROM plan_items WHERE job = %s ORDER BY pos",
                (job,),
            ).fetchall()
        return (
            np.array([r[0] for r in rows], dtype=np.int64),
            [r[1] for r in rows],
            np.array([r[2] for r in rows], dtype=np.int64),
        )

    def pending(self, job: str) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Plan positions not done yet and their ids, in plan order."""
        with self._read() as cur:
            rows = cur.execute(
                "SELECT pos, id FROM plan_items WHERE job = %s AND done_seq IS NULL ORDER BY pos",
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

        The same rules as :meth:`SQLiteStore.commit_batch
        <graceful.gallery.SQLiteStore.commit_batch>`: positions another worker has done
        are left as they are, items gone or already under ``version`` are marked
        ``skipped``, and a NaN row keeps its position pending when its item needs moving.
        Any number of processes (backfill workers on several machines) may commit batches
        of one plan at once: each position is done once.

        Returns:
            ``(changes, moved, skipped)``.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        have = np.asarray(np.isfinite(vectors).all(axis=1), dtype=bool)
        pos_list = [int(p) for p in positions]
        with self._write("backfill", len(ids)) as (cur, seq):
            found = self._labels_of(cur, ids)
            state = dict(
                cur.execute(
                    "SELECT pos, done_seq FROM plan_items WHERE job = %s AND pos = ANY(%s)",
                    (job, pos_list),
                ).fetchall()
            )
            keep: list[int] = []
            done_pos: list[int] = []
            outcome: list[str] = []
            for row, (pos, id_) in enumerate(zip(pos_list, ids, strict=True)):
                if pos not in state or state[pos] is not None:
                    continue  # not in the plan, or done by another worker
                hit = found.get(id_)
                moving = hit is not None and hit[1] != version
                if moving and not have[row]:
                    continue  # needs embedding after all: stays pending
                if moving:
                    keep.append(row)
                done_pos.append(pos)
                outcome.append("embedded" if moving else "skipped")
            if done_pos:
                cur.execute(
                    "UPDATE plan_items SET done_seq = %s, outcome = v.outcome "
                    "FROM unnest(%s::bigint[], %s::text[]) AS v(pos, outcome) "
                    "WHERE plan_items.job = %s AND plan_items.pos = v.pos",
                    (seq, done_pos, outcome, job),
                )
            labels = np.array([found[ids[r]][0] for r in keep], dtype=np.int64)
            moved = vectors[keep]
            self._move(cur, labels, version, moved, seq, None)
        changes = _changes(seq, version, labels, [ids[r] for r in keep], moved)
        return changes, len(keep), len(done_pos) - len(keep)
