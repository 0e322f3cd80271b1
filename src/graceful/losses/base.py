"""The base class of every regression term: a module over ``(new, old, target)`` tensors."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import Reduction, check_reduction

__all__ = ["RegressionLoss"]


class RegressionLoss(nn.Module):
    """A loss that discourages regressions of a new model against an old one.

    Subclasses implement ``forward(new_logits, old_logits, target)`` over tensors: the
    loss never holds or runs a model. ``old_logits`` are detached inside, so no gradient
    reaches the old model; ``reduction`` (``"mean"`` over N, ``"sum"`` or ``"none"``) is
    validated here, once. Losses that do not need ``target`` still accept it, so any
    subclass can be the regression term of
    :class:`~graceful.losses.PositiveCongruentLoss`.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample values, shape ``(N,)``).

    Example:
        >>> class Zero(RegressionLoss):
        ...     def forward(self, new_logits, old_logits, target):
        ...         return new_logits.sum() * 0.0
        >>> Zero(reduction="sum").reduction
        'sum'
    """

    reduction: Reduction

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(
        self, new_logits: torch.Tensor, old_logits: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Compute the loss from new logits ``(N, C)``, old logits ``(N, C)``, target ``(N,)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return f"reduction={self.reduction!r}"
