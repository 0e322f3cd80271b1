import pickle

import faiss
import numpy as np
import pytest

from graceful.errors import InputError
from graceful.gallery import Gallery, IncompatibleVersionsError


def ids_of(n, prefix="i"):
    return [f"{prefix}{i:05d}" for i in range(n)]


def brute(queries, items, metric, k):
    """Reference top-k as faiss gives it: (order (n, k) of item rows, distances).

    Cosine: the inner product of the normalised vectors, highest first; l2: the squared
    Euclidean distance, lowest first.
    """
    if metric == "cosine":
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        xn = items / np.linalg.norm(items, axis=1, keepdims=True)
        s = qn @ xn.T
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    else:
        s = ((queries[:, None, :] - items[None, :, :]) ** 2).sum(axis=2)
        order = np.argsort(s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_matches_brute_force(rng, metric):
    x = rng.standard_normal((300, 16)).astype(np.float32)
    q = rng.standard_normal((25, 16)).astype(np.float32)
    g = Gallery(":memory:")
    g.register_version("v0", dim=16, metric=metric)
    ids = ids_of(300)
    g.add_with_ids(x, ids, version="v0")
    r = g.search(q, 10, version="v0")
    order, distances = brute(q, x, metric, 10)
    assert r.ids.shape == (25, 10) and r.distances.dtype == np.float32
    assert r.ids.tolist() == np.array(ids, dtype=object)[order].tolist()
    np.testing.assert_allclose(r.distances, distances, rtol=1e-4, atol=1e-4)
    assert set(r.versions.ravel()) == {"v0"}
    assert g.ntotal == 300


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_merge_across_compatible_versions_equals_brute_force(rng, metric):
    x = rng.standard_normal((400, 8)).astype(np.float32)
    q = rng.standard_normal((30, 8)).astype(np.float32)
    ids = ids_of(400)
    g = Gallery(":memory:")
    g.register_version("v0", dim=8, metric=metric)
    g.register_version("v1", dim=8, metric=metric, compatible_with=["v0"], evidence={"t": 1})
    g.add_with_ids(x[:150], ids[:150], version="v0")
    g.add_with_ids(x[150:], ids[150:], version="v1")
    r = g.search(q, 7, version="v1")
    order, distances = brute(q, x, metric, 7)
    assert r.ids.tolist() == np.array(ids, dtype=object)[order].tolist()
    np.testing.assert_allclose(r.distances, distances, rtol=1e-4, atol=1e-4)
    expected_versions = np.where(order < 150, "v0", "v1")
    assert r.versions.tolist() == expected_versions.tolist()


FLT_MAX = np.finfo(np.float32).max


@pytest.mark.parametrize(("metric", "pad"), [("cosine", -FLT_MAX), ("l2", FLT_MAX)])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_missing_slots_are_padded_as_faiss_pads_them(rng, metric, pad, kind):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    g = Gallery(":memory:")
    g.register_version("v0", dim=4, metric=metric, index=kind)
    g.register_version("v1", dim=4, metric=metric, index=kind, compatible_with=["v0"])
    g.add_with_ids(x[:2], ["a", "b"], version="v0")
    g.add_with_ids(x[2:], ["c"], version="v1")
    d, i = g.search(x, 5, version="v1")
    raw = faiss.IndexFlatL2(4) if metric == "l2" else faiss.IndexFlatIP(4)
    xs = x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "cosine" else x
    raw.add(xs)
    raw_d, raw_i = raw.search(xs, 5)  # the same items in one raw faiss index
    assert (raw_i[:, 3:] == -1).all() and (raw_d[:, 3:] == pad).all()
    np.testing.assert_allclose(d, raw_d, rtol=1e-5, atol=1e-5)  # same distances, same pads
    assert i.tolist() == np.array(["a", "b", "c", None], dtype=object)[raw_i].tolist()
    assert (d[:, 3:] == pad).all() and d.dtype == np.float32
    assert g.remove_ids(["a"]) == 1
    d, i = g.search(x, 5, version="v1")
    assert (i[:, 2:] == None).all() and (d[:, 2:] == pad).all()  # noqa: E711
    empty = Gallery(":memory:")
    empty.register_version("v0", dim=4, metric=metric)
    r = empty.search(np.ones((2, 4)), 3, version="v0")
    assert (r.ids == None).all() and (r.versions == None).all()  # noqa: E711
    assert (r.distances == pad).all() and r.distances.dtype == np.float32


def test_search_result_is_faiss_d_i_pair(rng):
    g = Gallery(":memory:")
    g.register_version("v0", dim=4, metric="l2")
    g.add_with_ids(np.eye(4), list("abcd"), version="v0")
    r = g.search(np.zeros((1, 4)), 2, version="v0")
    d, i = r
    assert isinstance(r, tuple) and len(r) == 2
    assert d is r.distances is r[0] and i is r.ids is r[1]
    assert d.tolist() == [[1.0, 1.0]] and r.versions.tolist() == [["v0", "v0"]]
    again = pickle.loads(pickle.dumps(r))
    assert again.ids.tolist() == i.tolist() and again.versions.tolist() == [["v0", "v0"]]
    assert "versions=" in repr(r)


def test_search_refused_when_gallery_holds_an_incompatible_version(rng):
    g = Gallery(":memory:")
    g.register_version("v0", dim=4)
    g.register_version("v2", dim=4)
    g.add_with_ids(np.ones((1, 4)), ["a"], version="v0")
    g.add_with_ids(np.ones((1, 4)), ["b"], version="v2")
    with pytest.raises(IncompatibleVersionsError) as err:
        g.search(np.ones((1, 4)), 1, version="v2")
    msg = str(err.value)
    assert "no compatibility recorded from query version 'v2' to gallery version 'v0'" in msg
    assert "backfill" in msg
    g.record_compatibility("v2", "v0", {"top1_new_old": 0.6, "top1_old_old": 0.55})
    assert sorted(g.search(np.ones((1, 4)), 2, version="v2").ids[0].tolist()) == ["a", "b"]
    # the other direction is not implied
    with pytest.raises(IncompatibleVersionsError, match="'v0' to gallery version 'v2'"):
        g.search(np.ones((1, 4)), 1, version="v0")
    # once the old items are gone the old version no longer blocks
    g.remove_ids(["a"])
    assert g.search(np.ones((1, 4)), 1, version="v2").ids.tolist() == [["b"]]


def clustered(rng, n, dim, centres):
    c = rng.standard_normal((centres, dim)).astype(np.float32) * 4
    lab = rng.integers(0, centres, n)
    return (c[lab] + rng.standard_normal((n, dim)).astype(np.float32)).astype(np.float32)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_approximate_recall_at_10(rng, kind, metric):
    x = clustered(rng, 3000, 32, 20)
    q = clustered(rng, 100, 32, 20)
    ids = ids_of(3000)
    exact = Gallery(":memory:")
    exact.register_version("v0", dim=32, metric=metric)
    exact.add_with_ids(x, ids, version="v0")
    approx = Gallery(":memory:")
    approx.register_version("v0", dim=32, metric=metric, index=kind)
    approx.add_with_ids(x, ids, version="v0")
    truth = exact.search(q, 10, version="v0").ids
    got = approx.search(q, 10, version="v0").ids
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
    assert recall >= 0.9


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_remove_and_replace(rng, kind):
    x = clustered(rng, 1500, 8, 5)
    ids = ids_of(1500)
    g = Gallery(":memory:")
    g.register_version("v0", dim=8, metric="l2", index=kind, index_options=None)
    g.register_version("v1", dim=8, metric="l2", index=kind, compatible_with=["v0"])
    g.add_with_ids(x, ids, version="v0")
    gone = ids[:400]  # > 20% of an HNSW graph: exercises tombstones and the rebuild
    g.remove_ids(gone)
    assert g.ntotal == 1100 and g.status() == {"v0": 1100, "v1": 0}
    r = g.search(x[:50], 10, version="v0")
    assert not set(r.ids.ravel()) & set(gone)
    # replace: move an item to v1 with a new vector, it is found under v1 at that vector
    target = np.full((1, 8), 50.0, np.float32)
    g.replace(target, [ids[500]], version="v1")
    assert g.status() == {"v0": 1099, "v1": 1}
    r = g.search(target, 1, version="v1")
    assert r.ids.tolist() == [[ids[500]]] and r.versions.tolist() == [["v1"]]
    assert r.distances[0, 0] == pytest.approx(0.0, abs=1e-3)
    assert g.get([ids[500]])[0].version == "v1"
    # replace again under the same version (re-adds a label in the same index)
    g.replace(target + 1, [ids[500]], version="v1")
    assert g.search(target + 1, 1, version="v1").ids.tolist() == [[ids[500]]]
    assert g.ntotal == 1100
    # a removed id can be added again
    g.add_with_ids(target - 1, [gone[0]], version="v0")
    assert g.search(target - 1, 1, version="v1").ids.tolist() == [[gone[0]]]


def test_few_small_ivf_is_exact_until_trained(rng):
    g = Gallery(":memory:")
    g.register_version("v0", dim=4, index="ivf", index_options={"min_train": 100})
    x = rng.standard_normal((50, 4))
    g.add_with_ids(x, ids_of(50), version="v0")
    order, _ = brute(x[:5], x, "cosine", 3)
    assert g.search(x[:5], 3, version="v0").ids.tolist() == np.array(ids_of(50))[order].tolist()
    g.add_with_ids(rng.standard_normal((100, 4)), ids_of(100, "j"), version="v0")  # trains now
    assert g.ntotal == 150
    assert g.search(x[:5], 1, version="v0").ids[:, 0].tolist() == ids_of(5)


def test_search_input_errors(rng):
    g = Gallery(":memory:")
    g.register_version("v0", dim=4)
    g.add_with_ids(np.ones((1, 4)), ["a"], version="v0")
    for k in (0, -1, 1.5, True, "3"):
        with pytest.raises(InputError, match="argument `k`"):
            g.search(np.ones((1, 4)), k, version="v0")
    with pytest.raises(InputError, match=r"Expected argument `k` to be a positive int, but got 0"):
        g.search(np.ones((1, 4)), 0, version="v0")
    with pytest.raises(InputError, match="argument `x`"):
        g.search(np.ones((1, 3)), 1, version="v0")
    with pytest.raises(InputError, match="argument `x`"):
        g.search(np.ones(4), 1, version="v0")
    with pytest.raises(InputError, match="argument `x`"):
        g.search([["a", "b", "c", "d"]], 1, version="v0")
    assert g.search([[1, 2, 3, 4]], 1, version="v0").ids.tolist() == [["a"]]
    with pytest.raises(InputError, match=r"argument `x`.*finite"):
        g.search(np.full((1, 4), np.nan), 1, version="v0")
    with pytest.raises(InputError, match=r"argument `x`.*non-zero"):
        g.search(np.zeros((1, 4)), 1, version="v0")
    with pytest.raises(InputError, match=r"argument `version`.*'nope'"):
        g.search(np.ones((1, 4)), 1, version="nope")
