"""Saved indexes: read back when current, caught up when behind, rebuilt when not ours."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from graceful.errors import InputError
from graceful.gallery import Gallery, VersionIndex

DIM = 8


def ids_of(n, prefix="i"):
    return [f"{prefix}{i:04d}" for i in range(n)]


def fill(g, n=400):
    rng = np.random.default_rng(0)
    g.register_version("flat", dim=DIM, metric="l2")
    g.register_version(
        "ivf", dim=DIM, metric="l2", index="ivf", index_options={"min_train": 100, "nlist": 3}
    )
    # hnsw queries may search all three: one search covers every index
    g.register_version("hnsw", dim=DIM, metric="l2", index="hnsw", compatible_with=["flat", "ivf"])
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    third = n // 3
    g.add_with_ids(x[:third], ids_of(third, "f"), version="flat")
    g.add_with_ids(x[third : 2 * third], ids_of(third, "v"), version="ivf")
    g.add_with_ids(x[2 * third :], ids_of(n - 2 * third, "h"), version="hnsw")
    g.remove_ids(ids_of(10, "h"))  # tombstones in the HNSW graph
    g.remove_ids(ids_of(5, "f"))
    return x


def results(g, version="hnsw"):
    """Status, seq and a search by ``version`` queries (which may search every version)."""
    q = np.random.default_rng(9).standard_normal((15, DIM)).astype(np.float32)
    r = g.search(q, 7, version=version)
    return {
        "status": g.status(),
        "seq": g.seq,
        "hits": (r.ids.tolist(), r.versions.tolist(), np.round(r.distances, 4).tolist()),
    }


def spy_changes(monkeypatch, store):
    calls = []
    real = store.changes_since

    def spy(seq):
        calls.append(seq)
        return real(seq)

    monkeypatch.setattr(store, "changes_since", spy)
    return calls


def reopen(backend, folder, monkeypatch=None):
    store = backend.store()
    calls = spy_changes(monkeypatch, store) if monkeypatch else None
    return Gallery(store=store, index_dir=folder), calls


def test_current_indexes_are_read_back_without_a_rebuild(backend, tmp_path, monkeypatch):
    folder = tmp_path / "indexes"
    g = Gallery(store=backend.store(), index_dir=folder)
    assert g.index_source.kind == "rebuilt" and "no saved indexes" in g.index_source.reason
    fill(g)
    before = results(g)
    g.close()  # saves
    h, calls = reopen(backend, folder, monkeypatch)
    assert h.index_source.kind == "saved" and h.index_source.caught_up == 0
    assert h.index_source.saved_seq == before["seq"]
    assert 0 not in calls  # nothing read from the store's items
    assert results(h) == before
    assert h._indexes["ivf"]._trained and h._indexes["hnsw"].held == h.status()["hnsw"] + 10
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    h.close()  # nothing moved on: the snapshot is not written again
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    assert len(list(folder.glob("snap-*"))) == 1
    with Gallery(store=backend.store()) as rebuilt:  # a rebuild holds the same items
        assert rebuilt.status() == before["status"] and rebuilt.seq == before["seq"]


def test_writes_after_an_open_from_saved_indexes(backend, tmp_path):
    """The ids read back are used as read until the first write, then written as usual."""
    folder = tmp_path / "indexes"
    g = Gallery(store=backend.store(), index_dir=folder)
    x = fill(g)
    g.close()
    h, _ = reopen(backend, folder)
    assert h.index_source.kind == "saved"
    assert isinstance(h._id_of, pa.ChunkedArray)  # not made Python strings at the open
    first = results(h)
    h.add_with_ids(x[:6] + 3, ids_of(6, "new"), version="flat")
    h.remove_ids(ids_of(4, "v") + ids_of(2, "new"))
    h.replace(x[:3] * 2, ["h0011", "h0012", "f0007"], version="hnsw")
    after = results(h)
    assert after != first
    with Gallery(store=backend.store()) as rebuilt:
        assert results(rebuilt) == after
    h.close()  # saved again, with the written ids
    k, _ = reopen(backend, folder)
    assert (k.index_source.kind, k.index_source.caught_up) == ("saved", 0)
    assert results(k) == after
    k.close()


def test_indexes_behind_the_store_are_caught_up_from_the_change_log(backend, tmp_path, monkeypatch):
    folder = tmp_path / "indexes"
    a = Gallery(store=backend.store(), index_dir=folder)
    x = fill(a)
    a.save_indexes()
    saved = a.seq
    # writes after the snapshot, by this gallery (which keeps its indexes in memory)
    a.add_with_ids(x[:20] + 5, ids_of(20, "new"), version="flat")
    a.replace(x[:10] * 2, ids_of(10, "f")[5:] + ids_of(5, "v"), version="flat")
    a.remove_ids(ids_of(3, "new") + ids_of(2, "v")[1:])
    a.register_version("late", dim=DIM, metric="l2", compatible_with=["flat", "ivf", "hnsw"])
    a.add_with_ids(x[:4] - 1, ids_of(4, "late"), version="late")
    expected = results(a, "late")
    b, calls = reopen(backend, folder, monkeypatch)
    assert b.index_source.kind == "saved" and b.index_source.saved_seq == saved
    assert b.index_source.caught_up == expected["seq"] - saved == 5
    assert calls == [saved]
    assert results(b, "late") == expected
    b.close()  # moved on: saved again, and the next open needs no catch-up
    c, _ = reopen(backend, folder)
    assert (c.index_source.kind, c.index_source.caught_up) == ("saved", 0)
    assert results(c, "late") == expected
    c.close()
    a.close()


def damage(folder, how):
    manifest = json.loads((folder / "manifest.json").read_text())
    snap = folder / manifest["folder"]
    faiss_file = snap / manifest["versions"][1]["file"]
    if how == "truncated":
        data = faiss_file.read_bytes()
        faiss_file.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        size = faiss_file.stat().st_size
        faiss_file.write_bytes(np.random.default_rng(0).bytes(size))
    elif how == "missing":
        faiss_file.unlink()
    elif how == "labels":
        (snap / "labels.arrow").write_bytes(b"not arrow")
    elif how == "manifest":
        (folder / "manifest.json").write_text("{")
    elif how == "redefined":
        manifest["versions"][0]["options"] = {"nlist": 3}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif how == "counts":
        manifest["versions"][0]["held"] += 1
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif how == "ahead":
        manifest["seq"] += 100
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif how == "swapped":  # another version's file in this one's place
        shutil.copy(snap / manifest["versions"][2]["file"], faiss_file)
        manifest["versions"][1]["bytes"] = faiss_file.stat().st_size
        (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "how, reason",
    [
        ("truncated", "damaged"),
        ("garbage", "damaged"),
        ("missing", "damaged"),
        ("labels", "damaged"),
        ("manifest", "cannot be read"),
        ("redefined", "other version definitions"),
        ("counts", "damaged"),
        ("ahead", "ahead of the store"),
        ("swapped", "damaged"),
    ],
)
def test_damaged_or_foreign_indexes_are_rebuilt(backend, tmp_path, how, reason):
    folder = tmp_path / "indexes"
    g = Gallery(store=backend.store(), index_dir=folder)
    fill(g)
    expected = results(g)
    g.close()
    damage(folder, how)
    h = Gallery(store=backend.store(), index_dir=folder)
    assert h.index_source.kind == "rebuilt", how
    assert reason in h.index_source.reason and "\n" not in h.index_source.reason
    assert results(h) == expected
    h.close()  # writes a good snapshot again
    again = Gallery(store=backend.store(), index_dir=folder)
    assert again.index_source.kind == "saved"
    again.close()


def test_another_gallerys_indexes_are_never_used(tmp_path):
    folder = tmp_path / "indexes"
    with Gallery(tmp_path / "a.sqlite", index_dir=folder) as a:
        fill(a)
    with Gallery(tmp_path / "b.sqlite", index_dir=folder) as b:
        assert b.index_source.kind == "rebuilt"
        assert b.index_source.reason == "the saved indexes are another gallery's"
        assert b.ntotal == 0
    # an older file without a gallery id: rebuilt every time, never saved by close
    import sqlite3

    shutil.copy(tmp_path / "a.sqlite", tmp_path / "old.sqlite")
    with sqlite3.connect(tmp_path / "old.sqlite") as con:
        con.execute("DELETE FROM meta WHERE key='gallery_id'")
    old = Gallery(tmp_path / "old.sqlite", index_dir=tmp_path / "old-indexes")
    assert "no gallery id" in old.index_source.reason
    with pytest.raises(InputError, match="no gallery id"):
        old.save_indexes()
    old.close()
    assert not (tmp_path / "old-indexes" / "manifest.json").exists()


def test_a_failed_save_leaves_the_previous_snapshot_in_use(backend, tmp_path, monkeypatch):
    folder = tmp_path / "indexes"
    g = Gallery(store=backend.store(), index_dir=folder)
    fill(g)
    g.save_indexes()
    first = g.seq
    g.add_with_ids(np.ones((1, DIM)), ["one-more"], version="flat")
    real = VersionIndex.write
    calls = []

    def failing(self, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(self, path)

    monkeypatch.setattr(VersionIndex, "write", failing)
    with pytest.raises(InputError) as info:
        g.save_indexes()
    assert repr(str(folder)) in str(info.value) and "No space left" in str(info.value)
    monkeypatch.setattr(VersionIndex, "write", real)
    h = Gallery(store=backend.store(), index_dir=folder)
    assert (h.index_source.kind, h.index_source.saved_seq) == ("saved", first)
    assert h.index_source.caught_up == 1 and h.status() == g.status()
    h.close()
    g.close()
    assert len(list(folder.glob("snap-*"))) == 1


def test_save_indexes_needs_a_folder():
    g = Gallery(":memory:")
    with pytest.raises(InputError, match="`index_dir`"):
        g.save_indexes()
