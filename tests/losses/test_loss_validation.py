"""Every bad argument raises a one-line InputError naming it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

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

NEW = torch.zeros(3, 4)
OLD = torch.zeros(3, 4)
TARGET = torch.tensor([0, 1, 2])


def raises(name: str, call: Callable[[], Any]) -> None:
    with pytest.raises(InputError, match=f"`{name}`") as info:
        call()
    assert "\n" not in str(info.value)


BAD_HYPER: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any], list[Any]]] = [
    (
        "temperature",
        lambda v: DistillationLoss(temperature=v),
        lambda v: distillation_loss(NEW, OLD, temperature=v),
        [0.0, -1.0, math.nan, math.inf, True, "2", None],
    ),
    (
        "temperature",
        lambda v: FocalDistillationLoss(temperature=v),
        lambda v: focal_distillation_loss(NEW, OLD, TARGET, temperature=v),
        [0, -0.5, math.nan],
    ),
    (
        "alpha",
        lambda v: FocalDistillationLoss(alpha=v),
        lambda v: focal_distillation_loss(NEW, OLD, TARGET, alpha=v),
        [-1.0, math.inf, "1", torch.tensor(1.0)],
    ),
    (
        "beta",
        lambda v: FocalDistillationLoss(beta=v),
        lambda v: focal_distillation_loss(NEW, OLD, TARGET, beta=v),
        [-0.1, math.nan, None],
    ),
    (
        "distance",
        lambda v: FocalDistillationLoss(distance=v),
        lambda v: focal_distillation_loss(NEW, OLD, TARGET, distance=v),
        ["l2", "KL", None],
    ),
    (
        "filter",
        lambda v: FocalDistillationLoss(filter=v),
        lambda v: focal_distillation_loss(NEW, OLD, TARGET, filter=v),
        ["old_wrong", "", 1],
    ),
    (
        "margin",
        lambda v: LogitDifferenceInhibitionLoss(margin=v),
        lambda v: logit_difference_inhibition_loss(NEW, OLD, margin=v),
        [-0.01, math.inf, "0"],
    ),
    (
        "p",
        lambda v: LogitDifferenceInhibitionLoss(p=v),
        lambda v: logit_difference_inhibition_loss(NEW, OLD, p=v),
        [0.5, 0, -2, math.nan],
    ),
    (
        "lam",
        lambda v: PositiveCongruentLoss(None, lam=v),
        lambda v: positive_congruent_loss(NEW, OLD, TARGET, lam=v),
        [-1.0, math.nan, "1"],
    ),
    (
        "label_smoothing",
        lambda v: PositiveCongruentLoss(None, label_smoothing=v),
        lambda v: positive_congruent_loss(NEW, OLD, TARGET, label_smoothing=v),
        [-0.1, 1.5, math.nan],
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "call", "value"),
    [(name, make, call, v) for name, make, call, values in BAD_HYPER for v in values],
)
def test_bad_hyper_parameter(name, make, call, value):
    raises(name, lambda: make(value))
    raises(name, lambda: call(value))


CLASSES: list[Callable[[str], Any]] = [
    lambda r: DistillationLoss(reduction=r),
    lambda r: FocalDistillationLoss(reduction=r),
    lambda r: LogitDifferenceInhibitionLoss(reduction=r),
    lambda r: NewErrorLoss(reduction=r),
    lambda r: StrictImitationLoss(reduction=r),
    lambda r: PositiveCongruentLoss(None, reduction=r),
]
FUNCTIONS: list[Callable[..., torch.Tensor]] = [
    distillation_loss,
    focal_distillation_loss,
    logit_difference_inhibition_loss,
    new_error_loss,
    strict_imitation_loss,
    positive_congruent_loss,
]


@pytest.mark.parametrize("reduction", ["avg", "Mean", "", None, 0])
@pytest.mark.parametrize("index", range(6))
def test_bad_reduction(index, reduction):
    raises("reduction", lambda: CLASSES[index](reduction))
    raises("reduction", lambda: FUNCTIONS[index](NEW, OLD, TARGET, reduction=reduction))


def _bad_inputs() -> list[tuple[str, Any, Any, Any]]:
    return [
        ("new_logits", torch.zeros(3), OLD, TARGET),
        ("new_logits", torch.zeros(3, 4, 1), OLD, TARGET),
        ("new_logits", torch.zeros(3, 4, dtype=torch.long), OLD, TARGET),
        ("new_logits", [[0.0] * 4] * 3, OLD, TARGET),
        ("new_logits", torch.zeros(3, 0), torch.zeros(3, 0), TARGET),
        ("new_logits", torch.zeros(0, 4), torch.zeros(0, 4), TARGET[:0]),  # mean of nothing
        ("old_logits", NEW, torch.zeros(3, 5), TARGET),
        ("old_logits", NEW, torch.zeros(2, 4), TARGET),
        ("old_logits", NEW, torch.zeros(3, 4, dtype=torch.int64), TARGET),
        ("old_logits", NEW, OLD.numpy(), TARGET),
        ("target", NEW, OLD, torch.tensor([0, 1])),
        ("target", NEW, OLD, torch.tensor([0.0, 1.0, 2.0])),
        ("target", NEW, OLD, torch.tensor([[0, 1, 2]])),
        ("target", NEW, OLD, torch.tensor([True, False, True])),
        ("target", NEW, OLD, [0, 1, 2]),
    ]


@pytest.mark.parametrize(("name", "new", "old", "target"), _bad_inputs())
@pytest.mark.parametrize("index", range(6))
def test_bad_inputs(index, name, new, old, target):
    module = CLASSES[index]("mean")
    raises(name, lambda: module(new, old, target))
    raises(name, lambda: FUNCTIONS[index](new, old, target))


@pytest.mark.parametrize(("name", "new", "old", "target"), _bad_inputs())
def test_bad_inputs_positive_congruent_with_regression(name, new, old, target):
    raises(name, lambda: PositiveCongruentLoss(NewErrorLoss())(new, old, target))
    raises(name, lambda: positive_congruent_loss(new, old, target, new_error_loss))


def test_old_logits_required_with_a_regression_term():
    raises("old_logits", lambda: PositiveCongruentLoss(DistillationLoss())(NEW, None, TARGET))
    raises("old_logits", lambda: positive_congruent_loss(NEW, None, TARGET, distillation_loss))
    raises("old_logits", lambda: NewErrorLoss()(NEW, None, TARGET))


def test_target_optional_only_where_unused():
    assert DistillationLoss()(NEW, OLD, None) == 0
    assert LogitDifferenceInhibitionLoss()(NEW, OLD, None) == 0
    raises("target", lambda: FocalDistillationLoss()(NEW, OLD, None))
    raises("target", lambda: new_error_loss(NEW, OLD, None))
    raises("target", lambda: strict_imitation_loss(NEW, OLD, None))
    raises("target", lambda: PositiveCongruentLoss(None)(NEW, None, None))


def test_bad_regression():
    raises("regression", lambda: PositiveCongruentLoss(lambda n, o, t: n.sum()))
    raises("regression", lambda: PositiveCongruentLoss("kd"))
    raises("regression_fn", lambda: positive_congruent_loss(NEW, OLD, TARGET, "kd"))


@pytest.mark.parametrize(("own", "outer"), [("none", "mean"), ("mean", "sum"), ("sum", "none")])
def test_regression_reduction_must_match(own, outer):
    raises(
        "regression",
        lambda: PositiveCongruentLoss(FocalDistillationLoss(reduction=own), reduction=outer),
    )
    raises(
        "regression_fn",
        lambda: positive_congruent_loss(
            NEW, OLD, TARGET, NewErrorLoss(reduction=own), reduction=outer
        ),
    )
    # A plain module has no `reduction` attribute: its output is the caller's business.
    PositiveCongruentLoss(nn.Identity(), reduction=outer)


def test_message_names_the_value():
    with pytest.raises(InputError, match=r"`temperature` .* but got -2\.0$"):
        DistillationLoss(temperature=-2.0)
    with pytest.raises(InputError, match=r"`filter` to be one of .* but got 'wrong'$"):
        FocalDistillationLoss(filter="wrong")
    with pytest.raises(InputError, match=r"`target` .* shape \(3,\), but got .*int64.*\(2,\)"):
        NewErrorLoss()(NEW, OLD, torch.tensor([0, 1]))
    with pytest.raises(InputError, match=r"`old_logits` .* \(3, 4\), but got \(3, 5\)$"):
        NewErrorLoss()(NEW, torch.zeros(3, 5), TARGET)


def test_input_error_is_a_value_error():
    with pytest.raises(ValueError, match="`reduction`"):
        NewErrorLoss(reduction="avg")  # type: ignore[arg-type]
