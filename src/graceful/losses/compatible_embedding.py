"""The training objective of a backward-compatible embedding model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F  # noqa: N812

from graceful._validation import check_instance
from graceful.errors import InputError

from ._checks import Reduction, check_target
from .base import _Configured
from .bct import BCTInfluenceLoss
from .embedding_regression import EmbeddingRegressionLoss
from .functional import _check_regression_reduction

__all__ = ["CompatibleEmbeddingLoss"]


class CompatibleEmbeddingLoss(_Configured):
    r"""Cross-entropy of the new head plus compatibility terms on the embedding.

    .. math:: L = w_{ce}\,\mathrm{CE}(z^{new}, y)
              + \lambda_{inf}\, \mathrm{CE}(W^{old} e^{new} + b^{old}, y)
              + \lambda_{reg}\, \lVert e^{new} - e^{old} \rVert^2

    Called as ``loss(outputs, old_embeddings, target)`` where ``outputs`` is an
    :class:`~graceful.embedding.EmbeddingOutput` ``(logits, embedding)`` (what
    :class:`~graceful.embedding.WithEmbedding` returns) and ``old_embeddings`` come from a
    teacher (a :class:`~graceful.training.CachedTeacher` of the old model's embeddings);
    they may be ``None`` when there is no regression term. Each combination is a method of
    the BCT paper: independent training (no term), L2 (``regression`` only), BCT
    (``influence`` only), or both.

    Args:
        influence: a :class:`~graceful.losses.BCTInfluenceLoss`, or ``None``.
        regression: an :class:`~graceful.losses.EmbeddingRegressionLoss`, or ``None``.
        lam_influence: weight of the influence term, ``>= 0``.
        lam_regression: weight of the regression term, ``>= 0``.
        ce_weight: weight of the new head's cross-entropy, ``>= 0`` (0 trains through the
            compatibility terms only).
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"``; the terms must use the same.

    Example:
        >>> from graceful.losses import BCTInfluenceLoss
        >>> from graceful.embedding import EmbeddingOutput
        >>> loss = CompatibleEmbeddingLoss(influence=BCTInfluenceLoss(torch.eye(2)))
        >>> out = EmbeddingOutput(torch.zeros(2, 3), torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
        >>> loss(out, None, torch.tensor([0, 1]))  # log(3) + CE under the old head
        tensor(1.2255)
    """

    lam_influence: float
    lam_regression: float
    ce_weight: float

    def __init__(
        self,
        *,
        influence: BCTInfluenceLoss | None = None,
        regression: EmbeddingRegressionLoss | None = None,
        lam_influence: float = 1.0,
        lam_regression: float = 1.0,
        ce_weight: float = 1.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(
            lam_influence=lam_influence,
            lam_regression=lam_regression,
            ce_weight=ce_weight,
            reduction=reduction,
        )
        for term, name, kind in (
            (influence, "influence", BCTInfluenceLoss),
            (regression, "regression", EmbeddingRegressionLoss),
        ):
            if term is not None:
                check_instance(name, term, kind, f"a {kind.__name__} or None")
            _check_regression_reduction(term, name, self.reduction)
        self.influence = influence
        self.regression = regression

    def forward(
        self,
        outputs: Sequence[torch.Tensor],
        old_embeddings: torch.Tensor | None,
        target: torch.Tensor,
    ) -> torch.Tensor:
        """Loss from ``(logits, embedding)``, the old embeddings (or None) and the target."""
        if (
            not isinstance(outputs, tuple)
            or len(outputs) != 2
            or not all(isinstance(t, torch.Tensor) for t in outputs)
        ):
            raise InputError(
                "Expected argument `outputs` to be an EmbeddingOutput (logits, embedding):"
                " wrap the model in graceful.embedding.WithEmbedding,"
                f" but got {type(outputs).__name__}"
            )
        logits, embedding = outputs
        if logits.ndim != 2 or embedding.ndim != 2 or len(logits) != len(embedding):
            raise InputError(
                "Expected `outputs` to hold logits (N, C) and an embedding (N, D), but got"
                f" shapes {tuple(logits.shape)} and {tuple(embedding.shape)}"
            )
        labels = check_target(target, logits.shape[0])
        loss = self.ce_weight * F.cross_entropy(logits, labels, reduction=self.reduction)
        if self.influence is not None:
            loss = loss + self.lam_influence * self.influence(embedding, labels)
        if self.regression is not None:
            if old_embeddings is None:
                raise InputError(
                    "Expected argument `old_embeddings` to be a tensor when there is a"
                    " regression term (give the Trainer a teacher of old embeddings),"
                    " but got None"
                )
            loss = loss + self.lam_regression * self.regression(embedding, old_embeddings)
        return loss
