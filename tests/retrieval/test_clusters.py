"""Old clusters serving new vectors: assignment, agreement (ARI, NMI) and purity."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from graceful.errors import InputError
from graceful.retrieval import (
    assign_clusters,
    cluster_agreement,
    cluster_purity,
    compose_adapters,
    fit_centroids,
    fit_query_adapter,
)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
def test_agreement_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    a = rng.integers(0, int(rng.integers(1, 12)), size=n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, 9, size=n)) * 7 + 3  # relabelled
    got = cluster_agreement(a, b)
    assert got["ari"] == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert got["nmi"] == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)


def test_agreement_edge_cases():
    assert cluster_agreement([0, 0, 0], [4, 4, 4]) == {"ari": 1.0, "nmi": 1.0, "same_id": 0.0}
    assert cluster_agreement([0, 1, 1, 2], [0, 1, 2, 2])["same_id"] == 0.75
    assert cluster_agreement(["x", "y"], [1, 2])["ari"] == 1.0
    assert cluster_agreement([0, 1, 2, 3], [0, 0, 0, 0])["nmi"] == 0.0


def test_purity_counts_the_majority_label_of_each_cluster():
    clusters = [0, 0, 0, 1, 1, 2]
    labels = ["a", "a", "b", "b", "b", "c"]
    assert cluster_purity(clusters, labels) == pytest.approx(5 / 6)
    assert cluster_purity(labels, labels) == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cluster_agreement([0, 1], [0, 1, 1]), "`reference` and `assigned`"),
        (lambda: cluster_agreement([], []), "`reference`"),
        (lambda: cluster_purity([[0, 1]], [0, 1]), "`clusters`"),
        (lambda: cluster_purity([0, 1], [0]), "`clusters` and `labels`"),
    ],
)
def test_bad_assignments_name_the_argument(call, message):
    with pytest.raises(InputError, match=message):
        call()


@pytest.mark.parametrize("normalize", [True, False])
def test_assignment_is_the_brute_force_nearest_centroid(normalize):
    rng = np.random.default_rng(1)
    x, c = rng.normal(size=(500, 5)), rng.normal(size=(7, 5))
    got = assign_clusters(x, c, normalize=normalize)
    if normalize:
        expected = np.argmax(_unit(x) @ _unit(c).T, axis=1)
    else:
        expected = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64


def test_centroids_recover_separated_clusters():
    rng = np.random.default_rng(2)
    centres = 10 * np.eye(4)
    truth = rng.integers(0, 4, size=400)
    x = centres[truth] + rng.normal(scale=0.3, size=(400, 4))
    for normalize in (True, False):
        c = fit_centroids(x, 4, normalize=normalize, seed=3)
        assert c.shape == (4, 4) and c.dtype == np.float32
        assigned = assign_clusters(x, c, normalize=normalize)
        assert cluster_agreement(truth, assigned)["ari"] == 1.0


def test_new_vectors_through_an_adapter_keep_the_old_clusters():
    """A new space a rotation away: raw new vectors cannot use the old centroids, adapted can."""
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 5, size=600)
    old = 6 * np.eye(5)[truth] + rng.normal(scale=0.5, size=(600, 5))
    rotation = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    new = old @ rotation
    centroids = fit_centroids(old, 5, seed=0)
    reference = assign_clusters(old, centroids)
    adapter = fit_query_adapter(new[:100], old[:100], kind="procrustes")
    adapted = assign_clusters(new, centroids, adapter=adapter)
    kept = cluster_agreement(reference, adapted)
    assert kept["ari"] > 0.97 and kept["same_id"] > 0.97
    raw = assign_clusters(new, centroids)  # same dim, wrong space: the ids are lost
    assert cluster_agreement(reference, raw)["same_id"] < 0.5


def test_assignment_refuses_dimensions_that_do_not_fit():
    rng = np.random.default_rng(5)
    c = rng.normal(size=(3, 4))
    with pytest.raises(InputError, match="centroids' dim 4, but got dim 6"):
        assign_clusters(rng.normal(size=(10, 6)), c)
    adapter = fit_query_adapter(rng.normal(size=(20, 6)), rng.normal(size=(20, 3)))
    with pytest.raises(InputError, match="map into the centroids' dim 4, but it maps dim 6"):
        assign_clusters(rng.normal(size=(10, 6)), c, adapter=adapter)
    with pytest.raises(InputError, match="`adapter`"):
        assign_clusters(rng.normal(size=(10, 4)), c, adapter="procrustes")
    with pytest.raises(InputError, match="`centroids`"):
        assign_clusters(rng.normal(size=(10, 4)), np.zeros((0, 4)))
    with pytest.raises(InputError, match="`x`"):
        assign_clusters(np.zeros((2, 4)), c)  # a zero row cannot be normalised
    with pytest.raises(InputError, match="`k`"):
        fit_centroids(rng.normal(size=(5, 4)), 6)


def test_composed_adapters_apply_each_link_and_survive_bytes():
    rng = np.random.default_rng(6)
    v3, v2, v1 = (rng.normal(size=(80, d)) for d in (8, 6, 4))
    a32 = fit_query_adapter(v3, v2, kind="affine")
    a21 = fit_query_adapter(v2, v1, kind="residual_mlp", hidden=8, max_epochs=3)
    chain = compose_adapters(a32, a21)
    assert (chain.dim_in, chain.dim_out, len(chain.links)) == (8, 4, 2)
    q = rng.normal(size=(5, 8))
    np.testing.assert_allclose(chain(q), a21(a32(q)), rtol=1e-6, atol=1e-6)
    again = type(chain).from_bytes(chain.to_bytes())
    np.testing.assert_array_equal(again(q), chain(q))
    assert [link.kind for link in again.links] == ["affine", "residual_mlp"]
    a43 = fit_query_adapter(rng.normal(size=(80, 5)), v3[:, :8])
    longer = compose_adapters(a43, chain)  # a chain inside a chain is flattened
    assert len(longer.links) == 3 and longer.dim_out == 4


def test_composing_refuses_links_that_do_not_meet():
    rng = np.random.default_rng(7)
    a = fit_query_adapter(rng.normal(size=(20, 6)), rng.normal(size=(20, 3)))
    b = fit_query_adapter(rng.normal(size=(20, 4)), rng.normal(size=(20, 2)))
    with pytest.raises(InputError, match=r"adapters\[1\] to take the dim 3 vectors"):
        compose_adapters(a, b)
    with pytest.raises(InputError, match="at least one adapter"):
        compose_adapters()
    with pytest.raises(InputError, match=r"adapters\[0\]"):
        compose_adapters("procrustes")  # type: ignore[arg-type]
