"""The backfilling curve and its normalised area."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from retrieval_reference import by_id, by_position, ref_metrics

from graceful.errors import InputError, UndefinedMetricWarning
from graceful.retrieval import DEFAULT_FRACTIONS, backfill_curve, curve_auc, retrieval_metrics

N = 20


def setup(seed: int):
    rng = np.random.default_rng(seed)
    new = rng.normal(size=(N, 3))
    old = new + rng.normal(scale=1.0, size=new.shape)
    labels = rng.integers(0, 3, size=N)
    order = rng.permutation(N)
    return new, old, labels, order


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_ends_of_the_curve(seed, metric):
    new, old, labels, order = setup(seed)
    curve = backfill_curve(new, old, new, labels, order, metric=metric)
    assert isinstance(curve, pd.DataFrame)
    assert list(curve.columns) == ["fraction", "top1", "top5", "map"]
    assert curve["fraction"].tolist() == list(DEFAULT_FRACTIONS)
    start = retrieval_metrics(new, labels, old, labels, metric=metric)
    end = retrieval_metrics(new, labels, new, labels, metric=metric)
    assert curve.iloc[0][["top1", "top5", "map"]].to_dict() == start
    assert curve.iloc[-1][["top1", "top5", "map"]].to_dict() == end


@pytest.mark.parametrize("seed", [3, 4])
def test_every_point_against_reference(seed):
    new, old, labels, order = setup(seed)
    fractions = [0.0, 0.25, 0.33, 0.5, 0.9, 1.0]
    curve = backfill_curve(new, old, new, labels, order, fractions=fractions, top_k=(1, 3))
    for f, row in zip(fractions, curve.itertuples(index=False), strict=True):
        gallery = old.copy()
        m = round(f * N)
        gallery[order[:m]] = new[order[:m]]
        want = ref_metrics(new, labels, gallery, labels, excluded=by_position(N), top_k=(1, 3))
        assert row.fraction == f
        assert row.top1 == pytest.approx(want["top1"], rel=1e-12)
        assert row.top3 == pytest.approx(want["top3"], rel=1e-12)
        assert row.map == pytest.approx(want["map"], rel=1e-12)


def test_rounding_of_the_backfilled_count():
    # N = 4: f = 0.5 -> 2 items, f = 0.3 -> round(1.2) = 1 item, f = 0.625 -> round(2.5) = 2
    old = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    new = old[:, ::-1].copy()  # the new model swaps the axes
    labels = [0, 1, 0, 1]
    order = [3, 0, 1, 2]
    curve = backfill_curve(new, old, new, labels, order, fractions=[0.3, 0.625], top_k=1)
    for f, m in ((0.3, 1), (0.625, 2)):
        gallery = old.copy()
        gallery[order[:m]] = new[order[:m]]
        want = retrieval_metrics(new, labels, gallery, labels, top_k=1)
        got = curve[curve["fraction"] == f].iloc[0]
        assert got["top1"] == want["top1"] and got["map"] == want["map"]


def test_leave_one_out_by_ids():
    new, old, labels, order = setup(5)
    ids = np.arange(100, 100 + N)
    curve = backfill_curve(new, old, new, labels, order, ids=ids, fractions=[0.5], top_k=2)
    gallery = old.copy()
    gallery[order[:10]] = new[order[:10]]
    want = ref_metrics(new, labels, gallery, labels, excluded=by_id(ids, ids), top_k=(2,))
    assert curve["top2"].iloc[0] == pytest.approx(want["top2"], rel=1e-12)
    assert curve["map"].iloc[0] == pytest.approx(want["map"], rel=1e-12)


def test_dropped_queries_warn_once():
    new, old, _, order = setup(6)
    labels = np.array([0] * (N - 1) + [1])
    with pytest.warns(UndefinedMetricWarning, match=f"1 of {N} queries") as record:
        backfill_curve(new, old, new, labels, order, top_k=1)
    assert len(record) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"order": np.arange(N - 1)}, f"`order` to be a permutation of the {N}"),
        ({"order": np.zeros(N, dtype=int)}, "`order` to be a permutation.*repeats"),
        ({"order": np.arange(1, N + 1)}, "`order` to be a permutation"),
        ({"order": np.arange(N, dtype=float)}, "`order` to be a 1-D array of gallery positions"),
        ({"order": np.arange(N)[:, None]}, "`order` to be a 1-D array"),
        ({"fractions": [0.0, 1.5]}, r"`fractions` to lie in \[0, 1\], but got 1.5"),
        ({"fractions": [-0.1]}, r"`fractions` to lie in \[0, 1\]"),
        ({"fractions": [math.nan]}, r"`fractions` to lie in \[0, 1\]"),
        ({"fractions": []}, "`fractions` to be a non-empty 1-D"),
        ({"gallery_old": np.zeros((N, 4))}, r"`gallery_old` to have the shape .*\(20, 3\)"),
        ({"gallery_new": np.zeros((N - 1, 3))}, "`gallery_new` to have the shape"),
        ({"labels": np.zeros(N - 1, dtype=int)}, "`labels` to have one entry per row"),
        ({"ids": np.zeros(N, dtype=int)}, "`ids` to be unique"),
        ({"metric": "manhattan"}, "`metric` to be one of"),
        ({"top_k": (1, N + 1)}, "`top_k` to be at most the gallery size"),
        ({"batch_size": -1}, "`batch_size` to be a positive int"),
    ],
)
def test_bad_input(kwargs, match):
    new, old, labels, order = setup(7)
    args = {
        "query_embeddings": new,
        "gallery_old": old,
        "gallery_new": new,
        "labels": labels,
        "order": order,
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        backfill_curve(**args)


# ----------------------------------------------------------------- curve_auc


@pytest.mark.parametrize(
    ("fractions", "values", "want"),
    [
        ([0.0, 0.5, 1.0], [0.6, 0.6, 0.6], 0.6),
        ([0.0, 1.0], [0.2, 0.6], 0.4),
        ([0.0, 0.5, 1.0], [0.0, 1.0, 1.0], 0.75),
        ([0.0, 0.2, 1.0], [0.0, 1.0, 1.0], 0.9),
        ([0.5, 1.0], [0.2, 0.4], 0.3),  # normalised by the range's width, not by 1
        ([0.0, 0.5, 0.5, 1.0], [0.0, 0.0, 1.0, 1.0], 0.5),  # a step
    ],
)
def test_curve_auc_known_values(fractions, values, want):
    assert curve_auc(fractions, values) == pytest.approx(want, rel=1e-12)


def test_curve_auc_of_a_backfill_curve():
    new, old, labels, order = setup(8)
    curve = backfill_curve(new, old, new, labels, order)
    auc = curve_auc(curve["fraction"], curve["top1"])
    assert min(curve["top1"]) <= auc <= max(curve["top1"])


def test_curve_auc_with_nan_value_is_nan():
    with pytest.warns(UndefinedMetricWarning, match="NaN"):
        assert math.isnan(curve_auc([0.0, 1.0], [0.5, math.nan]))


@pytest.mark.parametrize(
    ("fractions", "values", "match"),
    [
        ([0.0, 1.0, 0.5], [1, 2, 3], "`fractions` to be sorted"),
        ([0.0, 1.0], [1, 2, 3], "same length, but got 2 and 3"),
        ([0.5], [1.0], "`fractions` to hold at least two distinct values"),
        ([0.5, 0.5], [1.0, 2.0], "`fractions` to hold at least two distinct values"),
        ([0.0, math.inf], [1.0, 2.0], "`fractions` to be finite"),
        ([[0.0, 1.0]], [[1.0, 2.0]], "`fractions` to be a 1-D sequence"),
        ([0.0, 1.0], ["a", "b"], "`values` to be a 1-D sequence of numbers"),
    ],
)
def test_curve_auc_bad_input(fractions, values, match):
    with pytest.raises(InputError, match=match):
        curve_auc(fractions, values)
