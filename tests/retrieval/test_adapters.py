"""Query adapters: exact recovery of known maps, the ridge's own weight, round trips, bad input."""

import numpy as np
import pytest

from graceful.errors import InputError
from graceful.retrieval.adapters import QueryAdapter, fit_query_adapter, select_query_adapter


def _rotation(rng, d):
    return np.linalg.qr(rng.normal(size=(d, d)))[0]


def test_procrustes_recovers_a_rotation_and_a_scale():
    rng = np.random.default_rng(0)
    new = rng.normal(size=(100, 6))
    old = 3.0 * new @ _rotation(rng, 6) + 1.0
    adapter = fit_query_adapter(new, old, kind="procrustes", normalize=False)
    np.testing.assert_allclose(adapter(new), old, atol=1e-4)
    assert adapter.info["scale"] == pytest.approx(3.0)
    assert adapter.info["relative_residual"] < 1e-10


def test_procrustes_between_dimensions_is_semi_orthogonal():
    rng = np.random.default_rng(1)
    # isotropic on the sample (new^T new = n I): then the projection is the exact optimum
    raw = rng.normal(size=(200, 8))
    new = np.linalg.qr(raw - raw.mean(0))[0] * np.sqrt(200)  # centred columns stay centred
    old = new @ _rotation(rng, 8)[:, :3]  # the old space keeps 3 of the directions
    adapter = fit_query_adapter(new, old, kind="procrustes", normalize=False, scale=False)
    w = adapter.weight
    assert w.shape == (8, 3)
    np.testing.assert_allclose(w.T @ w, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(adapter(new), old, atol=1e-4)


def test_affine_recovers_a_linear_drift_and_low_rank_keeps_its_rank():
    rng = np.random.default_rng(2)
    new = rng.normal(size=(400, 10))
    low = rng.normal(size=(10, 2)) @ rng.normal(size=(2, 7))  # a rank-2 map
    old = new @ low - 2.0
    full = fit_query_adapter(new, old, kind="affine", normalize=False)
    np.testing.assert_allclose(full(new), old, atol=1e-2)
    reduced = fit_query_adapter(new, old, kind="affine", normalize=False, rank=2)
    np.testing.assert_allclose(reduced(new), old, atol=1e-2)
    assert np.linalg.matrix_rank(reduced.weight, tol=1e-4) == 2
    too_low = fit_query_adapter(new, old, kind="affine", normalize=False, rank=1)
    assert too_low.info["relative_residual"] > 0.01  # rank 1 cannot hold a rank-2 map


def test_gcv_regularises_noisy_few_pairs_and_not_clean_many():
    rng = np.random.default_rng(3)
    d = 50
    true = rng.normal(size=(d, d)) / np.sqrt(d)
    clean_x = rng.normal(size=(2000, d))
    clean = fit_query_adapter(clean_x, clean_x @ true, kind="affine", normalize=False)
    noisy_x = rng.normal(size=(40, d))  # fewer pairs than dimensions, much noise
    noisy_y = noisy_x @ true + rng.normal(size=(40, d))
    noisy = fit_query_adapter(noisy_x, noisy_y, kind="affine", normalize=False)
    assert noisy.info["ridge_relative"] > 1e3 * clean.info["ridge_relative"]
    # and it generalises better than an almost unregularised fit
    test_x = rng.normal(size=(500, d))
    w_min_norm = np.linalg.pinv(noisy_x - noisy_x.mean(0)) @ (noisy_y - noisy_y.mean(0))
    err_gcv = np.mean((noisy(test_x) - test_x @ true) ** 2)
    err_pinv = np.mean(
        ((test_x - noisy_x.mean(0)) @ w_min_norm + noisy_y.mean(0) - test_x @ true) ** 2
    )
    assert err_gcv < err_pinv


def test_residual_mlp_beats_the_affine_map_on_a_curved_drift():
    rng = np.random.default_rng(4)
    new = rng.normal(size=(3000, 4))
    old = np.tanh(2.0 * new @ rng.normal(size=(4, 4)))
    fit_x, fit_y, held_x, held_y = new[:2500], old[:2500], new[2500:], old[2500:]
    affine = fit_query_adapter(fit_x, fit_y, kind="affine", normalize=False)
    mlp = fit_query_adapter(fit_x, fit_y, kind="residual_mlp", normalize=False, hidden=64)
    err_affine = np.mean((affine(held_x) - held_y) ** 2)
    err_mlp = np.mean((mlp(held_x) - held_y) ** 2)
    assert err_mlp < 0.5 * err_affine
    assert mlp.info["epochs"] >= 1 and mlp.info["held_out"] == 250


def test_normalised_adapter_returns_unit_vectors_float32():
    rng = np.random.default_rng(5)
    new, old = rng.normal(size=(50, 5)), rng.normal(size=(50, 3))
    out = fit_query_adapter(new, old)(new[:7])
    assert out.dtype == np.float32 and out.shape == (7, 3)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["procrustes", "affine", "residual_mlp"])
def test_bytes_round_trip_gives_the_same_outputs(kind):
    rng = np.random.default_rng(6)
    new, old = rng.normal(size=(60, 5)), rng.normal(size=(60, 4))
    adapter = fit_query_adapter(new, old, kind=kind, max_epochs=3)
    again = QueryAdapter.from_bytes(adapter.to_bytes())
    assert again.kind == kind and again.info == adapter.info
    np.testing.assert_array_equal(again(new), adapter(new))


def test_unreadable_or_foreign_bytes_are_one_line_errors():
    with pytest.raises(InputError, match="saved query adapter"):
        QueryAdapter.from_bytes(b"not an npz")
    import io

    buffer = io.BytesIO()
    np.savez(buffer, weight=np.eye(2))
    with pytest.raises(InputError, match="saved query adapter"):
        QueryAdapter.from_bytes(buffer.getvalue())


def test_bad_input_names_the_argument():
    rng = np.random.default_rng(7)
    new, old = rng.normal(size=(10, 4)), rng.normal(size=(10, 3))
    with pytest.raises(InputError, match="`old`"):
        fit_query_adapter(new, old[:9])
    with pytest.raises(InputError, match="at least 2 paired items"):
        fit_query_adapter(new[:1], old[:1])
    bad = new.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="`new`"):
        fit_query_adapter(bad, old)
    zero = new.copy()
    zero[3] = 0.0
    with pytest.raises(InputError, match="`new`"):
        fit_query_adapter(zero, old)  # cannot be normalised
    fit_query_adapter(zero, old, normalize=False)  # fine without normalising
    with pytest.raises(InputError, match="`kind`"):
        fit_query_adapter(new, old, kind="rotation")
    with pytest.raises(InputError, match="`rank`"):
        fit_query_adapter(new, old, kind="procrustes", rank=2)
    with pytest.raises(InputError, match="`rank`"):
        fit_query_adapter(new, old, kind="affine", rank=4)
    adapter = fit_query_adapter(new, old)
    with pytest.raises(InputError, match="`x`"):
        adapter(rng.normal(size=(2, 3)))


def test_a_centred_adapter_drops_only_the_old_mean():
    rng = np.random.default_rng(8)
    new, old = rng.normal(size=(80, 5)), rng.normal(size=(80, 4)) + 3.0
    full = fit_query_adapter(new, old, normalize=False)
    centred = fit_query_adapter(new, old, normalize=False, center=True)
    np.testing.assert_allclose(centred(new) + full.bias, full(new), atol=1e-5)
    assert centred.info["centered"] and not np.any(centred.bias)
    with pytest.raises(InputError, match="`center`"):
        fit_query_adapter(new, old, center="yes")


def test_remove_top_projects_the_old_leading_directions_out_of_the_output():
    rng = np.random.default_rng(21)
    old = rng.normal(size=(200, 6)) + 3.0 * rng.normal(size=(1, 6))  # a dominant direction
    new = np.tanh(old @ rng.normal(size=(6, 8)))
    for kind in ("procrustes", "affine", "residual_mlp"):
        options = {"kind": kind, "max_epochs": 3, "hidden": 8} if kind == "residual_mlp" else {}
        plain = fit_query_adapter(new, old, center=True, **options)
        cut = fit_query_adapter(new, old, center=True, remove_top=2, **options)
        unit_old = old / np.linalg.norm(old, axis=1, keepdims=True)
        _, _, vt = np.linalg.svd(unit_old - unit_old.mean(0), full_matrices=False)
        top = vt[:2].T
        expected = plain(new[:10]) - (plain(new[:10]) @ top) @ top.T
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(cut(new[:10]), expected, atol=1e-5)
        np.testing.assert_allclose(cut(new[:10]) @ top, 0.0, atol=1e-5)
        assert cut.info["remove_top"] == 2 and "remove_top" not in plain.info
    with pytest.raises(InputError, match="`remove_top`"):
        fit_query_adapter(new, old, remove_top=6)


def test_selection_cross_validates_the_candidates_and_refits_the_best():
    rng = np.random.default_rng(22)
    labels = rng.integers(0, 4, size=240)
    centres = rng.normal(size=(4, 6))
    old = centres[labels] + 0.6 * rng.normal(size=(240, 6)) + 4.0  # a large shared mean
    new = (
        np.concatenate([old, rng.normal(size=(240, 2))], axis=1)
        @ np.linalg.qr(rng.normal(size=(8, 8)))[0]
    )
    chosen = select_query_adapter(new, old, labels, remove_tops=(0, 1), folds=4, seed=1)
    table = chosen.info["selection"]
    assert [(r["center"], r["remove_top"]) for r in table] == [
        (False, 0), (False, 1), (True, 0), (True, 1),
    ]  # fmt: skip
    best = max(table, key=lambda r: r["score"])
    assert chosen.info["selected_by"] == "map"
    assert chosen.info.get("centered", False) == best["center"]
    assert chosen.info.get("remove_top", 0) == best["remove_top"]
    refit = fit_query_adapter(
        new, old, center=best["center"], remove_top=best["remove_top"], seed=1
    )
    np.testing.assert_allclose(chosen(new[:5]), refit(new[:5]), atol=1e-6)
    free = select_query_adapter(new, old, centers=(True,), remove_tops=(0,), folds=3)
    assert free.info["selected_by"] == "mrr" and 0 < free.info["selection"][0]["score"] <= 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"labels": np.zeros(5)}, "`labels`"),
        ({"folds": 1}, "`folds`"),
        ({"centers": ()}, "`centers` and `remove_tops`"),
        ({"remove_tops": ()}, "`centers` and `remove_tops`"),
    ],
)
def test_selection_refuses_bad_arguments(options, message):
    rng = np.random.default_rng(23)
    with pytest.raises(InputError, match=message):
        select_query_adapter(rng.normal(size=(30, 4)), rng.normal(size=(30, 3)), **options)
