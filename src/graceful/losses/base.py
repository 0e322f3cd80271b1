"""The base classes of the losses: hyper-parameters validated once, and the regression term."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

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

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The validated hyper-parameters, by name (what the functional form takes)."""
        return {name: getattr(self, name) for name in self._hyperparameters}

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return ", ".join(f"{name}={value!r}" for name, value in self.hyperparameters.items())


class RegressionLoss(_Configured):
    """A loss that discourages regressions of a new model against an old one.

    A subclass names its implementation, ``(new_logits, old_logits, target, **hp)`` over
    tensors, in ``_impl`` (the private function its functional form calls too), or
    overrides ``forward``: the loss never holds or runs a model. ``old_logits`` are
    detached inside, so no gradient reaches the old model; ``reduction`` (``"mean"`` over
    N, ``"sum"`` or ``"none"``) and the other hyper-parameters (keywords of ``__init__``)
    are validated here, once. Losses that do not need ``target`` still accept it, so any
    subclass can be the regression term of :class:`~graceful.losses.PositiveCongruentLoss`.

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

    _impl: ClassVar[Callable[..., torch.Tensor] | None] = None

    def __init__(self, reduction: Reduction = "mean", **hyperparameters: object) -> None:
        super().__init__(**hyperparameters, reduction=reduction)

    def forward(
        self,
        new_logits: torch.Tensor,
        old_logits: torch.Tensor,
        target: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of new logits ``(N, C)`` against old logits ``(N, C)`` and target ``(N,)``.

        ``target`` may be ``None`` for the losses that do not use it.
        """
        impl = type(self)._impl
        if impl is None:
            raise NotImplementedError(f"{type(self).__name__} does not implement forward")
        return impl(new_logits, old_logits, target, **self.hyperparameters)
