import sqlite3

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
def filled(path):
    rng = np.random.default_rng(1)
    g = Gallery(path)
    g.register_version("v0", dim=6, metric="l2", index="hnsw")
    g.register_version("v1", dim=6, metric="l2", compatible_with=["v0"], evidence={"r1": 0.7})
    g.register_version("w", dim=3)
    x = rng.standard_normal((200, 6)).astype(np.float32)
    g.add_with_ids(x, ids_of(200), version="v0", metadata=[{"n": i} for i in range(200)])
    g.replace(x[:50] + 1, ids_of(50), version="v1")
    g.remove_ids([f"i{i:05d}" for i in range(190, 200)])
    return g, x


def test_sqlite_store_satisfies_the_protocol():
    assert isinstance(SQLiteStore(":memory:"), GalleryStore)


def test_reopen_gives_the_same_results(filled, path):
    g, x = filled
    q = np.random.default_rng(2).standard_normal((20, 6))
    before = g.search(q, 8, version="v1")
    status = g.status()
    g.close()
    with Gallery(path) as h:
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


def test_refresh_sees_another_gallerys_writes(filled, path):
    a, x = filled
    b = Gallery(path)
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


def snapshot_errors(g, path, call, match):
    before = dump(path)
    status, seq = g.status(), g.seq
    with pytest.raises(InputError, match=match):
        call()
    assert dump(path) == before
    assert g.status() == status and g.seq == seq


def test_bad_input_raises_and_changes_nothing(filled, path):
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
        (lambda: g.add_with_ids(ok, ["a", "b"], version="v9"), "`version`.*'v9'"),
        (lambda: g.add_with_ids(ok, ["a", "a"], version="v0"), "`ids`.*'a' appears twice"),
        (lambda: g.add_with_ids(ok, ["a", "i00150"], version="v0"), "`ids`.*'i00150' is already"),
        (lambda: g.add_with_ids(ok, ["a", 3], version="v0"), "`ids`.*str.*3"),
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
        snapshot_errors(g, path, call, match)


def test_path_and_store_arguments(tmp_path):
    with pytest.raises(InputError, match="`path`"):
        Gallery(tmp_path / "missing" / "g.sqlite")
    (tmp_path / "notes.txt").write_text("not a database\n" * 200)
    with pytest.raises(InputError, match=r"Gallery file .*notes.txt.* cannot be opened"):
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
