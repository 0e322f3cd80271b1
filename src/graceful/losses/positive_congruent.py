"""Positive-congruent training objective: cross-entropy plus a regression term."""

from __future__ import annotations

import torch
from torch import nn

from graceful._validation import check_instance
from graceful.errors import InputError

from ._checks import Reduction
from .base import _Configured
from .focal_distillation import FocalDistillationLoss
from .functional import _check_regression_reduction, _fused_focal_objective, _positive_congruent

__all__ = ["PositiveCongruentLoss"]


class PositiveCongruentLoss(_Configured):
    r"""Cross-entropy plus a weighted regression term: :math:`\mathrm{CE}(z^{new}, y) + \lambda R`.

    With ``mixing="convex"`` the two terms are mixed instead, :math:`(1 - \lambda)
    \mathrm{CE} + \lambda R` (the public reference code's form, there with 0.9).

    :math:`R` is ``regression(new_logits, old_logits.detach(), target)``, any module with
    that signature, typically a :class:`~graceful.losses.RegressionLoss` such as
    :class:`~graceful.losses.FocalDistillationLoss`. Its output must be reduced like this
    loss (same ``reduction``); a :class:`~graceful.losses.RegressionLoss` with another
    ``reduction`` is rejected here. With ``regression=None`` this is plain
    :func:`torch.nn.functional.cross_entropy` and ``old_logits`` may be ``None``.
    See :func:`~graceful.losses.functional.positive_congruent_loss`.

    With a :class:`~graceful.losses.FocalDistillationLoss` term, ``reduction`` ``"mean"``
    or ``"sum"`` and a gradient to compute, the whole objective is one autograd node that
    returns its closed-form gradient (the same value and gradient as the unfused graph,
    about a third less time per forward and backward on small models; higher derivatives
    go through the unfused graph).

    Args:
        regression: the regression term, or ``None``.
        lam: weight :math:`\lambda \ge 0` of the regression term (at most 1 when convex).
        label_smoothing: label smoothing of the cross-entropy, in ``[0, 1]``.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        mixing: ``"add"`` (the paper's) or ``"convex"``.

    Example:
        >>> from graceful.losses import FocalDistillationLoss
        >>> loss = PositiveCongruentLoss(FocalDistillationLoss(beta=5.0), lam=1.0)
        >>> new, old = torch.zeros(2, 2), torch.zeros(2, 2)
        >>> loss(new, old, torch.tensor([0, 1]))  # old == new: only the cross-entropy
        tensor(0.6931)
        >>> PositiveCongruentLoss(None)(new, None, torch.tensor([0, 1]))
        tensor(0.6931)
    """

    lam: float
    label_smoothing: float
    mixing: str

    def __init__(
        self,
        regression: nn.Module | None,
        lam: float = 1.0,
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
        mixing: str = "add",
    ) -> None:
        super().__init__(
            lam=lam, label_smoothing=label_smoothing, reduction=reduction, mixing=mixing
        )
        if self.mixing == "convex" and self.lam > 1:
            raise InputError(
                f"Expected argument `lam` to be in [0, 1] with mixing='convex', but got {self.lam}"
            )
        if regression is not None:
            check_instance("regression", regression, nn.Module, "a torch.nn.Module or None")
        _check_regression_reduction(regression, "regression", self.reduction)
        self.regression = regression

    def forward(
        self,
        new_logits: torch.Tensor,
        old_logits: torch.Tensor | None,
        target: torch.Tensor,
    ) -> torch.Tensor:
        """Loss from new logits ``(N, C)``, old logits ``(N, C)`` (or None) and target ``(N,)``."""
        if (
            type(self.regression) is FocalDistillationLoss
            and old_logits is not None
            and self.reduction != "none"
            and isinstance(new_logits, torch.Tensor)
            and new_logits.requires_grad
            and torch.is_grad_enabled()
        ):  # the training step: one fused node, the same value and gradient
            return _fused_focal_objective(
                new_logits,
                old_logits,
                target,
                self.regression.hyperparameters,
                self.lam,
                self.label_smoothing,
                self.reduction,
                self.mixing,
            )
        return _positive_congruent(
            new_logits,
            old_logits,
            target,
            self.regression,
            self.lam,
            self.label_smoothing,
            self.reduction,
            self.mixing,
        )
