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


# The training step's fused objective (one autograd node) against the unfused graph.


@pytest.mark.parametrize("distance", ["kl", "logit_matching", "scaled_logit_matching"])
@pytest.mark.parametrize("filter_", ["old_correct", "negative_flip", "all"])
@pytest.mark.parametrize("mixing", ["add", "convex"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction_", ["mean", "sum"])
def test_fused_objective_matches_the_graph(
    case, distance, filter_, mixing, label_smoothing, reduction_
):
    new, old, target = case
    regression = FocalDistillationLoss(
        alpha=0.7,
        beta=3.0,
        distance=distance,
        temperature=2.5,
        filter=filter_,
        reduction=reduction_,
    )
    module = PositiveCongruentLoss(
        regression, lam=0.4, label_smoothing=label_smoothing, reduction=reduction_, mixing=mixing
    )
    leaf = new.detach().clone().requires_grad_(True)
    fused = module(leaf, old, target)
    assert fused.grad_fn is not None and "Fused" in type(fused.grad_fn).__name__
    (fused_grad,) = torch.autograd.grad(fused, leaf)
    leaf2 = new.detach().clone().requires_grad_(True)
    # the functional form with a plain callable builds the unfused graph
    graph = positive_congruent_loss(
        leaf2,
        old,
        target,
        lambda n, o, t: regression(n, o, t),
        lam=0.4,
        label_smoothing=label_smoothing,
        reduction=reduction_,
        mixing=mixing,
    )
    (graph_grad,) = torch.autograd.grad(graph, leaf2)
    torch.testing.assert_close(fused, graph, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused_grad, graph_grad, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda n: module(n, old, target), (leaf,))


@pytest.mark.parametrize("filter_", ["old_correct", "all"])
def test_fused_objective_with_a_constant_teacher(filter_):
    # every old row constant: the teacher's spread is 0 and the scaled distance's unit is 1
    torch.manual_seed(3)
    new = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    old = torch.full((6, 4), 2.0, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    regression = FocalDistillationLoss(distance="scaled_logit_matching", filter=filter_)
    fused = PositiveCongruentLoss(regression, lam=0.5)(new, old, target)
    (fused_grad,) = torch.autograd.grad(fused, new)
    weight = torch.full((6,), 1.0 + 5.0 if filter_ == "all" else 1.0, dtype=torch.float64)
    weight[0] = 6.0  # the old model's argmax (ties: the lowest class) is right on sample 0
    weight[4] = 6.0
    leaf = new.detach().clone().requires_grad_(True)
    expected = (
        torch.nn.functional.cross_entropy(leaf, target)
        + 0.5 * (weight * 0.5 * (leaf - old).pow(2).mean(dim=1)).mean()
    )
    (expected_grad,) = torch.autograd.grad(expected, leaf)
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused_grad, expected_grad, rtol=1e-12, atol=1e-12)


def test_fused_objective_float32_empty_and_nonfinite():
    torch.manual_seed(0)
    module = PositiveCongruentLoss(FocalDistillationLoss(distance="scaled_logit_matching"))
    new = torch.randn(16, 5, requires_grad=True)
    old, target = torch.randn(16, 5) * 3, torch.randint(0, 5, (16,))
    loss = module(new, old, target)
    assert loss.dtype == torch.float32
    loss.backward()
    assert new.grad is not None and new.grad.dtype == torch.float32
    # with no gradient wanted the unfused path runs, with the same value
    with torch.no_grad():
        torch.testing.assert_close(module(new, old, target), loss.detach())
    empty = torch.zeros(0, 5, requires_grad=True)
    summed = PositiveCongruentLoss(FocalDistillationLoss(reduction="sum"), reduction="sum")
    assert summed(empty, torch.zeros(0, 5), torch.zeros(0, dtype=torch.int64)).item() == 0.0
    bad = new.detach().clone()
    bad[0, 0] = float("nan")
    assert torch.isnan(module(bad.requires_grad_(True), old, target))


def test_fused_objective_second_derivatives_match_the_graph():
    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    old, target = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    module = PositiveCongruentLoss(FocalDistillationLoss(distance="scaled_logit_matching"))

    def penalty(fused: bool) -> tuple[torch.Tensor, ...]:
        logits = x @ w
        if fused:
            loss = module(logits, old, target)
        else:
            loss = positive_congruent_loss(
                logits, old, target, lambda n, o, t: module.regression(n, o, t)
            )
        (gx,) = torch.autograd.grad(loss, x, create_graph=True)  # a gradient penalty
        return torch.autograd.grad(gx.square().sum(), (x, w))

    for got, expected in zip(penalty(True), penalty(False), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    logits = (x @ w).detach().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda n: module(n, old, target), (logits,))
