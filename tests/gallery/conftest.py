"""The gallery's stores under test: SQLite (a file) and PostgreSQL (a throwaway server).

``backend`` runs a test once per store. The PostgreSQL server is started once per session
(per xdist worker) by :mod:`_postgres_server`, or taken from ``GRACEFUL_TEST_POSTGRES``;
each test gets its own schema, dropped afterwards. When neither works the tests fail with
the reason: they are never skipped.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _postgres_server import Server

from graceful.gallery import Gallery, PostgresStore, SQLiteStore


class External:
    """A server given by ``GRACEFUL_TEST_POSTGRES`` (not started or stopped here)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    def conninfo(self, password: str | None = None, dbname: str | None = None) -> str:
        out = self._conninfo
        if password is not None:
            out += f" password={password}"
        if dbname is not None:
            out += f" dbname={dbname}"
        return out


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """The session's PostgreSQL server: ``.conninfo(password=..., dbname=...)``."""
    given = os.environ.get("GRACEFUL_TEST_POSTGRES")
    if given:
        yield External(given)
        return
    try:
        server = Server()
        server.start()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.remove()


def admin(postgres: Any) -> Any:
    import psycopg

    return psycopg.connect(postgres.conninfo(), autocommit=True)


class Backend:
    """One gallery's storage in one test: new handles on it, and a dump of all its rows."""

    def __init__(self, name: str, tmp_path: Path, postgres: Any = None) -> None:
        self.name = name
        self.path = str(tmp_path / "gallery.sqlite")
        self.postgres = postgres
        self.schema = f"t_{secrets.token_hex(6)}"
        self.opened: list[Any] = []

    def store(self, **options: Any) -> Any:
        if self.name == "sqlite":
            store: Any = SQLiteStore(self.path, **options)
        else:
            store = PostgresStore(self.postgres.conninfo(), schema=self.schema, **options)
        self.opened.append(store)
        return store

    def gallery(self, **options: Any) -> Gallery:
        return Gallery(store=self.store(), **options)

    def dump(self) -> dict[str, list[Any]]:
        """Every table's rows, to check that a refused write changed nothing."""
        if self.name == "sqlite":
            con = sqlite3.connect(self.path)
            try:
                tables = [
                    r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                return {
                    t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                    for t in sorted(tables)
                }
            finally:
                con.close()
        with admin(self.postgres) as con:
            tables = [
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (self.schema,),
                )
            ]
            return {
                t: con.execute(f"SELECT * FROM {self.schema}.{t} ORDER BY 1").fetchall()
                for t in sorted(tables)
            }

    def cleanup(self) -> None:
        for store in self.opened:
            store.close()
        if self.name == "postgres":
            with admin(self.postgres) as con:
                con.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The test's gallery storage, once in SQLite and once in PostgreSQL."""
    pg = request.getfixturevalue("postgres") if request.param == "postgres" else None
    b = Backend(request.param, tmp_path, pg)
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def pg_backend(tmp_path: Path, postgres: Any) -> Iterator[Backend]:
    """A PostgreSQL gallery storage alone (for the server's own failure modes)."""
    b = Backend("postgres", tmp_path, postgres)
    try:
        yield b
    finally:
        b.cleanup()
