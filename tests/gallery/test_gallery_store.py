import os
import shutil
import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.gallery import Gallery, GalleryStore, SQLiteStore


def ids_of(n, prefix="i"):
    return [f"{prefix}{i:05d}" for i in range(n)]


def dump(path):
    """Every table's rows, to check that a refused write changed nothing."""
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in sorted(tables)}
    finally:
        con.close()


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "gallery.sqlite")


@pytest.fixture
def filled(backend):
    rng = np.random.default_rng(1)
    g = backend.gallery()
    g.register_version("v0", dim=6, metric="l2", index="hnsw")
    g.register_version("v1", dim=6, metric="l2", compatible_with=["v0"], evidence={"r1": 0.7})
    g.register_version("w", dim=3)
    x = rng.standard_normal((200, 6)).astype(np.float32)
    g.add_with_ids(x, ids_of(200), version="v0", metadata=[{"n": i} for i in range(200)])
    g.replace(x[:50] + 1, ids_of(50), version="v1")
    g.remove_ids([f"i{i:05d}" for i in range(190, 200)])
    return g, x


def test_both_stores_satisfy_the_protocol(backend):
    assert isinstance(backend.store(), GalleryStore)


def test_reopen_gives_the_same_results(filled, backend):
    g, x = filled
    q = np.random.default_rng(2).standard_normal((20, 6))
    before = g.search(q, 8, version="v1")
    status = g.status()
    g.close()
    with backend.gallery() as h:
        after = h.search(q, 8, version="v1")
        assert h.status() == status == {"v0": 140, "v1": 50, "w": 0}
        assert after.ids.tolist() == before.ids.tolist()
        np.testing.assert_allclose(after.distances, before.distances, rtol=1e-5)
        assert after.versions.tolist() == before.versions.tolist()
        assert [v.name for v in h.versions()] == ["v0", "v1", "w"]
        assert h.versions()[0].index == "hnsw"
        assert [(c.query_version, c.gallery_version, c.evidence) for c in h.compatibility()] == [
            ("v1", "v0", {"r1": 0.7})
        ]
        item = h.get(["i00060"])[0]
        assert item.version == "v0" and item.metadata == {"n": 60}
        np.testing.assert_array_equal(item.vector, x[60])
        moved = h.get(["i00003"])[0]
        assert moved.version == "v1" and moved.metadata == {"n": 3}
        np.testing.assert_array_equal(moved.vector, x[3] + 1)


def test_refresh_sees_another_gallerys_writes(filled, backend):
    a, x = filled
    b = backend.gallery()
    q = x[:5]
    assert b.search(q, 5, version="v1").ids.tolist() == a.search(q, 5, version="v1").ids.tolist()
    a.add_with_ids(x[:1] * 0 + 9, ["new"], version="v0")
    a.replace(x[100:101] - 3, ["i00100"], version="v1")
    a.remove_ids(["i00005"])
    a.register_version("v2", dim=6, metric="l2", compatible_with=["v1", "v0"])
    assert b.ntotal == 190  # not yet refreshed
    assert b.refresh() == 4
    assert b.refresh() == 0
    assert b.ntotal == a.ntotal == 190 and b.status() == a.status()
    for v in ("v1", "v2"):
        assert (
            b.search(x[:30], 10, version=v).ids.tolist()
            == a.search(x[:30], 10, version=v).ids.tolist()
        )
    # and b's own writes interleave with a's: a write after a foreign write refreshes first
    a.add_with_ids(np.zeros((1, 6)), ["a-only"], version="v0")
    b.add_with_ids(np.ones((1, 6)), ["b-only"], version="v0")
    assert b.ntotal == 192
    a.refresh()
    assert a.status() == b.status()


def test_large_finite_vectors_are_accepted(filled):
    """Rows whose float32 sum would overflow are finite all the same."""
    g, _ = filled
    g.add_with_ids(np.full((2, 6), 3e38, np.float32), ["big1", "big2"], version="v0")
    assert g.get(["big1"])[0].vector[0] == np.float32(3e38)


def snapshot_errors(g, backend, call, match):
    before = backend.dump()
    status, seq = g.status(), g.seq
    with pytest.raises(InputError, match=match):
        call()
    assert backend.dump() == before
    assert g.status() == status and g.seq == seq


def test_bad_input_raises_and_changes_nothing(filled, backend):
    g, _ = filled
    ok = np.ones((2, 6), np.float32)
    cases = [
        (lambda: g.add_with_ids(np.ones((2, 5)), ["a", "b"], version="v0"), r"`x`.*\(2, 6\)"),
        (lambda: g.add_with_ids(np.ones(12), ["a", "b"], version="v0"), "`x`"),
        (
            lambda: g.add_with_ids(np.array([[np.nan] * 6, [1] * 6]), ["a", "b"], version="v0"),
            "`x`.*finite",
        ),
        (
            lambda: g.add_with_ids(np.array([[np.inf] * 6, [1] * 6]), ["a", "b"], version="v0"),
            "`x`.*finite",
        ),
        (
            lambda: g.add_with_ids(
                np.array([[np.inf, -np.inf, 1, 1, 1, 1], [1] * 6]), ["a", "b"], version="v0"
            ),
            "`x`.*finite.*row 0",
        ),
        (
            lambda: g.add_with_ids(
                np.array([[1] * 6, [1, 2, 3, 4, 5, -np.inf]]), ["a", "b"], version="v0"
            ),
            "`x`.*finite.*row 1",
        ),
        (lambda: g.add_with_ids(ok, ["a", ""], version="v0"), "`ids`.*non-empty"),
        (lambda: g.add_with_ids(ok, ["a", "b"], version="v9"), "`version`.*'v9'"),
        (lambda: g.add_with_ids(ok, ["a", "a"], version="v0"), "`ids`.*'a' appears twice"),
        (lambda: g.add_with_ids(ok, ["a", "i00150"], version="v0"), "`ids`.*'i00150' is already"),
        (lambda: g.add_with_ids(ok, ["a", 3], version="v0"), "`ids`.*str.*3"),
        (lambda: g.add_with_ids(ok, ["a", "b\nc"], version="v0"), r"`ids`.*control.*'b\\nc'"),
        (lambda: g.add_with_ids(ok, ["a\x00", "b"], version="v0"), r"`ids`.*'a\\x00'"),
        (lambda: g.add_with_ids(ok, ["a", "\x1b[2J"], version="v0"), r"`ids`.*'\\x1b\[2J'"),
        (lambda: g.add_with_ids(ok, "ab", version="v0"), "`ids`"),
        (lambda: g.add_with_ids(ok, [1, 2], version="v0"), "`ids`"),
        (lambda: g.add_with_ids(ok, ["a", "b"], version="v0", metadata=[{}]), "`metadata`"),
        (
            lambda: g.add_with_ids(ok, ["a", "b"], version="v0", metadata=[{"x": object()}, None]),
            r"`metadata\[0\]`.*JSON",
        ),
        (lambda: g.add_with_ids(np.zeros((2, 3)), ["a", "b"], version="w"), "`x`.*non-zero"),
        (lambda: g.replace(ok, ["i00150", "zz"], version="v1"), "`ids`.*'zz'"),
        (lambda: g.replace(ok[:1, :3], ["i00150"], version="v1"), "`x`"),
        (lambda: g.replace(ok, ["i00150", "i00150"], version="v1"), "`ids`.*twice"),
        (lambda: g.remove_ids(["i00150", "zz"]), "`ids`.*'zz'"),
        (lambda: g.remove_ids([5]), "`ids`"),
        (lambda: g.register_version("v0", dim=6), "`name`.*'v0'"),
        (lambda: g.register_version("", dim=6), "`name`"),
        (lambda: g.register_version("v\t2", dim=6), r"`name`.*control.*'v\\t2'"),
        (lambda: g.register_version("x", dim=0), "`dim`.*0"),
        (lambda: g.register_version("x", dim=6, metric="ip"), "`metric`.*'ip'"),
        (lambda: g.register_version("x", dim=6, index="pq"), "`index`.*'pq'"),
        (
            lambda: g.register_version("x", dim=6, index="ivf", index_options={"m": 3}),
            "`index_options`",
        ),
        (lambda: g.register_version("x", dim=6, compatible_with=["v9"]), "`compatible_with`.*'v9'"),
        (
            lambda: g.register_version("x", dim=5, metric="l2", compatible_with=["v0"]),
            "'x' has dim=5.*'v0' has dim=6",
        ),
        (
            lambda: g.register_version("x", dim=6, compatible_with=["v0"]),
            "'x'.*metric='cosine'.*'v0'.*metric='l2'",
        ),
        (lambda: g.record_compatibility("w", "v0", {"a": 1}), "'w' has dim=3.*'v0' has dim=6"),
        (lambda: g.record_compatibility("v9", "v0", {"a": 1}), "`query_version`.*'v9'"),
        (lambda: g.record_compatibility("v0", "v9", {"a": 1}), "`gallery_version`.*'v9'"),
        (lambda: g.record_compatibility("v0", "v1", [1]), "`evidence`"),
        (lambda: g.record_compatibility("v0", "v1", {"a": {1, 2}}), "`evidence`"),
    ]
    for call, match in cases:
        snapshot_errors(g, backend, call, match)


def test_path_and_store_arguments(tmp_path):
    with pytest.raises(InputError, match="`path`"):
        Gallery(tmp_path / "missing" / "g.sqlite")
    (tmp_path / "notes.txt").write_text("not a database\n" * 200)
    with pytest.raises(InputError, match=r"Gallery file .*notes.txt.* is not a SQLite database"):
        Gallery(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="`path` and `store`"):
        Gallery()
    g = Gallery(store=SQLiteStore(":memory:"))
    assert g.ntotal == 0


def test_ids_may_be_a_numpy_or_pandas_column():
    g = Gallery(":memory:")
    g.register_version("v0", dim=2)
    g.add_with_ids(np.eye(2), np.array(["a", "b"]), version="v0")
    g.add_with_ids(np.ones((1, 2)), pd.Series(["c"]).tolist(), version="v0")
    assert g.ntotal == 3


# -- hostile files: every SQLite failure is one InputError naming the file ----------------


def small_gallery(path, n=300):
    g = Gallery(path)
    g.register_version("v0", dim=4, metric="l2")
    g.add_with_ids(np.random.default_rng(0).standard_normal((n, 4)), ids_of(n), version="v0")
    g.close()
    return path


def fingerprint(path):
    """The file's bytes and modification time (nanoseconds)."""
    with open(path, "rb") as handle:
        return handle.read(), os.stat(path).st_mtime_ns


def refused(path, match, **store):
    """Opening ``path`` raises one InputError that names it and matches ``match``."""
    with pytest.raises(InputError) as info:
        if store:
            Gallery(store=SQLiteStore(path, **store))
        else:
            Gallery(path)
    message = str(info.value)
    assert "\n" not in message and repr(str(path)) in message, message
    assert info.match(match)
    return message


def test_another_applications_sqlite_file_is_refused_untouched(tmp_path):
    other = tmp_path / "app.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    con.execute("INSERT INTO notes (text) VALUES ('keep me')")
    con.commit()
    con.close()
    os.utime(other, ns=(1_000_000_000, 1_000_000_000))
    before = fingerprint(other)
    for store in ({}, {"create": False}, {"read_only": True}):
        refused(other, "is a SQLite database of another application", **store)
    assert fingerprint(other) == before
    assert sorted(os.listdir(tmp_path)) == ["app.db"]  # no journal, WAL or shm left either
    con = sqlite3.connect(other)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["notes"]
    con.close()


def test_other_sqlite_files_that_are_not_galleries(tmp_path):
    marked = tmp_path / "marked.db"  # another application's id in the header, no tables
    con = sqlite3.connect(marked)
    con.execute("PRAGMA application_id=1234")
    con.close()
    refused(marked, "another application")
    shaped = tmp_path / "shaped.db"  # a `meta` table of another shape
    con = sqlite3.connect(shaped)
    con.execute("CREATE TABLE meta (a, b)")
    con.close()
    refused(shaped, "another application")


def test_opening_an_existing_gallery_writes_nothing(tmp_path):
    path = small_gallery(str(tmp_path / "g.sqlite"))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = fingerprint(path)
    for store in ({}, {"create": False}, {"read_only": True}):
        with Gallery(store=SQLiteStore(path, **store)) as g:
            assert g.ntotal == 300
            g.search(np.ones((1, 4)), 3, version="v0")
            assert g.status() == {"v0": 300}
    assert fingerprint(path) == before


def test_a_read_only_store_reads_everything_and_refuses_every_write(tmp_path):
    path = small_gallery(str(tmp_path / "g.sqlite"))
    before = fingerprint(path)
    with Gallery(store=SQLiteStore(path, read_only=True)) as g:
        assert g.store.read_only
        assert g.get(["i00007"])[0].version == "v0"
        writes = [
            lambda: g.register_version("v1", dim=4),
            lambda: g.add_with_ids(np.ones((1, 4)), ["new"], version="v0"),
            lambda: g.replace(np.ones((1, 4)), ["i00001"], version="v0"),
            lambda: g.remove_ids(["i00001"]),
            lambda: g.store.extend_plan("job", "v0", {}, ["i00001"]),
        ]
        for write in writes:
            with pytest.raises(InputError, match=r"'.*g.sqlite' is read-only .*cannot write"):
                write()
        assert g.ntotal == 300
    assert fingerprint(path) == before


_READ_BY_ITSELF = """
import sys
import numpy as np
from graceful.errors import InputError
from graceful.gallery import Gallery

with Gallery(sys.argv[1]) as g:  # no read_only=True: found out by itself
    assert g.ntotal == 300 and g.store.read_only
    d, i = g.search(np.zeros((1, 4)), 3, version="v0")
    assert i.shape == (1, 3)
    try:
        g.add_with_ids(np.ones((1, 4)), ["new"], version="v0")
    except InputError as error:
        print(error)
    else:
        raise SystemExit("the write went through")
"""


@pytest.mark.parametrize(
    "folder_mode, why",
    [(0o555, "its folder cannot be written"), (0o755, "the file cannot be written")],
)
def test_a_read_only_file_can_be_read(tmp_path, as_unprivileged, folder_mode, why):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = small_gallery(str(folder / "g.sqlite"))
    before = fingerprint(path)
    os.chmod(path, 0o444)
    os.chmod(folder, folder_mode)
    try:
        result = as_unprivileged([sys.executable, "-c", _READ_BY_ITSELF, path])
        assert result.returncode == 0, result.stderr
        assert f"is read-only ({why}): cannot write" in result.stdout
        if folder_mode == 0o555:
            assert os.listdir(folder) == ["g.sqlite"]  # no -wal or -shm file left behind
    finally:
        os.chmod(folder, 0o755)
    assert fingerprint(path) == before


def test_paths_that_cannot_hold_a_gallery(tmp_path):
    refused(tmp_path, "is a folder, not a file")
    refused(tmp_path / "none.sqlite", "does not exist", create=False)
    refused(tmp_path / "missing" / "g.sqlite", "its folder .* does not exist", create=True)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    refused(empty, "is empty: it holds no graceful gallery", create=False)
    refused(empty, "is empty", read_only=True)
    assert empty.stat().st_size == 0
    with Gallery(empty) as g:  # an empty file is a new database: create=True fills it
        g.register_version("v0", dim=2)
    with Gallery(store=SQLiteStore(empty, read_only=True)) as g:
        assert [v.name for v in g.versions()] == ["v0"]
    con = sqlite3.connect(empty)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # new files: WAL
    con.close()
    with pytest.raises(InputError, match="`read_only`"):
        SQLiteStore(":memory:", read_only=True)
    with pytest.raises(InputError, match="`timeout`"):
        SQLiteStore(":memory:", timeout=-1)


def test_damaged_files(tmp_path):
    path = small_gallery(str(tmp_path / "g.sqlite"))
    with open(path, "rb") as handle:
        data = handle.read()

    def variant(name, content):
        out = tmp_path / name
        out.write_bytes(content)
        return out

    refused(variant("text.sqlite", b"hello\n" * 500), "is not a SQLite database")
    refused(variant("head.sqlite", data[:50]), "is truncated: 50 bytes, shorter than")
    refused(variant("cut.sqlite", data[: len(data) // 2]), r"is truncated: \d+ bytes, its header")
    page = 4096
    noise = np.random.default_rng(0).integers(0, 256, 8 * page, dtype=np.uint8).tobytes()
    scrambled = data[: 2 * page] + noise + data[10 * page :]
    refused(variant("corrupt.sqlite", scrambled), "is corrupt")

    def edited(name, sql):
        out = tmp_path / name
        shutil.copy(path, out)
        con = sqlite3.connect(out)
        con.execute(sql)
        con.commit()
        con.close()
        return out

    newer = edited("newer.sqlite", "UPDATE meta SET value=2 WHERE key='schema'")
    refused(newer, "has gallery schema 2, but this version of graceful reads schema 1")
    refused(edited("drop.sqlite", "DROP TABLE removed"), r"is damaged: its tables \['removed'\]")
    refused(edited("json.sqlite", "UPDATE versions SET options='{'"), "is damaged: .*JSON")
    blob = "UPDATE items SET vector=x'0102' WHERE label=5"
    refused(edited("blob.sqlite", blob), "is damaged")


def test_locked_full_and_closed(tmp_path):
    path = small_gallery(str(tmp_path / "g.sqlite"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        g = Gallery(store=SQLiteStore(path, timeout=0.05))
        assert g.ntotal == 300  # readers are not blocked (WAL)
        with pytest.raises(InputError, match=r"'.*' is locked by another writer: gave up after"):
            g.add_with_ids(np.ones((1, 4)), ["new"], version="v0")
    finally:
        other.execute("ROLLBACK")
        other.close()
    g.add_with_ids(np.ones((1, 4)), ["new"], version="v0")  # the lock is gone: it works
    before = dump(path)
    g.store._conn.execute("PRAGMA max_page_count=1")  # a full disk
    with pytest.raises(InputError, match="cannot be written: the disk is full"):
        g.add_with_ids(np.ones((2000, 4)), ids_of(2000, "n"), version="v0")
    assert dump(path) == before and g.ntotal == 301
    g.close()
    with pytest.raises(InputError, match="is closed"):
        g.store.versions()
