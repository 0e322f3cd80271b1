"""L2 regression of new embeddings onto old ones, as a module."""

from __future__ import annotations

import torch

from ._checks import Reduction
from .base import _Configured
from .functional import _embedding_regression

__all__ = ["EmbeddingRegressionLoss"]


class EmbeddingRegressionLoss(_Configured):
    r""":math:`\ell_i = \lVert e^{new}_i - e^{old}_i \rVert_2^2` (optionally of unit vectors).

    The hyper-parameters are those of
    :func:`~graceful.losses.functional.embedding_regression_loss`.

    Example:
        >>> loss = EmbeddingRegressionLoss()
        >>> loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
        tensor(4.)
    """

    normalize: bool

    def __init__(self, *, normalize: bool = False, reduction: Reduction = "mean") -> None:
        super().__init__(normalize=normalize, reduction=reduction)

    def forward(
        self,
        new_embeddings: torch.Tensor,
        old_embeddings: torch.Tensor,
        target: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss from new and old embeddings ``(N, D)``; ``target`` is ignored."""
        return _embedding_regression(new_embeddings, old_embeddings, self.normalize, self.reduction)
