"""Gradients: gradcheck in float64 wrt the new logits, and none to the old logits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.autograd import gradcheck

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

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

FUNCTIONS: dict[str, Loss] = {
    "kd": lambda n, o, t: distillation_loss(n, o, t, temperature=2.0, reduction="none"),
    "fd_kl_old_correct": lambda n, o, t: focal_distillation_loss(n, o, t, temperature=2.0),
    "fd_kl_negative_flip": lambda n, o, t: focal_distillation_loss(
        n, o, t, filter="negative_flip", reduction="sum"
    ),
    "fd_lm_all": lambda n, o, t: focal_distillation_loss(
        n, o, t, distance="logit_matching", filter="all", reduction="none"
    ),
    "fd_lm_old_correct": lambda n, o, t: focal_distillation_loss(
        n, o, t, distance="logit_matching"
    ),
    "fd_lm_negative_flip_sum": lambda n, o, t: focal_distillation_loss(
        n, o, t, distance="logit_matching", filter="negative_flip", reduction="sum"
    ),
    "fd_slm_mean": lambda n, o, t: focal_distillation_loss(
        n, o, t, distance="scaled_logit_matching"
    ),
    "fd_slm_none": lambda n, o, t: focal_distillation_loss(
        n, o, t, distance="scaled_logit_matching", alpha=0.5, beta=2.0, reduction="none"
    ),
    "fd_slm_all_sum": lambda n, o, t: focal_distillation_loss(
        n, o, t, distance="scaled_logit_matching", filter="all", reduction="sum"
    ),
    "ldi_p2": lambda n, o, t: logit_difference_inhibition_loss(n, o, t, margin=0.1),
    "ldi_p1": lambda n, o, t: logit_difference_inhibition_loss(
        n, o, t, margin=0.2, p=1, reduction="none"
    ),
    "ldi_p3": lambda n, o, t: logit_difference_inhibition_loss(n, o, t, p=3.0, reduction="sum"),
    "new_error": lambda n, o, t: new_error_loss(n, o, t, reduction="none"),
    "strict_imitation": lambda n, o, t: strict_imitation_loss(n, o, t),
    "pct": lambda n, o, t: positive_congruent_loss(
        n, o, t, FocalDistillationLoss(), lam=0.5, label_smoothing=0.1
    ),
    "pct_plain": lambda n, o, t: positive_congruent_loss(n, None, t, reduction="none"),
}

MODULES: dict[str, torch.nn.Module] = {
    "kd": DistillationLoss(temperature=3.0),
    "fd": FocalDistillationLoss(filter="negative_flip"),
    "fd_lm": FocalDistillationLoss(distance="logit_matching", reduction="sum"),
    "ldi": LogitDifferenceInhibitionLoss(margin=0.5),
    "new_error": NewErrorLoss(),
    "strict_imitation": StrictImitationLoss(reduction="none"),
    "pct": PositiveCongruentLoss(LogitDifferenceInhibitionLoss(), lam=2.0),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradcheck(make_case, name):
    new, old, target = make_case(seed=3, n=8, c=4)
    fn = FUNCTIONS[name]
    new.requires_grad_(True)
    assert gradcheck(lambda x: fn(x, old, target), (new,), eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_no_gradient_to_old_logits_function(make_case, name):
    new, old, target = make_case(seed=4)
    new.requires_grad_(True)
    old.requires_grad_(True)
    FUNCTIONS[name](new, old, target).sum().backward()
    assert old.grad is None
    assert new.grad is not None
    assert torch.isfinite(new.grad).all()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_gradient_to_old_logits_module(make_case, name):
    new, old, target = make_case(seed=5, dtype=torch.float32)
    new.requires_grad_(True)
    old.requires_grad_(True)
    MODULES[name](new, old, target).sum().backward()
    assert old.grad is None
    assert new.grad is not None


def test_old_right_mask_carries_no_gradient(make_case):
    # The negative-flip filter reads the new model's top-1 without gradient: the gradient
    # of FD equals the weighted gradient of the distance with the weights held fixed.
    new, old, target = make_case(seed=6)
    new.requires_grad_(True)
    focal_distillation_loss(new, old, target, filter="negative_flip", reduction="sum").backward()
    with torch.no_grad():
        nf = (old.argmax(1) == target) & (new.argmax(1) != target)
        weight = 1.0 + 5.0 * nf.double()
    x = new.detach().clone().requires_grad_(True)
    (weight * distillation_loss(x, old, reduction="none")).sum().backward()
    torch.testing.assert_close(new.grad, x.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("distance", ["logit_matching", "scaled_logit_matching"])
@pytest.mark.parametrize("filter_", ["old_correct", "negative_flip", "all"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_logit_matching_equals_the_written_out_expression(
    make_case, distance, filter_, reduction
):
    # Values and gradients of focal logit matching against the expression written out.
    new, old, target = make_case(seed=7, n=16, c=5)
    new.requires_grad_(True)
    out = focal_distillation_loss(
        new,
        old,
        target,
        alpha=0.7,
        beta=3.0,
        distance=distance,
        filter=filter_,
        reduction=reduction,
    )
    x = new.detach().clone().requires_grad_(True)
    with torch.no_grad():
        chosen = torch.ones(16, dtype=torch.bool)
        if filter_ != "all":
            chosen = old.argmax(1) == target
        if filter_ == "negative_flip":
            chosen &= x.argmax(1) != target
        weight = 0.7 + 3.0 * chosen.double()
        spread = old.var(dim=1, unbiased=False).mean()
    squared = (x - old).pow(2)
    dist = 0.5 * squared.sum(1) if distance == "logit_matching" else 0.5 * squared.mean(1) / spread
    per_sample = weight * dist
    ref = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.linspace(0.5, 1.5, 16, dtype=torch.float64) if reduction == "none" else None
    (out if upstream is None else out * upstream).sum().backward()
    (ref if upstream is None else ref * upstream).sum().backward()
    torch.testing.assert_close(new.grad, x.grad, rtol=1e-12, atol=1e-12)
