"""retrieval_metrics against a loop-and-sort reference, hand-computed cases and bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from retrieval_reference import by_id, by_position, ref_metrics, ref_per_query

from graceful.errors import InputError, UndefinedMetricWarning
from graceful.retrieval import retrieval_metrics
from graceful.retrieval.evaluation import _rank_batch

SEEDS = [0, 1, 2, 3]


def assert_same(got: dict[str, float], want: dict[str, float]) -> None:
    assert list(got) == list(want)
    for key in want:
        if math.isnan(want[key]):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key


def random_set(seed: int, n: int = 30, d: int = 4, classes: int = 4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, classes, size=n)


# ----------------------------------------------------------------- hand-computed examples


def test_tiny_cosine_by_hand():
    # unit vectors at 0, ~37, 90 and ~53 degrees; labels 0, 0, 1, 1
    emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    labels = np.array([0, 0, 1, 1])
    # q0 -> b(.8) d(.6) c(0): rank 1.  q1 -> d(.96) a(.8) c(.6): relevant at 2.
    # q2 -> d(.8) b(.6) a(0): rank 1.  q3 -> b(.96) c(.8) a(.6): relevant at 2.
    got = retrieval_metrics(emb, labels, emb, labels, top_k=(1, 2, 3))
    assert got == {"top1": 0.5, "top2": 1.0, "top3": 1.0, "map": 0.75}


def test_tiny_l2_by_hand_with_a_tie():
    # points on a line at 0, 1, 3, 6; labels 0, 1, 0, 1
    emb = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0]])
    labels = np.array([0, 1, 0, 1])
    # q0: 1(d 1, l1) 2(9, l0) 3(36)        -> relevant at 2, AP 1/2
    # q1: 0(1, l0) 2(4, l0) 3(25, l1)      -> relevant at 3, AP 1/3
    # q2: 1(4, l1) then 0 and 3 tie at 9: position 0 first (l0) -> relevant at 2, AP 1/2
    # q3: 2(9, l0) 1(25, l1) 0(36)         -> relevant at 2, AP 1/2
    got = retrieval_metrics(emb, labels, emb, labels, metric="l2", top_k=(1, 2, 3))
    assert got["top1"] == 0.0
    assert got["top2"] == 0.75
    assert got["top3"] == 1.0
    assert got["map"] == pytest.approx((0.5 + 1 / 3 + 0.5 + 0.5) / 4, rel=1e-15)


def test_tie_broken_by_gallery_position():
    query = np.array([[1.0, 0.0]])
    gallery = np.array([[2.0, 0.0], [3.0, 0.0], [0.0, 1.0]])  # rows 0 and 1 tie (cosine 1)
    got = retrieval_metrics(query, [1], gallery, [0, 1, 1], top_k=(1, 2), leave_one_out=False)
    assert got == {"top1": 0.0, "top2": 1.0, "map": pytest.approx((1 / 2 + 2 / 3) / 2)}
    swapped = retrieval_metrics(
        query, [1], gallery[[1, 0, 2]], [1, 0, 1], top_k=(1, 2), leave_one_out=False
    )
    assert swapped == {"top1": 1.0, "top2": 1.0, "map": pytest.approx((1 + 2 / 3) / 2)}


def test_without_leave_one_out_each_query_finds_itself():
    emb, labels = random_set(0, n=12)
    got = retrieval_metrics(emb, labels, emb, labels, leave_one_out=False, top_k=1)
    assert got["top1"] == 1.0


# ----------------------------------------------------------------- against the reference


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_cross_model_leave_one_out_by_position(seed, metric):
    emb_new, labels = random_set(seed)
    emb_old = emb_new + np.random.default_rng(seed + 100).normal(scale=0.8, size=emb_new.shape)
    want = ref_metrics(
        emb_new, labels, emb_old, labels, excluded=by_position(30), metric=metric, top_k=(1, 3, 5)
    )
    got = retrieval_metrics(emb_new, labels, emb_old, labels, metric=metric, top_k=(1, 3, 5))
    assert_same(got, want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_ids_with_partly_overlapping_sets(seed, metric):
    rng = np.random.default_rng(seed)
    q, ql = random_set(seed, n=15)
    g, gl = random_set(seed + 50, n=25)
    query_ids = rng.permutation(40)[:15]  # some of them are gallery ids, some not
    gallery_ids = rng.permutation(40)[:25]
    assert 0 < len(set(query_ids) & set(gallery_ids)) < 15
    want = ref_metrics(
        q, ql, g, gl, excluded=by_id(query_ids, gallery_ids), metric=metric, top_k=(1, 2, 10)
    )
    got = retrieval_metrics(
        q,
        ql,
        g,
        gl,
        query_ids=query_ids,
        gallery_ids=gallery_ids,
        metric=metric,
        top_k=(1, 2, 10),
    )
    assert_same(got, want)


def test_string_ids_and_labels():
    q, ql = random_set(7, n=10)
    g, gl = random_set(8, n=12)
    names = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    query_ids, gallery_ids = names[:10], names[5:17]
    want = ref_metrics(q, ql, g, gl, excluded=by_id(query_ids, gallery_ids), top_k=(1, 3))
    got = retrieval_metrics(
        q,
        np.array([f"c{v}" for v in ql]),
        g,
        np.array([f"c{v}" for v in gl]),
        query_ids=query_ids,
        gallery_ids=gallery_ids,
        top_k=(1, 3),
    )
    assert_same(got, want)


@pytest.mark.parametrize("seed", SEEDS)
def test_ids_with_leave_one_out_false_exclude_nothing(seed):
    q, ql = random_set(seed, n=10)
    ids = np.arange(10)
    want = ref_metrics(q, ql, q, ql, excluded=None, top_k=(1, 2))
    got = retrieval_metrics(
        q, ql, q, ql, query_ids=ids, gallery_ids=ids, leave_one_out=False, top_k=(1, 2)
    )
    assert_same(got, want)


def integer_grid(seed: int, n: int, d: int = 2, high: int = 3):
    """Small integer vectors in float64: l2 scores are exact, so there are many exact ties."""
    rng = np.random.default_rng(seed)
    return rng.integers(-high, high + 1, size=(n, d)).astype(np.float64)


def axis_vectors(seed: int, n: int, d: int = 3):
    """Signed axis vectors scaled by powers of 2: every cosine is exactly -1, 0 or 1."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, d))
    out[np.arange(n), rng.integers(0, d, size=n)] = rng.choice([-1.0, 1.0], size=n) * (
        2.0 ** rng.integers(0, 4, size=n)
    )
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_many_ties_against_reference(seed, metric):
    rng = np.random.default_rng(seed)
    make = axis_vectors if metric == "cosine" else integer_grid
    q, g = make(seed, 25), make(seed + 10, 25)
    ql, gl = rng.integers(0, 3, size=25), rng.integers(0, 3, size=25)
    want = ref_metrics(q, ql, g, gl, excluded=by_position(25), metric=metric, top_k=(1, 2, 7))
    got = retrieval_metrics(q, ql, g, gl, metric=metric, top_k=(1, 2, 7))
    assert_same(got, want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("levels", [3, 8, 1000])
def test_ranks_of_tied_scores_against_the_definition(seed, levels):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(40, 30)).astype(np.float64)  # ties of every kind
    relevant = rng.random((40, 30)) < 0.3
    excluded = rng.integers(0, 30, size=40)
    scores[np.arange(40), excluded] = -np.inf
    relevant[np.arange(40), excluded] = False
    first, ap, n_rel = _rank_batch(scores, relevant)
    for i in range(40):
        order = sorted((j for j in range(30) if j != excluded[i]), key=lambda j: (-scores[i, j], j))
        rel = [bool(relevant[i, j]) for j in order]
        assert n_rel[i] == sum(rel)
        if not any(rel):
            assert first[i] == 0 and math.isnan(ap[i])
            continue
        assert first[i] == rel.index(True) + 1
        ranks = [n for n, hit in enumerate(rel, start=1) if hit]
        want = sum((c + 1) / rank for c, rank in enumerate(ranks)) / len(ranks)
        assert ap[i] == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_batch_size_does_not_change_the_result(metric):
    q, ql = random_set(5, n=40)
    g = q + np.random.default_rng(6).normal(scale=0.5, size=q.shape)
    results = [
        retrieval_metrics(q, ql, g, ql, metric=metric, batch_size=b, top_k=(1, 5, 10))
        for b in (1, 3, 40, 1024)
    ]
    assert all(r == results[0] for r in results)
    # exact ties (scores exact in floating point whatever the matmul kernel)
    grid = axis_vectors(1, 40) if metric == "cosine" else integer_grid(1, 40)
    tied = [
        retrieval_metrics(grid, ql, grid[::-1], ql[::-1], metric=metric, batch_size=b)
        for b in (1, 7, 1024)
    ]
    assert all(r == tied[0] for r in tied)


def test_torch_float32_and_numpy_agree_with_reference():
    q, ql = random_set(9, n=20)
    g, gl = random_set(10, n=20)
    want = ref_metrics(q, ql, g, gl, excluded=by_position(20), top_k=(1, 5))
    got = retrieval_metrics(
        torch.from_numpy(q).float(), torch.from_numpy(ql), torch.from_numpy(g).float(), gl
    )
    assert_same(got, want)
    ints = retrieval_metrics(integer_grid(2, 20), ql, integer_grid(3, 20), gl, metric="l2")
    assert_same(
        ints,
        ref_metrics(
            integer_grid(2, 20),
            ql,
            integer_grid(3, 20),
            gl,
            excluded=by_position(20),
            metric="l2",
        ),
    )


def test_integer_and_read_only_inputs():
    grid = integer_grid(4, 15)
    ql = np.random.default_rng(4).integers(0, 3, size=15)
    want = retrieval_metrics(grid, ql, grid[::-1].copy(), ql[::-1].copy(), metric="l2")
    read_only = grid.astype(np.int32)
    read_only.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = retrieval_metrics(read_only, ql, grid[::-1], ql[::-1], metric="l2")
    assert got == want


def test_reference_per_query_values_on_a_tiny_case():
    emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    per_query = ref_per_query(emb, [0, 0, 1, 1], emb, [0, 0, 1, 1], excluded=by_position(4))
    assert per_query == [(1, 1.0), (2, 0.5), (1, 1.0), (2, 0.5)]


# ----------------------------------------------------------------- undefined values


def test_queries_without_relevant_items_are_left_out_with_one_warning():
    q, _ = random_set(3, n=6)
    ql = np.array([0, 0, 1, 1, 2, 9])  # label 2 occurs once (only itself), label 9 never
    with pytest.warns(UndefinedMetricWarning, match="2 of 6 queries") as record:
        got = retrieval_metrics(q, ql, q, ql, top_k=(1, 2))
    assert len(record) == 1
    want = ref_metrics(q, ql, q, ql, excluded=by_position(6), top_k=(1, 2))
    assert_same(got, want)


def test_no_query_left_gives_nan_everywhere():
    q, _ = random_set(3, n=4)
    labels = np.arange(4)
    with pytest.warns(UndefinedMetricWarning, match="4 of 4 queries.*NaN"):
        got = retrieval_metrics(q, labels, q, labels, top_k=(1, 2))
    assert list(got) == ["top1", "top2", "map"]
    assert all(math.isnan(v) for v in got.values())


def test_no_warning_when_every_query_has_a_relevant_item():
    q, _ = random_set(3, n=4)
    labels = np.array([0, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        retrieval_metrics(q, labels, q, labels, top_k=1)


# ----------------------------------------------------------------- bad input

Q = np.random.default_rng(0).normal(size=(6, 3))
L = np.array([0, 0, 1, 1, 2, 2])


def call(**overrides):
    args = {
        "query_embeddings": Q,
        "query_labels": L,
        "gallery_embeddings": Q,
        "gallery_labels": L,
        "top_k": (1, 2),
    }
    args.update(overrides)
    return retrieval_metrics(**args)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"query_embeddings": Q[0]}, "`query_embeddings` to be 2-D"),
        ({"gallery_embeddings": Q[None]}, "`gallery_embeddings` to be 2-D"),
        ({"query_embeddings": np.where(Q > 1, np.nan, Q)}, "`query_embeddings` to be finite"),
        ({"gallery_embeddings": np.where(Q > 1, np.inf, Q)}, "`gallery_embeddings` to be finite"),
        ({"query_embeddings": Q[:, :2]}, r"shapes \(6, 2\) and \(6, 3\)"),
        ({"query_embeddings": np.zeros((0, 3))}, "`query_embeddings` to hold at least one"),
        ({"query_embeddings": Q.astype(str)}, "`query_embeddings` to hold real numbers"),
        ({"query_labels": L[:5]}, "`query_labels` to have one entry per row"),
        ({"gallery_labels": L[:, None]}, "`gallery_labels` to be 1-D"),
        ({"gallery_labels": L.astype(float)}, "`gallery_labels` to hold integers or strings"),
        ({"query_labels": L.astype(str)}, "`query_labels` and `gallery_labels` to be both"),
        ({"top_k": 0}, "`top_k` to be a positive int"),
        ({"top_k": (1, -2)}, "`top_k` to be a positive int"),
        ({"top_k": (1, 7)}, r"`top_k` to be at most the gallery size \(6\)"),
        ({"top_k": (1, 1)}, "`top_k` to hold distinct values"),
        ({"top_k": ()}, "`top_k` to hold at least one"),
        ({"top_k": (1.5,)}, "`top_k` to be a positive int"),
        ({"metric": "dot"}, "`metric` to be one of"),
        ({"batch_size": 0}, "`batch_size` to be a positive int"),
        ({"batch_size": True}, "`batch_size` to be a positive int"),
        ({"query_ids": np.arange(5), "gallery_ids": np.arange(6)}, "`query_ids` to have one"),
        ({"query_ids": np.arange(6), "gallery_ids": np.arange(7)}, "`gallery_ids` to have one"),
        ({"query_ids": np.arange(6)}, "`gallery_ids` to be given"),
        ({"gallery_ids": np.arange(6)}, "`query_ids` to be given"),
        (
            {"query_ids": np.arange(6), "gallery_ids": np.array([0, 1, 2, 3, 3, 5])},
            "`gallery_ids` to be unique, but 3 repeats",
        ),
        ({"query_ids": np.arange(6), "gallery_ids": np.arange(6).astype(str)}, "both numbers"),
        ({"leave_one_out": "yes"}, "`leave_one_out` to be a bool"),
        (
            {"gallery_embeddings": Q[:5], "gallery_labels": L[:5]},
            "`leave_one_out` to be False, or `query_ids` and `gallery_ids`",
        ),
    ],
)
def test_bad_input_names_the_argument(overrides, match):
    with pytest.raises(InputError, match=match) as info:
        call(**overrides)
    assert "\n" not in str(info.value)


def test_l2_overflow_is_an_input_error():
    big = np.full((3, 2), 1e300)
    with pytest.raises(InputError, match="overflow"):
        retrieval_metrics(big, [0, 0, 1], big, [0, 0, 1], metric="l2", top_k=1)


def test_different_set_sizes_are_fine_without_leave_one_out():
    got = call(gallery_embeddings=Q[:5], gallery_labels=L[:5], leave_one_out=False)
    want = ref_metrics(Q, L, Q[:5], L[:5], top_k=(1, 2))
    assert_same(got, want)
