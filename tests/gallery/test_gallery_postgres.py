"""PostgresStore on a real server: many writers at once, and every way the server can fail.

The contract shared with SQLite is tested by the ``backend``-parametrised tests of the other
files; these are PostgreSQL's own: processes writing at once, and a server that is
unreachable, refuses the login, goes away mid-write or holds another graceful's schema.
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from _postgres_server import Server, free_port
from _writer_child import DIM, new_vector

from graceful.errors import InputError, MissingExtraError
from graceful.gallery import Gallery, PostgresStore, RandomOrder

HERE = Path(__file__).parent


def one_line(info, *parts):
    message = str(info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message
    return message


def small(backend, n=50):
    g = backend.gallery()
    g.register_version("v0", dim=4, metric="l2")
    g.add_with_ids(np.arange(n * 4).reshape(n, 4), [f"i{i:03d}" for i in range(n)], version="v0")
    return g


# -- many writers -------------------------------------------------------------------------


@pytest.mark.slow
def test_processes_adding_and_backfilling_at_once_lose_and_duplicate_nothing(pg_backend):
    g = pg_backend.gallery()
    g.register_version("v0", dim=DIM)
    g.register_version("v1", dim=DIM, compatible_with=["v0"], evidence={"top1": 0.6})
    start = [f"item{i:04d}" for i in range(300)]
    g.add_with_ids(np.random.default_rng(0).standard_normal((300, DIM)), start, version="v0")
    g.store.extend_plan("many", "v1", RandomOrder(5).describe(), RandomOrder(5).order(start, 0))
    conninfo = pg_backend.postgres.conninfo()
    children = [
        subprocess.Popen(
            [sys.executable, str(HERE / "_writer_child.py"), conninfo, pg_backend.schema, role, w],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role, w in (("add", "1"), ("backfill", "2"), ("add", "3"), ("backfill", "4"))
    ]
    follower = pg_backend.gallery()  # follows the change log while they write
    seen = []
    while any(c.poll() is None for c in children):
        follower.refresh()
        seen.append(follower.seq)
        time.sleep(0.02)
    outputs = [c.communicate(timeout=60) for c in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    acked, gone, moved = set(), set(), 0
    for out, _ in outputs:
        for line in out.splitlines():
            word, *rest = line.split()
            if word == "ack":
                acked.update(rest)
            elif word == "gone":
                gone.update(rest)
            elif word == "moved":
                moved += int(rest[0])
    assert len(acked) == 2 * 12 * 6 and len(gone) == 2 * 3

    fresh = pg_backend.gallery()
    expected = (set(start) | acked) - gone
    assert set(fresh.store.ids_not_at("nothing")) == expected  # nothing lost, nothing extra
    assert fresh.ntotal == len(expected)  # one row, so one version, per item
    # every planned item that still exists was moved exactly once, with the new vector
    _, plan_ids, done = fresh.store.plan("many")
    assert len(plan_ids) == len(set(plan_ids))
    assert set(start) <= set(plan_ids) and (done > 0).all()
    assert fresh.status()["v1"] == moved
    items = fresh.get(start)
    assert {it.version for it in items} == {"v1"}
    np.testing.assert_array_equal(np.stack([it.vector for it in items]), new_vector(start))
    # sequence numbers: contiguous, in commit order, so the follower missed nothing
    with psycopg.connect(conninfo) as con:
        seqs = [r[0] for r in con.execute(f"SELECT seq FROM {pg_backend.schema}.log ORDER BY 1")]
    assert seqs == list(range(1, len(seqs) + 1)) and fresh.seq == seqs[-1]
    assert seen == sorted(seen) and len(seen) > 3
    follower.refresh()
    assert follower.status() == fresh.status() and follower.seq == fresh.seq
    q = new_vector(start[:20])
    a, b = follower.search(q, 10, version="v1"), fresh.search(q, 10, version="v1")
    assert a.ids.tolist() == b.ids.tolist() and a.versions.tolist() == b.versions.tolist()


def test_a_store_pickles_as_its_connection(pg_backend):
    import pickle

    g = small(pg_backend)
    again = pickle.loads(pickle.dumps(g.store))
    pg_backend.opened.append(again)
    assert again.versions_of(["i001"]) == {"i001": "v0"} and again is not g.store


# -- opening ------------------------------------------------------------------------------


def test_a_missing_driver_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError) as info:
        PostgresStore("host=127.0.0.1")
    one_line(info, "pip install 'graceful[postgres]'")


def test_an_unreachable_server_names_it(postgres):
    port = free_port()  # nobody listens there
    with pytest.raises(InputError) as info:
        PostgresStore(f"host=127.0.0.1 port={port} dbname=photos", connect_timeout=3)
    one_line(info, "PostgreSQL gallery 'graceful'", f"'photos' at 127.0.0.1:{port}", "unreachable")


def test_a_wrong_password_and_a_missing_database(postgres):
    with pytest.raises(InputError) as info:
        PostgresStore(postgres.conninfo(password="not-the-password"))
    message = one_line(info, "refused the login of user 'graceful': wrong password")
    assert "not-the-password" not in message
    with pytest.raises(InputError) as info:
        PostgresStore(postgres.conninfo(dbname="no_such_db"))
    one_line(info, "'no_such_db'", "names a database that does not exist")


def test_bad_arguments(postgres):
    with pytest.raises(InputError, match="`schema`"):
        PostgresStore(postgres.conninfo(), schema="Bad-Name; DROP")
    with pytest.raises(InputError, match="`conninfo`"):
        PostgresStore("host=127.0.0.1 nonsense")
    with pytest.raises(InputError, match="`timeout`"):
        PostgresStore(postgres.conninfo(), timeout=-1)


def test_create_false_and_read_only(pg_backend):
    with pytest.raises(InputError) as info:
        pg_backend.store(create=False)
    one_line(info, f"gallery {pg_backend.schema!r}", "does not exist (and create=False)")
    with pytest.raises(InputError, match="does not exist"):
        pg_backend.store(read_only=True)
    small(pg_backend)
    before = pg_backend.dump()
    ro = Gallery(store=pg_backend.store(read_only=True))
    assert ro.ntotal == 50
    with pytest.raises(InputError, match="is read-only"):
        ro.add_with_ids(np.ones((1, 4)), ["new"], version="v0")
    assert pg_backend.dump() == before


def test_another_applications_schema_is_refused_untouched(pg_backend):
    with psycopg.connect(pg_backend.postgres.conninfo(), autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {pg_backend.schema}")
        con.execute(f"CREATE TABLE {pg_backend.schema}.notes (id INT, text TEXT)")
        con.execute(f"CREATE TABLE {pg_backend.schema}.meta (key TEXT, value BIGINT)")
    before = pg_backend.dump()
    for options in ({}, {"read_only": True}):
        with pytest.raises(InputError) as info:
            pg_backend.store(**options)
        one_line(info, "holds tables of another application", "left unchanged")
    assert pg_backend.dump() == before


def test_a_schema_of_another_graceful_version_is_refused(pg_backend):
    small(pg_backend).close()
    with psycopg.connect(pg_backend.postgres.conninfo(), autocommit=True) as con:
        con.execute(f"UPDATE {pg_backend.schema}.meta SET value = 2 WHERE key = 'schema'")
    before = pg_backend.dump()
    with pytest.raises(InputError) as info:
        pg_backend.store()
    one_line(info, "has gallery schema 2, but this version of graceful reads schema 1")
    assert pg_backend.dump() == before
    with psycopg.connect(pg_backend.postgres.conninfo(), autocommit=True) as con:
        con.execute(f"UPDATE {pg_backend.schema}.meta SET value = 1 WHERE key = 'schema'")
        con.execute(f"DROP TABLE {pg_backend.schema}.removed")
    with pytest.raises(InputError, match=r"is damaged: its tables \['removed'\] are missing"):
        pg_backend.store()


# -- failures mid-write: nothing half-written ---------------------------------------------


class Locker:
    """Another connection holding the writers' lock (the ``seq`` row) until released."""

    def __init__(self, backend):
        self.con = psycopg.connect(backend.postgres.conninfo())
        self.con.execute(f"UPDATE {backend.schema}.meta SET value = value WHERE key = 'seq'")

    def release(self):
        self.con.rollback()
        self.con.close()


def test_a_writer_lock_held_too_long_gives_up_with_nothing_written(pg_backend):
    g = small(pg_backend)
    g.store.close()
    g = Gallery(store=pg_backend.store(timeout=0.2))
    before = pg_backend.dump()
    locker = Locker(pg_backend)
    try:
        assert g.search(np.zeros((1, 4)), 1, version="v0").ids[0, 0] == "i000"  # reads go on
        with pytest.raises(InputError) as info:
            g.add_with_ids(np.ones((3, 4)), ["a", "b", "c"], version="v0")
        one_line(info, "is locked by another writer: gave up after waiting 0.2 s")
        assert "nothing was written" in str(info.value)
    finally:
        locker.release()
    assert pg_backend.dump() == before and g.ntotal == 50
    g.add_with_ids(np.ones((3, 4)), ["a", "b", "c"], version="v0")  # the lock is gone
    assert g.ntotal == 53


def test_the_connection_killed_mid_batch_writes_nothing_and_the_next_call_reconnects(
    pg_backend,
):
    g = small(pg_backend)
    g.register_version("v1", dim=4, metric="l2", compatible_with=["v0"])
    g.store.extend_plan("job", "v1", {}, [f"i{i:03d}" for i in range(50)])
    before = pg_backend.dump()
    pid = g.store._conn.info.backend_pid
    locker = Locker(pg_backend)  # the batch waits for it, mid-transaction

    def kill_then_release():
        time.sleep(0.3)
        with psycopg.connect(pg_backend.postgres.conninfo(), autocommit=True) as con:
            con.execute("SELECT pg_terminate_backend(%s)", (pid,))
        locker.release()

    killer = threading.Thread(target=kill_then_release)
    killer.start()
    ids = [f"i{i:03d}" for i in range(20)]
    with pytest.raises(InputError) as info:
        g.backfill_batch(
            "job", list(range(20)), ids, lambda i: np.ones((len(i), 4)), to_version="v1"
        )
    killer.join()
    one_line(info, f"gallery {pg_backend.schema!r}", "lost its connection to the server")
    assert "nothing was written" in str(info.value)
    assert pg_backend.dump() == before  # no item moved, no plan position done
    assert g.status() == {"v0": 50, "v1": 0}
    # the next call opens a new connection: the batch goes through
    moved = g.backfill_batch(
        "job", list(range(20)), ids, lambda i: np.ones((len(i), 4)), to_version="v1"
    )
    assert moved == (20, 0) and g.status() == {"v0": 30, "v1": 20}


def test_a_connection_lost_at_commit_is_settled_from_the_log(pg_backend, monkeypatch):
    g = small(pg_backend)
    store = g.store
    real_commit = type(store)._commit

    def lost_before(self, cur):  # the server never sees COMMIT: rolled back
        with psycopg.connect(pg_backend.postgres.conninfo(), autocommit=True) as con:
            con.execute("SELECT pg_terminate_backend(%s)", (self._conn.info.backend_pid,))
        real_commit(self, cur)

    def lost_after(self, cur):  # committed, but the answer never arrives
        real_commit(self, cur)
        lost_before(self, cur)

    before = pg_backend.dump()
    monkeypatch.setattr(type(store), "_commit", lost_before)
    with pytest.raises(InputError) as info:
        g.add_with_ids(np.ones((2, 4)), ["x", "y"], version="v0")
    one_line(info, "lost its connection while committing: nothing was written")
    assert pg_backend.dump() == before and g.ntotal == 50
    monkeypatch.setattr(type(store), "_commit", lost_after)
    g.add_with_ids(np.ones((2, 4)), ["x", "y"], version="v0")  # applied: no error
    monkeypatch.setattr(type(store), "_commit", real_commit)
    assert g.ntotal == 52 and store.versions_of(["x", "y"]) == {"x": "v0", "y": "v0"}


def test_a_server_that_goes_down_and_comes_back(tmp_path):
    server = Server()  # its own server: this test stops it
    server.start()
    try:
        store = PostgresStore(server.conninfo(), schema="down", connect_timeout=3)
        g = Gallery(store=store)
        g.register_version("v0", dim=4, metric="l2")
        g.add_with_ids(np.ones((5, 4)), [f"i{i}" for i in range(5)], version="v0")
        server.stop("immediate")
        with pytest.raises(InputError) as info:
            g.add_with_ids(np.ones((2, 4)), ["a", "b"], version="v0")
        one_line(info, f"'postgres' at 127.0.0.1:{server.port}")
        with pytest.raises(InputError) as info:
            g.refresh()
        one_line(info, "is unreachable")
        server.start()
        g.add_with_ids(np.ones((2, 4)), ["a", "b"], version="v0")  # reconnected by itself
        assert g.ntotal == 7 and g.refresh() == 0
        assert store.versions_of(["a", "i4"]) == {"a": "v0", "i4": "v0"}
        store.close()
        with pytest.raises(InputError, match="is closed"):
            store.versions()
    finally:
        server.remove()
