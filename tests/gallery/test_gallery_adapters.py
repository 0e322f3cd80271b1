"""Query adapters in the gallery: new-model queries search old items through a recorded map."""

import sqlite3

import numpy as np
import pytest

from graceful.errors import InputError
from graceful.gallery import Gallery, IncompatibleVersionsError, SQLiteStore
from graceful.retrieval import QueryAdapter, fit_query_adapter


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    old = rng.normal(size=(60, 4))  # the items under the old model (dim 4)
    new = np.tanh(old @ rng.normal(size=(4, 6)))  # the same items under the new one (dim 6)
    return old.astype(np.float32), new.astype(np.float32)


def _gallery(where, old):
    g = Gallery(where) if isinstance(where, str) else where.gallery()
    g.register_version("v0", dim=4)
    g.register_version("v1", dim=6)
    g.add_with_ids(old, [f"i{j}" for j in range(len(old))], version="v0")
    return g


def _brute_force(queries, gallery, k):
    scores = _unit(queries) @ _unit(gallery).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k], np.sort(scores, axis=1)[:, ::-1][
        :, :k
    ]


def test_queries_go_through_the_adapter_before_the_old_items(tmp_path, pairs):
    old, new = pairs
    g = _gallery(str(tmp_path / "g.sqlite"), old)
    with pytest.raises(IncompatibleVersionsError):
        g.search(new[:3], 5, version="v1")
    adapter = fit_query_adapter(new[:40], old[:40], kind="affine")
    g.record_compatibility("v1", "v0", {"map_ratio": 0.9}, adapter=adapter)
    result = g.search(new, 5, version="v1")
    order, scores = _brute_force(adapter(new), old, 5)
    assert result.ids.tolist() == [[f"i{j}" for j in row] for row in order]
    np.testing.assert_allclose(result.distances, scores, atol=1e-5)
    assert g.adapter("v1", "v0").to_bytes() == adapter.to_bytes()
    assert g.adapter("v0", "v0") is None


def test_a_mixed_gallery_merges_adapted_and_native_results(tmp_path, pairs):
    old, new = pairs
    g = _gallery(str(tmp_path / "g.sqlite"), old)
    adapter = fit_query_adapter(new, old, kind="procrustes")
    g.record_compatibility("v1", "v0", {}, adapter=adapter)
    g.replace(new[:20], [f"i{j}" for j in range(20)], version="v1")  # backfilled part
    result = g.search(new[:5], 60, version="v1")
    native = _unit(new[:5]) @ _unit(new[:20]).T
    adapted = _unit(adapter(new[:5])) @ _unit(old[20:]).T
    expected = np.sort(np.concatenate([native, adapted], axis=1), axis=1)[:, ::-1]
    np.testing.assert_allclose(result.distances, expected, atol=1e-5)
    assert set(result.versions[0]) == {"v0", "v1"}


def test_the_adapter_survives_reopening_and_reaches_other_handles(backend, pairs):
    old, new = pairs
    a, b = _gallery(backend, old), backend.gallery()
    adapter = fit_query_adapter(new, old, kind="residual_mlp", max_epochs=5)
    a.record_compatibility("v1", "v0", {"recall": 0.9}, adapter=adapter)
    expected = a.search(new[:4], 3, version="v1")
    b.refresh()
    assert b.search(new[:4], 3, version="v1").ids.tolist() == expected.ids.tolist()
    a.close()
    b.close()
    with Gallery(store=backend.store(read_only=True)) as again:
        found = again.search(new[:4], 3, version="v1")
        assert found.ids.tolist() == expected.ids.tolist()
        assert again.compatibility()[0].evidence == {"recall": 0.9}


def test_a_wrong_adapter_names_both_versions_and_records_nothing(tmp_path, pairs):
    old, new = pairs
    g = _gallery(str(tmp_path / "g.sqlite"), old)
    backwards = fit_query_adapter(old, new)  # 4 -> 6, the wrong way round
    with pytest.raises(InputError, match=r"from 'v1' \(dim=6.*to 'v0' \(dim=4.*dim 4 to dim 6"):
        g.record_compatibility("v1", "v0", {}, adapter=backwards)
    with pytest.raises(InputError, match="adapter"):
        g.record_compatibility("v1", "v0", {}, adapter=np.eye(6, 4))
    with pytest.raises(InputError, match="share dim"):
        g.record_compatibility("v1", "v0", {})  # different dims need an adapter
    assert g.compatibility() == []
    with pytest.raises(IncompatibleVersionsError):
        g.search(new[:1], 1, version="v1")


def test_recording_the_pair_again_without_an_adapter_drops_it(backend):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 3))
    g = backend.gallery()
    g.register_version("v0", dim=3)
    g.register_version("v1", dim=3)
    g.record_compatibility("v1", "v0", {}, adapter=fit_query_adapter(x, -x))
    assert g.adapter("v1", "v0") is not None
    g.record_compatibility("v1", "v0", {"trained": True})
    assert g.adapter("v1", "v0") is None
    g.close()
    with backend.gallery() as again:
        assert again.adapter("v1", "v0") is None


def test_a_gallery_written_before_adapters_opens_and_takes_one(tmp_path, pairs):
    old, new = pairs
    path = str(tmp_path / "g.sqlite")
    _gallery(path, old).close()
    with sqlite3.connect(path) as conn:  # as an older graceful wrote it
        conn.execute("DROP TABLE compat_adapters")
    with Gallery(store=SQLiteStore(path, read_only=True)) as g:
        assert g.compatibility() == []
    with Gallery(path) as g:
        g.record_compatibility("v1", "v0", {}, adapter=fit_query_adapter(new, old))
        assert g.search(new[:2], 2, version="v1").ids.shape == (2, 2)


def test_a_damaged_adapter_is_a_one_line_error_naming_the_pair(tmp_path, pairs):
    old, new = pairs
    path = str(tmp_path / "g.sqlite")
    with _gallery(path, old) as g:
        g.record_compatibility("v1", "v0", {}, adapter=fit_query_adapter(new, old))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE compat_adapters SET adapter = x'00ff'")
    with pytest.raises(InputError, match=r"adapter recorded from 'v1' to 'v0' is damaged"):
        Gallery(path)


def test_query_adapter_bytes_are_what_the_store_keeps(backend, pairs):
    old, new = pairs
    adapter = fit_query_adapter(new, old)
    with _gallery(backend, old) as g:
        g.record_compatibility("v1", "v0", {}, adapter=adapter)
        stored = g.store.compatibility()[0].adapter
    assert QueryAdapter.from_bytes(stored).to_bytes() == adapter.to_bytes()


def test_an_adapter_that_maps_a_query_to_zero_is_a_one_line_error(tmp_path, pairs):
    old, new = pairs
    g = _gallery(str(tmp_path / "g.sqlite"), old)
    adapter = fit_query_adapter(new, old, kind="affine", normalize=False, center=True)
    g.record_compatibility("v1", "v0", {}, adapter=adapter)
    query = adapter.in_mean[None, :]  # exactly the mean: the centred map sends it to zero
    with pytest.raises(InputError, match=r"maps query 0 of argument `x` to a zero vector"):
        g.search(query, 2, version="v1")


def _chain_gallery(path):
    """v1 (dim 3) items; v2 (dim 4) and v3 (dim 5) spaces a linear map away."""
    rng = np.random.default_rng(11)
    v1 = rng.normal(size=(80, 3)).astype(np.float32)
    v2 = (v1 @ rng.normal(size=(3, 4))).astype(np.float32)
    v3 = (v2 @ rng.normal(size=(4, 5))).astype(np.float32)
    g = Gallery(path)
    for name, dim in (("v1", 3), ("v2", 4), ("v3", 5)):
        g.register_version(name, dim=dim)
    g.add_with_ids(v1, [f"i{j}" for j in range(80)], version="v1")
    return g, v1, v2, v3


def test_a_chain_of_adapters_lets_v3_queries_search_v1_items(tmp_path):
    path = tmp_path / "g.sqlite"
    g, v1, v2, v3 = _chain_gallery(path)
    a21 = fit_query_adapter(v2, v1, kind="affine", normalize=False)  # exact linear maps
    a32 = fit_query_adapter(v3, v2, kind="affine", normalize=False)
    g.record_compatibility("v2", "v1", {"map_ratio": 0.99}, adapter=a21)
    g.record_compatibility("v3", "v2", {"map_ratio": 0.99}, adapter=a32)
    with pytest.raises(IncompatibleVersionsError):  # the chain is not recorded by itself
        g.search(v3[:3], 1, version="v3")
    chain = g.chain_adapter(["v3", "v2", "v1"])
    np.testing.assert_allclose(chain(v3[:4]), a21(a32(v3[:4])), atol=1e-6)
    g.record_compatibility("v3", "v1", {"map_ratio": 0.98, "via": ["v2"]}, adapter=chain)
    assert g.search(v3[:10], 1, version="v3").ids[:, 0].tolist() == [f"i{j}" for j in range(10)]
    mapped = g.to_space(v3[:10], version="v3", gallery_version="v1")
    np.testing.assert_allclose(mapped, _unit(chain(v3[:10])), atol=1e-6)
    g.close()
    with Gallery(path) as again:  # the chain is stored, links and all
        assert len(again.adapter("v3", "v1").links) == 2
        assert again.search(v3[:5], 1, version="v3").ids[:, 0].tolist() == [
            f"i{j}" for j in range(5)
        ]


def test_a_trained_compatible_link_passes_vectors_on_as_they_are(tmp_path):
    g = Gallery(tmp_path / "g.sqlite")
    g.register_version("v1", dim=3)
    g.register_version("v2", dim=3, compatible_with=["v1"], evidence={"top1": 0.6})
    g.register_version("v3", dim=4)
    rng = np.random.default_rng(3)
    x3, x2 = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    a32 = fit_query_adapter(x3, x2)
    g.record_compatibility("v3", "v2", {}, adapter=a32)
    chain = g.chain_adapter(["v3", "v2", "v1"])
    assert len(chain.links) == 1
    np.testing.assert_array_equal(chain(x3[:3]), a32(x3[:3]))
    assert g.chain_adapter(["v2", "v1"]) is None  # trained compatible all the way
    q = np.array([[3.0, 0.0, 4.0]])
    np.testing.assert_allclose(g.to_space(q, version="v2", gallery_version="v1"), q / 5)
    g.close()


def test_an_unrecorded_link_names_both_versions_and_changes_nothing(tmp_path):
    g, v1, v2, v3 = _chain_gallery(tmp_path / "g.sqlite")
    g.record_compatibility("v3", "v2", {}, adapter=fit_query_adapter(v3, v2))
    before = g.seq
    with pytest.raises(
        InputError, match="no compatibility recorded from 'v2' to 'v1' \\(link 2\\)"
    ):
        g.chain_adapter(["v3", "v2", "v1"])
    with pytest.raises(InputError, match="`versions`"):
        g.chain_adapter(["v3"])
    with pytest.raises(InputError, match="`versions`"):
        g.chain_adapter("v3v2")
    with pytest.raises(InputError, match="`versions`"):
        g.chain_adapter(["v3", "v9"])
    with pytest.raises(InputError, match="from 'v3' to 'v1'"):
        g.to_space(v3[:2], version="v3", gallery_version="v1")
    with pytest.raises(InputError, match="`x`"):
        g.to_space(v1[:2], version="v3", gallery_version="v2")  # v1-sized vectors for v3
    assert g.seq == before
    g.close()
