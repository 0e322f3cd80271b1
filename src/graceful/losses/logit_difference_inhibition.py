"""Logit difference inhibition (Zhao et al., ELODI 2022), as a module."""

from __future__ import annotations

from ._checks import Reduction
from .base import RegressionLoss
from .functional import _logit_difference_inhibition

__all__ = ["LogitDifferenceInhibitionLoss"]


class LogitDifferenceInhibitionLoss(RegressionLoss):
    r"""LDI: :math:`\ell_i = \frac1C \sum_c \max(|z^{new}_{ic} - z^{ref}_{ic}| - m, 0)^p`.

    Averaged (not summed) over the C classes. ELODI passes as ``old_logits`` the mean
    logits of an ensemble of old-architecture models. ``target`` is accepted (and
    validated if not ``None``) but unused. See
    :func:`~graceful.losses.functional.logit_difference_inhibition_loss`.

    The hyper-parameters are those of
    :func:`~graceful.losses.functional.logit_difference_inhibition_loss`.

    Example:
        >>> import torch
        >>> ensemble = torch.stack([torch.zeros(2, 2), torch.ones(2, 2)]).mean(0)
        >>> loss = LogitDifferenceInhibitionLoss(margin=0.5, p=2)
        >>> loss(torch.tensor([[2.5, 0.5], [0.5, 0.5]]), ensemble, None)
        tensor(0.5625)
    """

    margin: float
    p: float

    def __init__(self, margin: float = 0.0, p: float = 2.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction, margin=margin, p=p)

    _impl = _logit_difference_inhibition
