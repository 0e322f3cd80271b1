"""``validate_args=False``: an update reads nothing back from the device.

A tensor on the ``meta`` device has a shape and a dtype but no data, so any host read
(``.item()``, ``int()``/``bool()`` of a tensor, ``tolist``, ``bincount``, ``unique``,
boolean-mask indexing, ``nonzero``) raises. Each case below runs ``update`` on meta
tensors: it must pass with ``validate_args=False`` and fail with ``validate_args=True``
(the value checks read data), which shows the test can fail.
"""

from __future__ import annotations

import pytest
import torch
from reference import random_case

from graceful.metrics import (
    ErrorRate,
    ModelUpdateMetrics,
    NegativeFlipRate,
    PositiveFlipImpact,
    flip_counts,
)
from graceful.metrics._counts import STATE_SIZE

N, C = 64, 6
META = torch.device("meta")


def _labels() -> torch.Tensor:
    return torch.empty(N, dtype=torch.int64, device=META)


def _scores() -> torch.Tensor:
    return torch.empty(N, C, dtype=torch.float32, device=META)


def _ranked(k: int = 3) -> torch.Tensor:
    return torch.empty(N, k, dtype=torch.int64, device=META)


def _weights() -> torch.Tensor:
    return torch.empty(N, dtype=torch.float64, device=META)


# name -> (metric class, constructor options, update arguments)
CASES = {
    "labels": (NegativeFlipRate, {}, lambda: (_labels(), _labels(), _labels())),
    "labels, num_classes": (NegativeFlipRate, {"num_classes": C}, lambda: (_labels(),) * 3),
    "scores top-1": (ModelUpdateMetrics, {}, lambda: (_labels(), _scores(), _scores())),
    "scores top-3": (ModelUpdateMetrics, {"top_k": 3}, lambda: (_labels(), _scores(), _scores())),
    "ranked top-2": (
        NegativeFlipRate,
        {"top_k": 2, "ranked": True},
        lambda: (_labels(), _ranked(), _ranked()),
    ),
    "mixed kinds": (
        NegativeFlipRate,
        {"top_k": 2, "ranked": True},
        lambda: (_labels(), _scores(), _ranked()),
    ),
    "sample weights": (
        NegativeFlipRate,
        {"top_k": 2},
        lambda: (_labels(), _scores(), _scores(), _weights()),
    ),
    "class map, labels": (
        PositiveFlipImpact,
        {"class_map": {0: 1, 1: 0, 3: 2}},
        lambda: (_labels(), _labels(), _labels()),
    ),
    "class map, scores top-2": (
        PositiveFlipImpact,
        {"class_map": [1, 0, -1, 2, 4, 5], "top_k": 2},
        lambda: (_labels(), _scores(), _scores()),
    ),
    "class map, weights": (
        ModelUpdateMetrics,
        {"class_map": {0: 0, 1: 1, 2: 3}},
        lambda: (_labels(), _labels(), _labels(), _weights()),
    ),
    "error rate, labels": (ErrorRate, {}, lambda: (_labels(), _labels())),
    "error rate, scores top-2": (ErrorRate, {"top_k": 2}, lambda: (_labels(), _scores())),
    "error rate, ranked, weights": (
        ErrorRate,
        {"top_k": 2, "ranked": True},
        lambda: (_labels(), _ranked(), _weights()),
    ),
}


def _metric_on_meta(cls, options, validate_args):
    metric = cls(validate_args=validate_args, **options).to(META)
    assert metric.counts.device == META
    return metric


@pytest.mark.parametrize("name", list(CASES))
def test_update_without_validation_reads_nothing_back(name):
    cls, options, args = CASES[name]
    metric = _metric_on_meta(cls, options, validate_args=False)
    metric.update(*args())
    metric.update(*args())
    assert metric.counts.device == META
    assert metric.counts.shape == ((2,) if cls is ErrorRate else (STATE_SIZE,))
    assert metric.counts.dtype == torch.float64


@pytest.mark.parametrize("name", list(CASES))
def test_update_with_validation_reads_back_so_the_test_can_fail(name):
    cls, options, args = CASES[name]
    metric = _metric_on_meta(cls, options, validate_args=True)
    with pytest.raises((RuntimeError, NotImplementedError), match="meta"):
        metric.update(*args())


def test_class_map_is_built_once_and_moves_with_the_metric():
    metric = PositiveFlipImpact(class_map={0: 1, 1: 0})
    assert metric.class_map_lut.tolist() == [1, 0]
    assert metric.class_map_reachable.tolist() == [True, True]
    moved = metric.to(META)
    assert moved.class_map_lut.device == META
    assert "class_map_lut" not in metric.state_dict()  # not a state: not saved nor synced


@pytest.mark.parametrize(
    ("kind", "top_k", "weighted", "class_map"),
    [
        ("labels", 1, False, False),
        ("logits", 2, True, False),
        ("probs", 3, False, True),
        ("ranked", 2, True, True),
    ],
)
def test_results_equal_with_and_without_validation(kind, top_k, weighted, class_map):
    case = random_case(31, kind=kind, top_k=top_k, weighted=weighted, class_map=class_map)
    options = {"top_k": top_k, "class_map": case.class_map, "ranked": case.ranked}
    checked = ModelUpdateMetrics(**options)
    unchecked = ModelUpdateMetrics(validate_args=False, **options)
    for lo, hi in ((0, 50), (50, 51), (51, 200)):
        w = None if case.sample_weight is None else torch.from_numpy(case.sample_weight[lo:hi])
        batch = (torch.from_numpy(a[lo:hi]) for a in (case.target, case.preds_old, case.preds_new))
        t, o, n = batch
        checked.update(t, o, n, w)
        unchecked.update(t, o, n, w)
    assert torch.equal(checked.counts, unchecked.counts)
    want = flip_counts(case.target, case.preds_old, case.preds_new, **case.kwargs())
    assert unchecked.flip_counts().n_total == want.n_total
    assert unchecked.flip_counts().n_negative_flips == want.n_negative_flips


def test_bad_values_are_not_checked_without_validation():
    # the caller's responsibility: out-of-range labels count as wrong, never crash
    metric = NegativeFlipRate(num_classes=3, validate_args=False)
    metric.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 7]), torch.tensor([0, -4, 2]))
    assert float(metric.compute()) == 1 / 3
    scores = ErrorRate(top_k=2, validate_args=False)
    scores.update(torch.tensor([0, 9]), torch.tensor([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3]]))
    assert float(scores.compute()) == 0.5  # target 9 is never in the top 2
    with pytest.raises(ValueError, match="`validate_args`"):
        NegativeFlipRate(validate_args="no")
