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

from graceful.errors import InputError
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


@pytest.mark.parametrize("distance", ["kl", "logit_matching", "scaled_logit_matching"])
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


@pytest.mark.parametrize(
    ("top_k", "exclude_target"), [(None, True), (2, False), (2, True), (4, True), (9, False)]
)
def test_logit_difference_inhibition_elodi_options(case, reduction, top_k, exclude_target):
    new, old, target = case
    old = old.clone()
    old[0, 1] = old[0, 3]  # a tie in the reference logits: the lower class index is kept
    opts = dict(margin=0.0, p=2.0, top_k=top_k, exclude_target=exclude_target)
    expected = reduce_np(ref_ldi(new, old, target=target.tolist(), **opts), reduction)
    check(logit_difference_inhibition_loss(new, old, target, **opts, reduction=reduction), expected)
    check(LogitDifferenceInhibitionLoss(**opts, reduction=reduction)(new, old, target), expected)


def test_exclude_target_needs_the_target(case):
    new, old, _ = case
    with pytest.raises(InputError, match="`target` to be a tensor with exclude_target=True"):
        logit_difference_inhibition_loss(new, old, exclude_target=True)
    with pytest.raises(InputError, match="`top_k` to be"):
        LogitDifferenceInhibitionLoss(top_k=0)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9, 1.0])
def test_positive_congruent_convex_mixing(case, reduction, lam):
    new, old, target = case
    ce = ref_cross_entropy(new, target, 0.0)
    reg = ref_focal_distillation(new, old, target, distance="kl")
    expected = reduce_np((1 - lam) * ce + lam * reg, reduction)
    regression = FocalDistillationLoss(reduction=reduction)
    module = PositiveCongruentLoss(regression, lam=lam, reduction=reduction, mixing="convex")
    check(module(new, old, target), expected)
    check(
        positive_congruent_loss(
            new, old, target, regression, lam=lam, reduction=reduction, mixing="convex"
        ),
        expected,
    )


def test_convex_mixing_needs_lam_at_most_one(case):
    new, old, target = case
    message = r"`lam` to be in \[0, 1\] with mixing='convex', but got 1.5"
    with pytest.raises(InputError, match=message):
        PositiveCongruentLoss(FocalDistillationLoss(), lam=1.5, mixing="convex")
    with pytest.raises(InputError, match=message):
        positive_congruent_loss(new, old, target, FocalDistillationLoss(), lam=1.5, mixing="convex")
    with pytest.raises(InputError, match="`mixing` to be one of"):
        PositiveCongruentLoss(None, mixing="sum")


def test_scaled_logit_matching_ignores_the_teachers_scale(case):
    new, old, target = case
    # scaling both logits by 10 leaves the scaled distance as it is; the paper's grows 100x
    for distance, factor in (("scaled_logit_matching", 1.0), ("logit_matching", 100.0)):
        base = focal_distillation_loss(new, old, target, distance=distance)
        scaled = focal_distillation_loss(10 * new, 10 * old, target, distance=distance)
        torch.testing.assert_close(scaled, factor * base)


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
    # logit matching (the paper's sum): 0.5 * ((2-1)^2 + 0^2) = 0.5, weight 1 + 5 (old right)
    check(focal_distillation_loss(new, old, target, distance="logit_matching"), np.array(3.0))
    # scaled: 0.5 * mean_c (1, 0)^2 / var_c(1, 0) = 0.25 / 0.25 = 1, weight 6
    check(
        focal_distillation_loss(new, old, target, distance="scaled_logit_matching"),
        np.array(6.0),
    )
    # LDI margin 0.25, p 2: (1 - 0.25)^2 / 2
    check(logit_difference_inhibition_loss(new, old, margin=0.25), np.array(0.28125))
    check(new_error_loss(new, old, target), np.array(np.log1p(np.exp(-2.0))))


def test_ldi_without_the_target_on_two_classes_warns_that_it_holds_no_decision():
    import warnings

    new, old = torch.tensor([[2.0, 0.5], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([0, 1])
    with pytest.warns(UserWarning, match="leaves the decision"):
        logit_difference_inhibition_loss(new, old, target, exclude_target=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # three classes, or the target kept: no warning
        logit_difference_inhibition_loss(new, old, target)
        three = torch.zeros(2, 3)
        logit_difference_inhibition_loss(three, three, target, exclude_target=True)
