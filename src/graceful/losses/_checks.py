"""Validation shared by every loss: hyper-parameters by name, input tensors, reduction.

Each hyper-parameter has one rule, whatever loss takes it (:data:`RULES`): the functions
and the modules of :mod:`graceful.losses` both validate through
:func:`check_hyperparameters`, once (a module at construction, a function per call). The
tensor checks look at shapes and dtypes only, never at tensor contents, so they cost no
host-device synchronisation. Every failure is a one-line
:class:`~graceful.errors.InputError` naming the argument and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import torch

from graceful._validation import (
    check_bool,
    check_choice,
    check_int,
    check_optional,
    check_real,
    fail,
)
from graceful.errors import InputError

__all__ = [
    "DISTANCES",
    "FILTERS",
    "HEADS",
    "MIXINGS",
    "REDUCTIONS",
    "RULES",
    "Reduction",
    "check_classifier",
    "check_embeddings",
    "check_hyperparameters",
    "check_inputs",
    "check_pair",
    "check_reduction",
    "check_target",
    "reduce",
]

Reduction: TypeAlias = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[Reduction, ...] = ("mean", "sum", "none")
DISTANCES: tuple[str, ...] = ("kl", "logit_matching", "scaled_logit_matching")
"""Distances accepted by :func:`~graceful.losses.functional.focal_distillation_loss`."""
FILTERS: tuple[str, ...] = ("old_correct", "negative_flip", "all")
"""Sample filters accepted by :func:`~graceful.losses.functional.focal_distillation_loss`."""
HEADS: tuple[str, ...] = ("linear", "cosine")
MIXINGS: tuple[str, ...] = ("add", "convex")
"""How :func:`~graceful.losses.functional.positive_congruent_loss` combines its terms."""
"""Classifier heads accepted by :func:`~graceful.losses.functional.bct_influence_loss`."""


def check_reduction(reduction: object) -> Reduction:
    """Return ``reduction`` if it is ``"mean"``, ``"sum"`` or ``"none"``, else raise."""
    return check_choice("reduction", reduction, REDUCTIONS)  # type: ignore[return-value]


def _non_negative(name: str, value: object) -> float:
    return check_real(name, value, low=0.0)


def _positive(name: str, value: object) -> float:
    return check_real(name, value, low=0.0, low_open=True)


RULES: dict[str, Callable[[str, object], Any]] = {
    "alpha": _non_negative,
    "beta": _non_negative,
    "lam": _non_negative,
    "lam_influence": _non_negative,
    "lam_regression": _non_negative,
    "ce_weight": _non_negative,
    "margin": _non_negative,
    "temperature": _positive,
    "scale": _positive,
    "p": lambda name, value: check_real(name, value, low=1.0),
    "label_smoothing": lambda name, value: check_real(name, value, low=0.0, high=1.0),
    "distance": lambda name, value: check_choice(name, value, DISTANCES),
    "filter": lambda name, value: check_choice(name, value, FILTERS),
    "head": lambda name, value: check_choice(name, value, HEADS),
    "mixing": lambda name, value: check_choice(name, value, MIXINGS),
    "top_k": lambda name, value: check_optional(check_int, name, value, low=1),
    "exclude_target": check_bool,
    "normalize": check_bool,
    "reduction": lambda _name, value: check_reduction(value),
}
"""The rule of each hyper-parameter name, shared by every loss."""


def check_hyperparameters(**values: object) -> dict[str, Any]:
    """Validate hyper-parameters by name; returns them in their plain Python form.

    Example:
        >>> check_hyperparameters(alpha=1, temperature=2.0, reduction="sum")
        {'alpha': 1.0, 'temperature': 2.0, 'reduction': 'sum'}
        >>> check_hyperparameters(temperature=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `temperature` to be ... > 0, but got 0
    """
    return {name: RULES[name](name, value) for name, value in values.items()}


def _check_logits(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise fail(name, "a floating tensor of shape (N, C)", x)
    if x.shape[1] == 0:
        raise InputError(
            f"Expected argument `{name}` to have at least one class (column),"
            f" but got shape {tuple(x.shape)}"
        )
    return x


def check_pair(
    new_logits: object, old_logits: object, *, reduction: Reduction
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the two ``(N, C)`` logit tensors and return them ready for the maths.

    The old (teacher) logits come back detached and cast to the new logits' dtype.
    """
    new = _check_logits("new_logits", new_logits)
    old = _check_logits("old_logits", old_logits)
    if old.shape != new.shape:
        raise InputError(
            f"Expected argument `old_logits` to have the shape of `new_logits` {tuple(new.shape)},"
            f" but got {tuple(old.shape)}"
        )
    if new.shape[0] == 0 and reduction == "mean":
        raise InputError(
            "Expected argument `new_logits` to hold at least one sample for reduction='mean',"
            f" but got shape {tuple(new.shape)}"
        )
    return new, old.detach().to(dtype=new.dtype)


def check_target(target: object, n: int) -> torch.Tensor:
    """Validate integer class indices of shape ``(n,)`` and return them as int64.

    Values are not range-checked: that would read the tensor (a host sync).
    """
    if (
        not isinstance(target, torch.Tensor)
        or target.is_floating_point()
        or target.is_complex()
        or target.dtype == torch.bool
        or tuple(target.shape) != (n,)
    ):
        raise fail("target", f"an integer tensor of shape ({n},)", target)
    return target.long()


def check_inputs(
    new_logits: object, old_logits: object, target: object, *, reduction: Reduction
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`check_pair` and :func:`check_target` together."""
    new, old = check_pair(new_logits, old_logits, reduction=reduction)
    return new, old, check_target(target, new.shape[0])


def check_embeddings(name: str, x: object, *, reduction: Reduction) -> torch.Tensor:
    """Validate a floating ``(N, D)`` embedding tensor (non-empty for ``"mean"``)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise fail(name, "a floating tensor of shape (N, D)", x)
    if x.shape[0] == 0 and reduction == "mean":
        raise InputError(
            f"Expected argument `{name}` to hold at least one sample for reduction='mean',"
            f" but got shape {tuple(x.shape)}"
        )
    return x


def check_classifier(weight: object, bias: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The old classifier's ``(C, D)`` weights and ``(C,)`` bias (or ``None``), detached."""
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise fail("old_weight", "a tensor of shape (C, D)", weight)
    if bias is not None and (
        not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)
    ):
        raise fail("old_bias", f"None or a tensor of shape ({weight.shape[0]},)", bias)
    return weight.detach(), None if bias is None else bias.detach()


def reduce(losses: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    """Reduce per-sample losses ``(N,)``: plain mean over N, sum, or unchanged."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses
