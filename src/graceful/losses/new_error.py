"""New-error dissonance (Srivastava, Nushi et al., KDD 2020), as a module."""

from __future__ import annotations

from .base import RegressionLoss
from .functional import _new_error

__all__ = ["NewErrorLoss"]


class NewErrorLoss(RegressionLoss):
    r"""New error: :math:`\ell_i = 1[\hat y^{old}_i = y_i]\,\mathrm{CE}(z^{new}_i, y_i)`.

    Penalises the new model's errors only where the old model was right; exactly zero
    elsewhere, and ``"mean"`` divides by all N samples. See
    :func:`~graceful.losses.functional.new_error_loss`.

    The hyper-parameters are those of
    :func:`~graceful.losses.functional.new_error_loss`.

    Example:
        >>> import torch
        >>> loss = NewErrorLoss(reduction="sum")
        >>> old = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> loss(torch.zeros(2, 2), old, torch.tensor([0, 1]))
        tensor(0.6931)
    """

    _impl = _new_error
