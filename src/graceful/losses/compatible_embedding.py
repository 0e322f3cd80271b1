"""The training objective of a backward-compatible embedding model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn
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
              + \lambda_{inf} \sum_k \mathrm{CE}(W^{(k)} e^{new} + b^{(k)}, y)
              + \lambda_{reg}\, \lVert e^{new} - e^{old} \rVert^2

    Called as ``loss(outputs, old_embeddings, target)`` where ``outputs`` is an
    :class:`~graceful.embedding.EmbeddingOutput` ``(logits, embedding)`` (what
    :class:`~graceful.embedding.WithEmbedding` returns) and ``old_embeddings`` come from a
    teacher (a :class:`~graceful.training.CachedTeacher` of the old model's embeddings);
    they may be ``None`` when there is no regression term. Each combination is a method of
    the BCT paper: independent training (no term), L2 (``regression`` only), BCT
    (``influence`` only), or both.

    Several influence terms, one per earlier version's frozen classifier (the sum over
    ``k``), keep a model compatible with each of them at once: the growing set of
    constraints of a chain v1 -> v2 -> v3, where v3 trained against v2's classifier alone
    reaches v1 only through v2.

    Args:
        influence: a :class:`~graceful.losses.BCTInfluenceLoss`, a non-empty sequence of
            them (each weighted ``lam_influence``), or ``None``.
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
        influence: BCTInfluenceLoss | Sequence[BCTInfluenceLoss] | None = None,
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
        several = isinstance(influence, (Sequence, nn.ModuleList)) and not isinstance(
            influence, (str, bytes)
        )
        terms: list[Any] = list(cast(Sequence[Any], influence)) if several else [influence]
        if several and not terms:
            raise InputError(
                "Expected argument `influence` to hold at least one BCTInfluenceLoss,"
                " but got an empty sequence"
            )
        expected = "a BCTInfluenceLoss" if several else "a BCTInfluenceLoss or None"
        for k, term in enumerate(terms):
            name = f"influence[{k}]" if several else "influence"
            if several or term is not None:  # None only stands alone
                check_instance(name, term, BCTInfluenceLoss, expected)
            _check_regression_reduction(term, name, self.reduction)
        if regression is not None:
            check_instance(
                "regression",
                regression,
                EmbeddingRegressionLoss,
                "an EmbeddingRegressionLoss or None",
            )
        _check_regression_reduction(regression, "regression", self.reduction)
        # ``loss.influence``: the one term as given, or a ModuleList of several (registered,
        # so ``.to(device)`` moves their classifiers).
        self.influence: BCTInfluenceLoss | nn.ModuleList | None = (
            nn.ModuleList(terms) if several else cast("BCTInfluenceLoss | None", influence)
        )
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
        terms = self.influence if isinstance(self.influence, nn.ModuleList) else [self.influence]
        for term in terms:
            if term is not None:
                loss = loss + self.lam_influence * term(embedding, labels)
        if self.regression is not None:
            if old_embeddings is None:
                raise InputError(
                    "Expected argument `old_embeddings` to be a tensor when there is a"
                    " regression term (give the Trainer a teacher of old embeddings),"
                    " but got None"
                )
            loss = loss + self.lam_regression * self.regression(embedding, old_embeddings)
        return loss
