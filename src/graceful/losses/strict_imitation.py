"""Strict-imitation dissonance (Srivastava, Nushi et al., KDD 2020), as a module."""

from __future__ import annotations

from .base import RegressionLoss
from .functional import _strict_imitation

__all__ = ["StrictImitationLoss"]


class StrictImitationLoss(RegressionLoss):
    r"""Strict imitation: imitate the old model's output distribution where it was right.

    :math:`\ell_i = 1[\hat y^{old}_i = y_i]\,\mathrm{CE}(z^{new}_i, p^{old}_i)` with soft
    labels :math:`p^{old}_i = \mathrm{softmax}(z^{old}_i)`; exactly zero elsewhere,
    and ``"mean"`` divides by all N samples. See
    :func:`~graceful.losses.functional.strict_imitation_loss`.

    The hyper-parameters are those of
    :func:`~graceful.losses.functional.strict_imitation_loss`.

    Example:
        >>> import torch
        >>> loss = StrictImitationLoss(reduction="none")
        >>> old = torch.tensor([[9.0, 0.0], [9.0, 0.0]])
        >>> loss(torch.zeros(2, 2), old, torch.tensor([0, 1]))
        tensor([0.6931, 0.0000])
    """

    _impl = _strict_imitation
