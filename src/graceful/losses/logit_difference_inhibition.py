"""Logit difference inhibition (Zhao et al., ELODI 2022), as a module."""

from __future__ import annotations

from ._checks import Reduction
from .base import RegressionLoss
from .functional import _logit_difference_inhibition

__all__ = ["LogitDifferenceInhibitionLoss"]


class LogitDifferenceInhibitionLoss(RegressionLoss):
    r"""LDI: :math:`\ell_i = \operatorname{mean}_{c \in S_i} \max(|\Delta z_{ic}| - m, 0)^p`.

    Averaged (not summed) over the classes :math:`S_i`: all of them, less the target with
    ``exclude_target=True``, only the ``top_k`` highest reference logits with ``top_k``.
    ELODI passes as ``old_logits`` the mean logits of a homogeneous ensemble, with
    ``margin=0, p=2, exclude_target=True``. See
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
    top_k: int | None
    exclude_target: bool

    def __init__(
        self,
        margin: float = 0.0,
        p: float = 2.0,
        top_k: int | None = None,
        exclude_target: bool = False,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction, margin=margin, p=p, top_k=top_k, exclude_target=exclude_target)

    _impl = _logit_difference_inhibition
