"""The base classes of the losses: hyper-parameters validated once, and the regression term."""

from __future__ import annotations

import torch
from torch import nn

from ._checks import Reduction, check_hyperparameters

__all__ = ["RegressionLoss"]


class _Configured(nn.Module):
    """A loss module whose hyper-parameters are validated once, at construction.

    Each keyword goes through :func:`~graceful.losses._checks.check_hyperparameters` (the
    rule the functional form applies too) and becomes an attribute; ``repr`` lists them.
    """

    reduction: Reduction

    def __init__(self, **hyperparameters: object) -> None:
        super().__init__()
        checked = check_hyperparameters(**hyperparameters)
        for name, value in checked.items():
            setattr(self, name, value)
        self._hyperparameters = tuple(checked)

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self._hyperparameters)


class RegressionLoss(_Configured):
    """A loss that discourages regressions of a new model against an old one.

    Subclasses implement ``forward(new_logits, old_logits, target)`` over tensors: the
    loss never holds or runs a model. ``old_logits`` are detached inside, so no gradient
    reaches the old model; ``reduction`` (``"mean"`` over N, ``"sum"`` or ``"none"``) and
    the other hyper-parameters (keywords of ``__init__``) are validated here, once. Losses
    that do not need ``target`` still accept it, so any subclass can be the regression term
    of :class:`~graceful.losses.PositiveCongruentLoss`.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample values, shape ``(N,)``).
        hyperparameters: the subclass's hyper-parameters, by name.

    Example:
        >>> class Zero(RegressionLoss):
        ...     def forward(self, new_logits, old_logits, target):
        ...         return new_logits.sum() * 0.0
        >>> Zero(reduction="sum")
        Zero(reduction='sum')
    """

    def __init__(self, reduction: Reduction = "mean", **hyperparameters: object) -> None:
        super().__init__(**hyperparameters, reduction=reduction)

    def forward(
        self, new_logits: torch.Tensor, old_logits: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Compute the loss from new logits ``(N, C)``, old logits ``(N, C)``, target ``(N,)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")
