"""Properties every metric has: sample order and weight scale do not matter; states merge."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import ref_metrics, same

from graceful.metrics import (
    METRICS,
    ModelUpdateMetrics,
    NegativeFlipRate,
    backward_error_compatibility,
    backward_trust_compatibility,
    error_rate,
    flip_counts,
    model_update_metrics,
    negative_flip_impact,
    negative_flip_rate,
    positive_flip_impact,
    positive_flip_rate,
    relative_negative_flip_rate,
)

ALL_METRICS: dict[str, Callable[..., float]] = {
    "error_rate_old": lambda t, o, n, class_map=None, **kw: error_rate(t, o, **kw),
    "error_rate_new": lambda t, o, n, class_map=None, **kw: error_rate(t, n, **kw),
    "negative_flip_rate": negative_flip_rate,
    "positive_flip_rate": positive_flip_rate,
    "negative_flip_impact": negative_flip_impact,
    "positive_flip_impact": positive_flip_impact,
    "relative_negative_flip_rate": relative_negative_flip_rate,
    "backward_trust_compatibility": backward_trust_compatibility,
    "backward_error_compatibility": backward_error_compatibility,
}
assert set(ALL_METRICS) == set(METRICS)

SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def samples(draw, min_size=1, weighted=None):
    """Labels or scores for target, old and new, and optional positive weights."""
    n = draw(st.integers(min_size, 30))
    c = draw(st.integers(2, 4))
    labels = st.lists(st.integers(0, c - 1), min_size=n, max_size=n)
    target = np.array(draw(labels))
    if draw(st.booleans()):
        old, new = np.array(draw(labels)), np.array(draw(labels))
        top_k = 1
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        old, new = rng.normal(size=(n, c)), rng.normal(size=(n, c))
        top_k = draw(st.integers(1, c))
    if weighted is None:
        weighted = draw(st.booleans())
    weight = None
    if weighted:
        weight = np.array(draw(st.lists(st.integers(1, 8), min_size=n, max_size=n))) / 4
    return target, old, new, top_k, weight


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@SETTINGS
@given(samples(), st.randoms(use_true_random=False))
def test_sample_order_does_not_matter(data, random):
    target, old, new, top_k, weight = data
    perm = list(range(len(target)))
    random.shuffle(perm)
    pw = None if weight is None else weight[perm]
    for name, fn in ALL_METRICS.items():
        a = _quiet(fn, target, old, new, top_k=top_k, sample_weight=weight)
        b = _quiet(fn, target[perm], old[perm], new[perm], top_k=top_k, sample_weight=pw)
        # dyadic weights and integer counts sum exactly in any order
        assert same(a, b, rel=1e-12), name


@SETTINGS
@given(samples(weighted=True), st.floats(1e-3, 1e3))
def test_weight_scale_does_not_matter(data, scale):
    target, old, new, top_k, weight = data
    for name, fn in ALL_METRICS.items():
        a = _quiet(fn, target, old, new, top_k=top_k, sample_weight=weight)
        b = _quiet(fn, target, old, new, top_k=top_k, sample_weight=weight * scale)
        assert same(a, b, rel=1e-12), name
    # unit weights are no weights
    ones = np.ones(len(target))
    a = _quiet(model_update_metrics, target, old, new, top_k=top_k)
    b = _quiet(model_update_metrics, target, old, new, top_k=top_k, sample_weight=ones)
    assert all(same(a[k], b[k]) for k in a)


@SETTINGS
@given(samples(min_size=2), st.data())
def test_merged_halves_equal_one_pass(data, draw):
    target, old, new, top_k, weight = data
    n = len(target)
    cut = draw.draw(st.integers(1, n - 1))
    kw = {"top_k": top_k}
    wa = None if weight is None else weight[:cut]
    wb = None if weight is None else weight[cut:]
    whole = flip_counts(target, old, new, sample_weight=weight, **kw)
    a = flip_counts(target[:cut], old[:cut], new[:cut], sample_weight=wa, **kw)
    b = flip_counts(target[cut:], old[cut:], new[cut:], sample_weight=wb, **kw)
    assert a + b == whole == b + a  # exact: dyadic weights


@SETTINGS
@given(samples(min_size=3), st.data())
def test_metric_class_in_batches_equals_one_pass(data, draw):
    target, old, new, top_k, weight = data
    n = len(target)
    # three unequal batches, the first of a single sample
    cut = draw.draw(st.integers(2, n - 1))
    bounds = [(0, 1), (1, cut), (cut, n)]
    every = ModelUpdateMetrics(top_k=top_k)
    nfr = NegativeFlipRate(top_k=top_k)
    for lo, hi in bounds:
        w = None if weight is None else torch.from_numpy(weight[lo:hi])
        for metric in (every, nfr):
            metric.update(target[lo:hi], old[lo:hi], new[lo:hi], sample_weight=w)
    got = _quiet(every.compute)
    want = _quiet(model_update_metrics, target, old, new, top_k=top_k, sample_weight=weight)
    assert all(same(float(got[k]), want[k]) for k in want)
    assert same(float(_quiet(nfr.compute)), want["negative_flip_rate"])


@SETTINGS
@given(samples(weighted=False))
def test_label_predictions_match_reference(data):
    target, old, new, top_k, _ = data
    got = _quiet(model_update_metrics, target, old, new, top_k=top_k)
    want = ref_metrics(target.tolist(), old.tolist(), new.tolist(), top_k=top_k)
    for k in want:
        assert same(got[k], want[k], rel=1e-12), k
    acc_diff = (1 - got["error_rate_new"]) - (1 - got["error_rate_old"])
    assert math.isclose(
        acc_diff, got["positive_flip_rate"] - got["negative_flip_rate"], abs_tol=1e-12
    )
