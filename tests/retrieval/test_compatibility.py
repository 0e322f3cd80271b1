"""Compatibility criterion, update gain and the cross-model tables."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from retrieval_reference import by_id, by_position, ref_metrics

from graceful.errors import InputError, UndefinedMetricWarning
from graceful.retrieval import (
    cross_model_matrix,
    cross_model_metrics,
    is_compatible,
    retrieval_metrics,
    update_gain,
)


def models(seed: int, n: int = 24):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 4))
    labels = rng.integers(0, 3, size=n)
    return {
        "v0": base + rng.normal(scale=1.0, size=base.shape),
        "v1": base + rng.normal(scale=0.5, size=base.shape),
        "v2": rng.normal(size=(n, 4)),
    }, labels


# ----------------------------------------------------------------- criterion and gain


def test_is_compatible():
    assert is_compatible(0.62, 0.60) is True
    assert is_compatible(0.60, 0.60) is False  # strictly better
    assert is_compatible(0.55, 0.60) is False
    assert is_compatible(np.float64(0.7), 0.6) is True


def test_is_compatible_with_nan_is_false_and_warns():
    with pytest.warns(UndefinedMetricWarning, match="NaN"):
        assert is_compatible(math.nan, 0.6) is False


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ((0.65, 0.60, 0.70), 0.5),
        ((0.70, 0.60, 0.70), 1.0),
        ((0.60, 0.60, 0.80), 0.0),
        ((0.50, 0.60, 0.80), -0.5),
        ((0.90, 0.60, 0.80), 1.5),
        ((3, 1, 5), 0.5),
    ],
)
def test_update_gain_on_known_numbers(args, want):
    assert update_gain(*args) == pytest.approx(want, rel=1e-12)


def test_update_gain_with_zero_denominator_is_nan():
    with pytest.warns(UndefinedMetricWarning, match="is 0"):
        assert math.isnan(update_gain(0.7, 0.6, 0.6))


@pytest.mark.parametrize("args", [(math.nan, 0.6, 0.7), (0.6, math.nan, 0.7), (0.6, 0.5, math.nan)])
def test_update_gain_with_nan_input_is_nan(args):
    with pytest.warns(UndefinedMetricWarning, match="NaN"):
        assert math.isnan(update_gain(*args))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("0.6", 0.5, 0.7), "`m_new_old` to be a real number"),
        ((0.6, None, 0.7), "`m_old_old` to be a real number"),
        ((0.6, 0.5, True), "`m_newstar_newstar` to be a real number"),
        ((0.6, 0.5, math.inf), "`m_newstar_newstar` to be finite or NaN"),
    ],
)
def test_update_gain_bad_input(args, match):
    with pytest.raises(InputError, match=match):
        update_gain(*args)


def test_is_compatible_bad_input():
    with pytest.raises(InputError, match="`m_old_old` to be a real number"):
        is_compatible(0.5, [0.4])


# ----------------------------------------------------------------- cross-model tables


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_cross_model_metrics_against_reference(seed, metric):
    emb, labels = models(seed)
    got = cross_model_metrics(emb, labels, metric=metric, top_k=(1, 3))
    assert list(got.columns) == ["query", "gallery", "top1", "top3", "map"]
    pairs = [(q, g) for q in emb for g in emb]
    assert list(zip(got["query"], got["gallery"], strict=True)) == pairs
    for row, (q, g) in zip(got.itertuples(index=False), pairs, strict=True):
        want = ref_metrics(
            emb[q], labels, emb[g], labels, excluded=by_position(24), metric=metric, top_k=(1, 3)
        )
        assert row.top1 == pytest.approx(want["top1"], rel=1e-12)
        assert row.top3 == pytest.approx(want["top3"], rel=1e-12)
        assert row.map == pytest.approx(want["map"], rel=1e-12)


def test_cross_model_metrics_with_ids():
    emb, labels = models(3, n=10)
    ids = np.array([f"item{i}" for i in range(10)])
    got = cross_model_metrics(emb, labels, ids=ids, top_k=2)
    want = ref_metrics(emb["v1"], labels, emb["v0"], labels, excluded=by_id(ids, ids), top_k=(2,))
    row = got[(got["query"] == "v1") & (got["gallery"] == "v0")].iloc[0]
    assert row["top2"] == pytest.approx(want["top2"], rel=1e-12)
    assert row["map"] == pytest.approx(want["map"], rel=1e-12)


def test_cross_model_matrix_is_the_pivot_of_the_long_table():
    emb, labels = models(4)
    long = cross_model_metrics(emb, labels, top_k=(1, 5))
    for measure in ("top1", "top5", "map"):
        matrix = cross_model_matrix(emb, labels, measure=measure, top_k=(1, 5))
        assert isinstance(matrix, pd.DataFrame)
        assert matrix.index.name == "query" and matrix.columns.name == "gallery"
        assert list(matrix.index) == list(matrix.columns) == ["v0", "v1", "v2"]
        for row in long.itertuples(index=False):
            assert matrix.loc[row.query, row.gallery] == getattr(row, measure)
    m = cross_model_matrix(emb, labels, measure="top1", top_k=(1, 5))
    assert m.loc["v1", "v0"] == retrieval_metrics(emb["v1"], labels, emb["v0"], labels)["top1"]


def test_cross_model_matrix_adds_the_measured_k():
    emb, labels = models(5)
    m = cross_model_matrix(emb, labels, measure="top3", top_k=1)
    want = retrieval_metrics(emb["v2"], labels, emb["v1"], labels, top_k=3)["top3"]
    assert m.loc["v2", "v1"] == want


def test_pairs_with_different_dimensions_are_nan():
    emb, labels = models(6)
    emb["wide"] = np.random.default_rng(0).normal(size=(24, 8))
    with pytest.warns(UndefinedMetricWarning, match="6 model pairs have different"):
        m = cross_model_matrix(emb, labels, measure="map")
    assert math.isnan(m.loc["wide", "v0"]) and math.isnan(m.loc["v1", "wide"])
    assert not math.isnan(m.loc["wide", "wide"]) and not math.isnan(m.loc["v0", "v1"])


def test_no_warning_for_well_formed_models():
    emb, labels = models(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cross_model_matrix(emb, labels)


def test_dropped_queries_warn_once_for_the_whole_table():
    emb, labels = models(8, n=6)
    labels = np.array([0, 0, 1, 1, 2, 3])
    with pytest.warns(UndefinedMetricWarning, match="2 of 6 queries") as record:
        cross_model_metrics(emb, labels, top_k=1)
    assert len(record) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embeddings": {}}, "`embeddings` to be a non-empty mapping"),
        ({"embeddings": [np.zeros((3, 2))]}, "`embeddings` to be a non-empty mapping"),
        (
            {"embeddings": {"a": np.ones((4, 2)), "b": np.ones((5, 2))}},
            "`embeddings` to hold the same items.*'a' has 4 rows and 'b' has 5",
        ),
        ({"embeddings": {"a": np.full((4, 2), np.nan)}}, r"`embeddings\['a'\]` to be finite"),
        ({"labels": [0, 1, 0]}, "`labels` to have one entry per row"),
        ({"measure": "top0"}, "`measure` to be 'map' or 'top<k>'"),
        ({"measure": "accuracy"}, "`measure` to be 'map' or 'top<k>'"),
        ({"measure": "top9"}, "`top_k` to be at most the gallery size"),
        ({"metric": "cos"}, "`metric` to be one of"),
        ({"ids": [0, 0, 1, 2]}, "`ids` to be unique, but 0 repeats"),
        ({"ids": [0, 1, 2]}, "`ids` to have one entry per row of `embeddings`"),
    ],
)
def test_cross_model_bad_input(kwargs, match):
    args = {
        "embeddings": {"a": np.eye(4)[:, :2] + 0.1, "b": np.eye(4)[:, 2:] + 0.1},
        "labels": [0, 0, 1, 1],
        "top_k": 1,
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        cross_model_matrix(**args)
