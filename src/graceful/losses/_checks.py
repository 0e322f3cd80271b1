"""Validation shared by every loss: hyper-parameters, input shapes, reduction.

All checks look at Python values, shapes and dtypes only, never at tensor contents, so
they cost no host-device synchronisation. Every failure is a one-line
:class:`~graceful.errors.InputError` naming the argument and the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypeAlias, cast

import torch

from graceful.errors import InputError

__all__ = [
    "REDUCTIONS",
    "Reduction",
    "check_choice",
    "check_inputs",
    "check_pair",
    "check_real",
    "check_reduction",
    "check_target",
    "reduce",
]

Reduction: TypeAlias = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[Reduction, ...] = ("mean", "sum", "none")


def check_reduction(reduction: object) -> Reduction:
    """Return ``reduction`` if it is ``"mean"``, ``"sum"`` or ``"none"``, else raise."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise InputError(
            "Expected argument `reduction` to be one of 'mean', 'sum', 'none',"
            f" but got {reduction!r}"
        )
    return reduction


def check_real(
    name: str,
    value: object,
    *,
    low: float,
    low_inclusive: bool = True,
    high: float | None = None,
) -> float:
    """Return ``value`` as a float if it is a finite real number in the allowed range."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    number = float(cast(float, value)) if ok else math.nan
    if ok and math.isfinite(number):
        above = number >= low if low_inclusive else number > low
        below = high is None or number <= high
        if above and below:
            return number
    bound = f">= {low:g}" if low_inclusive else f"> {low:g}"
    if high is not None:
        bound = f"in [{low:g}, {high:g}]"
    raise InputError(f"Expected argument `{name}` to be a finite number {bound}, but got {value!r}")


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise InputError(f"Expected argument `{name}` to be one of {options}, but got {value!r}")
    return value


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def _check_logits(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise InputError(
            f"Expected argument `{name}` to be a floating tensor of shape (N, C),"
            f" but got {_describe(x)}"
        )
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
        raise InputError(
            f"Expected argument `target` to be an integer tensor of shape ({n},),"
            f" but got {_describe(target)}"
        )
    return target.long()


def check_inputs(
    new_logits: object, old_logits: object, target: object, *, reduction: Reduction
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`check_pair` and :func:`check_target` together."""
    new, old = check_pair(new_logits, old_logits, reduction=reduction)
    return new, old, check_target(target, new.shape[0])


def reduce(losses: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    """Reduce per-sample losses ``(N,)``: plain mean over N, sum, or unchanged."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses
