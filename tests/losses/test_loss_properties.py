"""Identities between losses, reductions, masks, dtypes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F  # noqa: N812

from graceful.losses import (
    DistillationLoss,
    FocalDistillationLoss,
    LogitDifferenceInhibitionLoss,
    NewErrorLoss,
    PositiveCongruentLoss,
    RegressionLoss,
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

Factory = Callable[[str], torch.nn.Module]

FACTORIES: dict[str, Factory] = {
    "kd": lambda r: DistillationLoss(temperature=2.0, reduction=r),
    "fd_kl": lambda r: FocalDistillationLoss(reduction=r),
    "fd_nf": lambda r: FocalDistillationLoss(filter="negative_flip", reduction=r),
    "fd_lm": lambda r: FocalDistillationLoss(distance="logit_matching", filter="all", reduction=r),
    "ldi": lambda r: LogitDifferenceInhibitionLoss(margin=0.3, reduction=r),
    "new_error": lambda r: NewErrorLoss(reduction=r),
    "strict_imitation": lambda r: StrictImitationLoss(reduction=r),
    "pct": lambda r: PositiveCongruentLoss(
        FocalDistillationLoss(reduction=r), lam=0.5, label_smoothing=0.1, reduction=r
    ),
    "pct_plain": lambda r: PositiveCongruentLoss(None, reduction=r),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_reductions_agree(make_case, name):
    new, old, target = make_case(seed=7, n=32)
    none = FACTORIES[name]("none")(new, old, target)
    mean = FACTORIES[name]("mean")(new, old, target)
    total = FACTORIES[name]("sum")(new, old, target)
    assert none.shape == (32,)
    assert mean.shape == () and total.shape == ()
    torch.testing.assert_close(total, mean * 32, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(total, none.sum(), rtol=1e-12, atol=1e-12)


@given(
    n=st.integers(1, 20),
    c=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    name=st.sampled_from(sorted(FACTORIES)),
)
@settings(max_examples=25, deadline=None, derandomize=True)
def test_reductions_agree_any_shape(n, c, seed, name):
    g = torch.Generator().manual_seed(seed)
    new = torch.randn(n, c, generator=g, dtype=torch.float64)
    old = torch.randn(n, c, generator=g, dtype=torch.float64)
    target = torch.randint(0, c, (n,), generator=g)
    none = FACTORIES[name]("none")(new, old, target)
    assert none.shape == (n,)
    assert torch.isfinite(none).all()
    assert (none >= 0).all()
    mean = FACTORIES[name]("mean")(new, old, target)
    total = FACTORIES[name]("sum")(new, old, target)
    torch.testing.assert_close(total, mean * n, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("filter", ["old_correct", "negative_flip", "all"])
def test_focal_distillation_with_beta_zero_is_distillation(make_case, temperature, filter):
    new, old, target = make_case(seed=8)
    fd = focal_distillation_loss(
        new,
        old,
        target,
        alpha=1.0,
        beta=0.0,
        temperature=temperature,
        filter=filter,
        reduction="none",
    )
    kd = distillation_loss(new, old, temperature=temperature, reduction="none")
    torch.testing.assert_close(fd, kd, rtol=0, atol=0)


def test_focal_distillation_weights_by_filter(make_case):
    new, old, target = make_case(seed=9)
    old_right = old.argmax(1) == target
    negative_flip = old_right & (new.argmax(1) != target)
    assert negative_flip.any() and (old_right & ~negative_flip).any()
    kd = distillation_loss(new, old, reduction="none")
    for filter, mask in [
        ("negative_flip", negative_flip),
        ("old_correct", old_right),
        ("all", torch.ones_like(old_right)),
    ]:
        only = focal_distillation_loss(
            new, old, target, alpha=0.0, beta=1.0, filter=filter, reduction="none"
        )
        assert torch.equal(only != 0, mask)
        torch.testing.assert_close(only, torch.where(mask, kd, 0.0), rtol=0, atol=0)
        weighted = focal_distillation_loss(
            new, old, target, alpha=1.0, beta=3.0, filter=filter, reduction="none"
        )
        torch.testing.assert_close(weighted, (1.0 + 3.0 * mask.double()) * kd)


def test_logit_matching_ignores_temperature(make_case):
    new, old, target = make_case(seed=10)
    base = focal_distillation_loss(new, old, target, distance="logit_matching")
    hot = focal_distillation_loss(new, old, target, distance="logit_matching", temperature=4.0)
    torch.testing.assert_close(base, hot, rtol=0, atol=0)


def test_ldi_zero_within_margin():
    g = torch.Generator().manual_seed(11)
    old = torch.randn(10, 4, generator=g, dtype=torch.float64)
    diff = (torch.rand(10, 4, generator=g, dtype=torch.float64) * 2 - 1) * 0.5  # |d| <= 0.5
    new = old + diff
    for p in (1.0, 2.0, 3.0):
        loss = logit_difference_inhibition_loss(new, old, margin=0.5, p=p, reduction="none")
        assert torch.equal(loss, torch.zeros(10, dtype=torch.float64))
    # One entry past the margin costs (excess^p) / C on its row only.
    new[3, 2] = old[3, 2] + 0.5 + 0.25
    loss = logit_difference_inhibition_loss(new, old, margin=0.5, p=2, reduction="none")
    expected = torch.zeros(10, dtype=torch.float64)
    expected[3] = 0.25**2 / 4
    torch.testing.assert_close(loss, expected)


def test_ldi_without_margin_is_scaled_squared_distance(make_case):
    new, old, _ = make_case(seed=12)
    ldi = logit_difference_inhibition_loss(new, old, reduction="none")
    lm = focal_distillation_loss(
        new,
        old,
        torch.zeros(16, dtype=torch.long),
        alpha=1.0,
        beta=0.0,
        distance="logit_matching",
        reduction="none",
    )
    torch.testing.assert_close(ldi, 2 * lm / new.shape[1])  # LDI averages, FD-LM sums


@pytest.mark.parametrize("fn", [new_error_loss, strict_imitation_loss])
def test_zero_where_old_is_wrong(make_case, fn):
    new, old, target = make_case(seed=13)
    old_right = old.argmax(1) == target
    loss = fn(new, old, target, reduction="none")
    assert torch.equal(loss == 0, ~old_right)
    # Changing the new logits where the old model is wrong changes nothing.
    moved = new.clone()
    moved[~old_right] += torch.randn_like(moved[~old_right]) * 10
    torch.testing.assert_close(fn(moved, old, target, reduction="none"), loss, rtol=0, atol=0)


def test_new_error_is_cross_entropy_where_old_right(make_case):
    new, old, target = make_case(seed=14)
    old_right = old.argmax(1) == target
    ce = F.cross_entropy(new, target, reduction="none")
    got = new_error_loss(new, old, target, reduction="none")
    torch.testing.assert_close(got, torch.where(old_right, ce, 0.0), rtol=0, atol=0)


def test_strict_imitation_is_kl_plus_old_entropy_where_old_right(make_case):
    new, old, target = make_case(seed=15)
    old_right = old.argmax(1) == target
    log_p_old = F.log_softmax(old, dim=1)
    entropy = -(log_p_old.exp() * log_p_old).sum(1)
    kd = distillation_loss(new, old, reduction="none")
    got = strict_imitation_loss(new, old, target, reduction="none")
    torch.testing.assert_close(got, torch.where(old_right, kd + entropy, 0.0))
    # Imitating perfectly leaves only the old entropy.
    torch.testing.assert_close(
        strict_imitation_loss(old, old, target, reduction="none"),
        torch.where(old_right, entropy, 0.0),
    )


def test_new_error_zero_loss_with_infinite_cross_entropy_where_old_wrong():
    new = torch.tensor([[0.0, -torch.inf], [0.0, 0.0]])
    old = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    target = torch.tensor([1, 0])  # old wrong on row 0, where CE is inf
    loss = new_error_loss(new, old, target, reduction="none")
    torch.testing.assert_close(loss, torch.tensor([0.0, 0.6931471805599453]))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_positive_congruent_without_regression_is_cross_entropy(
    make_case, reduction, label_smoothing
):
    new, old, target = make_case(seed=16)
    expected = F.cross_entropy(new, target, reduction=reduction, label_smoothing=label_smoothing)
    module = PositiveCongruentLoss(None, label_smoothing=label_smoothing, reduction=reduction)
    torch.testing.assert_close(module(new, None, target), expected, rtol=0, atol=0)
    torch.testing.assert_close(module(new, old, target), expected, rtol=0, atol=0)
    got = positive_congruent_loss(
        new, None, target, label_smoothing=label_smoothing, reduction=reduction
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_positive_congruent_adds_weighted_regression(make_case):
    new, old, target = make_case(seed=17)
    for regression in (DistillationLoss(), NewErrorLoss(), LogitDifferenceInhibitionLoss(p=1)):
        got = PositiveCongruentLoss(regression, lam=0.3)(new, old, target)
        expected = F.cross_entropy(new, target) + 0.3 * regression(new, old, target)
        torch.testing.assert_close(got, expected)


def test_positive_congruent_accepts_any_module_and_detaches_old(make_case):
    seen: list[bool] = []

    class Spy(torch.nn.Module):
        def forward(self, new, old, target):
            seen.append(old.requires_grad)
            return (new - old).pow(2).mean()

    new, old, target = make_case(seed=18)
    old.requires_grad_(True)
    PositiveCongruentLoss(Spy())(new.requires_grad_(True), old, target).backward()
    assert seen == [False]
    assert old.grad is None


def test_modules_are_regression_losses_and_have_no_state():
    for factory in FACTORIES.values():
        module = factory("mean")
        assert not list(module.parameters())
        assert not list(module.buffers())
        assert "reduction='mean'" in repr(module)
    for cls in (
        DistillationLoss,
        FocalDistillationLoss,
        LogitDifferenceInhibitionLoss,
        NewErrorLoss,
        StrictImitationLoss,
    ):
        assert issubclass(cls, RegressionLoss)


def test_mixed_dtypes_and_integer_targets(make_case):
    new, old, target = make_case(seed=19, dtype=torch.float32)
    ref = focal_distillation_loss(new, old, target, reduction="none")
    got = focal_distillation_loss(new, old.half(), target.int(), reduction="none")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(
        new_error_loss(new, old, target.to(torch.int32)), new_error_loss(new, old, target)
    )


def test_empty_batch_sum_and_none():
    new, old = torch.zeros(0, 3), torch.zeros(0, 3)
    target = torch.zeros(0, dtype=torch.long)
    assert FocalDistillationLoss(reduction="sum")(new, old, target) == 0
    assert NewErrorLoss(reduction="none")(new, old, target).shape == (0,)


def test_base_class_forward_is_abstract():
    with pytest.raises(NotImplementedError, match="RegressionLoss"):
        RegressionLoss()(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
