"""Focal distillation (Yan et al., CVPR 2021), as a module."""

from __future__ import annotations

from ._checks import Reduction
from .base import RegressionLoss
from .functional import _focal_distillation

__all__ = ["FocalDistillationLoss"]


class FocalDistillationLoss(RegressionLoss):
    r"""Focal distillation: :math:`\ell_i = (\alpha + \beta f_i)\, d_i`.

    :math:`f_i` is 1 on the samples the filter selects (``"old_correct"``: the old model
    is right; ``"negative_flip"``: old right and new wrong; ``"all"``), :math:`d_i` is the
    tempered KL divergence (``"kl"``), half the squared logit difference summed over the
    classes (``"logit_matching"``, the paper's FD-LM) or that difference in units of the
    teacher's logit spread (``"scaled_logit_matching"``). See
    :func:`~graceful.losses.functional.focal_distillation_loss` for the formulas.

    The hyper-parameters are those of
    :func:`~graceful.losses.functional.focal_distillation_loss`.

    Example:
        >>> import torch
        >>> loss = FocalDistillationLoss(alpha=1.0, beta=5.0, distance="logit_matching")
        >>> new = torch.tensor([[0.0, 2.0], [0.0, 1.0]])
        >>> old = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
        >>> loss(new, old, torch.tensor([0, 1]))  # (6 * 4 + 1 * 2.5) / 2
        tensor(13.2500)
    """

    alpha: float
    beta: float
    distance: str
    temperature: float
    filter: str

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 5.0,
        distance: str = "kl",
        temperature: float = 1.0,
        filter: str = "old_correct",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(
            reduction,
            alpha=alpha,
            beta=beta,
            distance=distance,
            temperature=temperature,
            filter=filter,
        )

    _impl = _focal_distillation
