"""Every loss and every option against the loop-and-numpy reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from loss_reference import (
    reduce_np,
    ref_cross_entropy,
    ref_distillation,
    ref_focal_distillation,
    ref_ldi,
    ref_new_error,
    ref_strict_imitation,
)

from graceful.losses import (
    DistillationLoss,
    FocalDistillationLoss,
    LogitDifferenceInhibitionLoss,
    NewErrorLoss,
    PositiveCongruentLoss,
    StrictImitationLoss,
)
from graceful.losses.functional import (
    distillation_loss,
    focal_distillation_loss,
    logit_difference_inhibition_loss,
    new_error_loss,
    positive_congruent_loss,
    strict_imitation_loss,
)


def check(got: torch.Tensor, expected: np.ndarray) -> None:
    assert got.dtype == torch.float64
    assert tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


def test_case_has_every_cell(case):
    new, old, target = case
    old_right = old.argmax(1) == target
    new_right = new.argmax(1) == target
    for o, n in itertools.product([True, False], repeat=2):
        assert ((old_right == o) & (new_right == n)).sum() == 4


@pytest.mark.parametrize("temperature", [1.0, 0.5, 4.0])
def test_distillation(case, reduction, temperature):
    new, old, target = case
    expected = reduce_np(ref_distillation(new, old, temperature), reduction)
    check(distillation_loss(new, old, temperature=temperature, reduction=reduction), expected)
    check(
        distillation_loss(new, old, target, temperature=temperature, reduction=reduction), expected
    )
    module = DistillationLoss(temperature=temperature, reduction=reduction)
    check(module(new, old, target), expected)
    check(module(new, old), expected)


@pytest.mark.parametrize("distance", ["kl", "logit_matching"])
@pytest.mark.parametrize("filter", ["old_correct", "negative_flip", "all"])
@pytest.mark.parametrize(("alpha", "beta", "temperature"), [(1.0, 5.0, 1.0), (0.0, 2.0, 3.0)])
def test_focal_distillation(case, reduction, distance, filter, alpha, beta, temperature):
    new, old, target = case
    opts = dict(alpha=alpha, beta=beta, distance=distance, temperature=temperature, filter=filter)
    expected = reduce_np(ref_focal_distillation(new, old, target, **opts), reduction)
    check(focal_distillation_loss(new, old, target, **opts, reduction=reduction), expected)
    check(FocalDistillationLoss(**opts, reduction=reduction)(new, old, target), expected)


def test_focal_distillation_defaults(case):
    new, old, target = case
    expected = ref_focal_distillation(new, old, target).mean()
    check(focal_distillation_loss(new, old, target), np.array(expected))
    check(FocalDistillationLoss()(new, old, target), np.array(expected))


@pytest.mark.parametrize(("margin", "p"), [(0.0, 2.0), (0.5, 2.0), (1.0, 1.0), (0.3, 3.5)])
def test_logit_difference_inhibition(case, reduction, margin, p):
    new, old, target = case
    expected = reduce_np(ref_ldi(new, old, margin, p), reduction)
    opts = dict(margin=margin, p=p, reduction=reduction)
    check(logit_difference_inhibition_loss(new, old, **opts), expected)
    check(logit_difference_inhibition_loss(new, old, target, **opts), expected)
    check(LogitDifferenceInhibitionLoss(**opts)(new, old, target), expected)
    check(LogitDifferenceInhibitionLoss(**opts)(new, old), expected)


def test_new_error(case, reduction):
    new, old, target = case
    expected = reduce_np(ref_new_error(new, old, target), reduction)
    check(new_error_loss(new, old, target, reduction=reduction), expected)
    check(NewErrorLoss(reduction=reduction)(new, old, target), expected)


def test_strict_imitation(case, reduction):
    new, old, target = case
    expected = reduce_np(ref_strict_imitation(new, old, target), reduction)
    check(strict_imitation_loss(new, old, target, reduction=reduction), expected)
    check(StrictImitationLoss(reduction=reduction)(new, old, target), expected)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("lam", [0.0, 0.7, 2.0])
def test_positive_congruent(case, reduction, label_smoothing, lam):
    new, old, target = case
    ce = ref_cross_entropy(new, target, label_smoothing)
    reg = ref_focal_distillation(new, old, target, distance="logit_matching")
    expected = reduce_np(ce + lam * reg, reduction)
    regression = FocalDistillationLoss(distance="logit_matching", reduction=reduction)
    module = PositiveCongruentLoss(
        regression, lam=lam, label_smoothing=label_smoothing, reduction=reduction
    )
    check(module(new, old, target), expected)

    def fn(n, o, t):
        return focal_distillation_loss(n, o, t, distance="logit_matching", reduction=reduction)

    got = positive_congruent_loss(
        new, old, target, fn, lam=lam, label_smoothing=label_smoothing, reduction=reduction
    )
    check(got, expected)
    check(
        positive_congruent_loss(
            new,
            old,
            target,
            regression,
            lam=lam,
            label_smoothing=label_smoothing,
            reduction=reduction,
        ),
        expected,
    )


def test_positive_congruent_without_regression(case, reduction):
    new, _, target = case
    expected = reduce_np(ref_cross_entropy(new, target), reduction)
    check(PositiveCongruentLoss(None, reduction=reduction)(new, None, target), expected)
    check(positive_congruent_loss(new, None, target, reduction=reduction), expected)


def test_hand_computed_values():
    # Values worked out by hand, independent of both implementations.
    new = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    old = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    p_old = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    p_new = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    check(distillation_loss(new, old), np.array((p_old * np.log(p_old / p_new)).sum()))
    target = torch.tensor([0])
    # logit matching: 0.5 * ((2-1)^2 + 0^2) / 2 = 0.25, weight 1 + 5 (old right)
    check(focal_distillation_loss(new, old, target, distance="logit_matching"), np.array(1.5))
    # LDI margin 0.25, p 2: (1 - 0.25)^2 / 2
    check(logit_difference_inhibition_loss(new, old, margin=0.25), np.array(0.28125))
    check(new_error_loss(new, old, target), np.array(np.log1p(np.exp(-2.0))))
