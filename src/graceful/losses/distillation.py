"""Knowledge distillation from the old model, as a module."""

from __future__ import annotations

from ._checks import Reduction
from .base import RegressionLoss
from .functional import _distillation

__all__ = ["DistillationLoss"]


class DistillationLoss(RegressionLoss):
    r"""Knowledge distillation: :math:`\ell_i = T^2\,\mathrm{KL}(p^{old}_i \| p^{new}_i)`.

    With :math:`p = \mathrm{softmax}(z / T)`; see
    :func:`~graceful.losses.functional.distillation_loss` for the details. ``target`` is
    accepted (and validated if not ``None``) but unused.

    The hyper-parameters are those of
    :func:`~graceful.losses.functional.distillation_loss`.

    Example:
        >>> import torch
        >>> loss = DistillationLoss(temperature=2.0)
        >>> new = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> old = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> loss(new, old, torch.tensor([0, 1]))
        tensor(0.0559)
    """

    temperature: float

    def __init__(self, temperature: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction, temperature=temperature)

    _impl = _distillation
