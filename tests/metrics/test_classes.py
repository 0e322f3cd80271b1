"""The torchmetrics classes fed in batches equal the functions on all data."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from reference import random_case, same

from graceful.errors import InputError, UndefinedMetricWarning
from graceful.metrics import (
    METRICS,
    BackwardErrorCompatibility,
    BackwardTrustCompatibility,
    ErrorRate,
    ModelUpdateMetrics,
    NegativeFlipImpact,
    NegativeFlipRate,
    PositiveFlipImpact,
    PositiveFlipRate,
    RelativeNegativeFlipRate,
    error_rate,
    flip_counts,
    model_update_metrics,
)

CLASSES = {
    "negative_flip_rate": NegativeFlipRate,
    "positive_flip_rate": PositiveFlipRate,
    "negative_flip_impact": NegativeFlipImpact,
    "positive_flip_impact": PositiveFlipImpact,
    "relative_negative_flip_rate": RelativeNegativeFlipRate,
    "backward_trust_compatibility": BackwardTrustCompatibility,
    "backward_error_compatibility": BackwardErrorCompatibility,
}
SPLITS = (1, 37, 38, 124)  # unequal batches, one of a single sample (sum 200)


def _batches(case, splits=SPLITS):
    bounds = np.cumsum((0, *splits))
    assert bounds[-1] == len(case.target)
    for lo, hi in itertools.pairwise(bounds):
        w = None if case.sample_weight is None else case.sample_weight[lo:hi]
        yield case.target[lo:hi], case.preds_old[lo:hi], case.preds_new[lo:hi], w


def _dyadic_weights(case):
    """Weights that sum exactly in any order (multiples of 1/4), so batching is exact."""
    rng = np.random.default_rng(0)
    case.sample_weight = rng.integers(0, 12, len(case.target)) / 4
    return case


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize(
    ("kind", "top_k", "weighted", "class_map"),
    [("labels", 1, False, False), ("logits", 2, True, True), ("ranked", 3, True, False)],
)
def test_class_in_batches_equals_function(name, kind, top_k, weighted, class_map):
    case = random_case(21, kind=kind, top_k=top_k, class_map=class_map)
    if weighted:
        case = _dyadic_weights(case)
    metric = CLASSES[name](top_k=top_k, class_map=case.class_map, ranked=case.ranked)
    for t, o, n, w in _batches(case):
        metric.update(torch.from_numpy(t), torch.from_numpy(o), torch.from_numpy(n), w)
    got = metric.compute()
    assert got.dtype == torch.float64 and got.ndim == 0
    want = model_update_metrics(case.target, case.preds_old, case.preds_new, **case.kwargs())
    assert float(got) == want[name]
    assert same(float(got), case.ref()[name], rel=1e-12)
    assert metric.flip_counts() == flip_counts(
        case.target, case.preds_old, case.preds_new, **case.kwargs()
    )


def test_model_update_metrics_dict():
    case = _dyadic_weights(random_case(4, kind="probs", top_k=2, class_map=True))
    metric = ModelUpdateMetrics(top_k=2, class_map=case.class_map)
    for t, o, n, w in _batches(case, (100, 1, 99)):
        metric.update(t, o, n, sample_weight=w)
    got = metric.compute()
    want = model_update_metrics(case.target, case.preds_old, case.preds_new, **case.kwargs())
    assert list(got) == list(want) == list(METRICS)
    for key, value in got.items():
        assert value.dtype == torch.float64 and value.ndim == 0
        assert float(value) == want[key]


def test_forward_returns_batch_value_and_accumulates():
    metric = NegativeFlipRate()
    batch = metric([0, 1], [0, 1], [0, 2])  # forward: value on this batch alone
    assert float(batch) == 0.5
    batch = metric([2, 2], [1, 2], [2, 2])
    assert float(batch) == 0.0
    assert float(metric.compute()) == 0.25


def test_reset():
    metric = ModelUpdateMetrics()
    metric.update([0, 1, 2], [0, 1, 1], [1, 1, 2])
    metric.reset()
    assert torch.equal(metric.counts, torch.zeros_like(metric.counts))
    metric.update([0, 1, 2], [0, 1, 0], [0, 0, 2])
    assert float(metric.compute()["negative_flip_rate"]) == 1 / 3


def test_undefined_is_nan_with_warning():
    metric = BackwardTrustCompatibility()
    metric.update([0, 1], [1, 0], [0, 1])
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(float(metric.compute()))


def test_error_rate_class():
    case = _dyadic_weights(random_case(8, kind="logits", top_k=2))
    metric = ErrorRate(top_k=2)
    for t, _, n, w in _batches(case):
        metric.update(t, n, w)
    got = metric.compute()
    assert got.dtype == torch.float64
    assert float(got) == error_rate(
        case.target, case.preds_new, top_k=2, sample_weight=case.sample_weight
    )
    ranked = ErrorRate(top_k=2, ranked=True)
    ranked.update([0, 1, 2, 2], [[0, 1], [2, 0], [0, 2], [1, 0]])  # ranked labels
    assert float(ranked.compute()) == 0.5
    with pytest.warns(UndefinedMetricWarning):
        empty = ErrorRate()
        empty.update([0], [1], sample_weight=[0.0])
        assert math.isnan(float(empty.compute()))


@pytest.mark.parametrize("cls", [*CLASSES.values(), ModelUpdateMetrics, ErrorRate])
def test_unknown_kwargs_raise(cls):
    with pytest.raises(ValueError, match="not_an_option"):
        cls(not_an_option=1)


@pytest.mark.parametrize("cls", [NegativeFlipRate, ModelUpdateMetrics, ErrorRate])
def test_bad_top_k_raises_in_init(cls):
    with pytest.raises(InputError, match="`top_k`"):
        cls(top_k=0)


def test_bad_batch_raises_and_leaves_state():
    metric = NegativeFlipRate(num_classes=3)
    metric.update([0, 1], [0, 1], [0, 2])
    with pytest.raises(InputError, match="`preds_new`"):
        metric.update([0, 1], [0, 1], [0, 3])
    with pytest.raises(InputError, match="`sample_weight`"):
        metric.update([0, 1], [0, 1], [0, 2], sample_weight=[1.0, -1.0])
    assert float(metric.compute()) == 0.5


def test_torchmetrics_options_pass_through():
    metric = NegativeFlipRate(compute_on_cpu=True, sync_on_compute=False)
    metric.update([0, 1], [0, 1], [0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        assert float(metric.compute()) == 0.5
