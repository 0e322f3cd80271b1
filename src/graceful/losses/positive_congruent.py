"""Positive-congruent training objective: cross-entropy plus a regression term."""

from __future__ import annotations

import torch
from torch import nn

from graceful.errors import InputError

from ._checks import Reduction, check_real, check_reduction
from .functional import _check_regression_reduction, _positive_congruent

__all__ = ["PositiveCongruentLoss"]


class PositiveCongruentLoss(nn.Module):
    r"""Cross-entropy plus a weighted regression term: :math:`\mathrm{CE}(z^{new}, y) + \lambda R`.

    :math:`R` is ``regression(new_logits, old_logits.detach(), target)``, any module with
    that signature, typically a :class:`~graceful.losses.RegressionLoss` such as
    :class:`~graceful.losses.FocalDistillationLoss`. Its output must be reduced like this
    loss (same ``reduction``); a :class:`~graceful.losses.RegressionLoss` with another
    ``reduction`` is rejected here. With ``regression=None`` this is plain
    :func:`torch.nn.functional.cross_entropy` and ``old_logits`` may be ``None``.
    See :func:`~graceful.losses.functional.positive_congruent_loss`.

    Args:
        regression: the regression term, or ``None``.
        lam: weight :math:`\lambda \ge 0` of the regression term.
        label_smoothing: label smoothing of the cross-entropy, in ``[0, 1]``.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Example:
        >>> from graceful.losses import FocalDistillationLoss
        >>> loss = PositiveCongruentLoss(FocalDistillationLoss(beta=5.0), lam=1.0)
        >>> new, old = torch.zeros(2, 2), torch.zeros(2, 2)
        >>> loss(new, old, torch.tensor([0, 1]))  # old == new: only the cross-entropy
        tensor(0.6931)
        >>> PositiveCongruentLoss(None)(new, None, torch.tensor([0, 1]))
        tensor(0.6931)
    """

    reduction: Reduction

    def __init__(
        self,
        regression: nn.Module | None,
        lam: float = 1.0,
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        if regression is not None and not isinstance(regression, nn.Module):
            raise InputError(
                "Expected argument `regression` to be a torch.nn.Module or None,"
                f" but got {type(regression).__name__}"
            )
        self.reduction = check_reduction(reduction)
        _check_regression_reduction(regression, "regression", self.reduction)
        self.regression = regression
        self.lam = check_real("lam", lam, low=0.0)
        self.label_smoothing = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)

    def forward(
        self,
        new_logits: torch.Tensor,
        old_logits: torch.Tensor | None,
        target: torch.Tensor,
    ) -> torch.Tensor:
        """Loss from new logits ``(N, C)``, old logits ``(N, C)`` (or None) and target ``(N,)``."""
        return _positive_congruent(
            new_logits,
            old_logits,
            target,
            self.regression,
            self.lam,
            self.label_smoothing,
            self.reduction,
        )

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return (
            f"lam={self.lam}, label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"
        )
