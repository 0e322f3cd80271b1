"""Losses for regression-free model updates: keep the new model right where the old one was.

Every loss works on tensors, never on models: ``loss(new_logits, old_logits, target)``
with logits ``(N, C)`` and integer targets ``(N,)``. Old (teacher) logits are detached
inside; ``reduction`` is ``"mean"`` (over N), ``"sum"`` or ``"none"``. Each loss is a
module (a :class:`RegressionLoss`) here and a function in :mod:`graceful.losses.functional`
(as in ``torch.nn`` and ``torch.nn.functional``);
:class:`PositiveCongruentLoss` adds one of them to the cross-entropy, and
:mod:`graceful.losses.recipes` holds ready-made objectives: the papers' recipes and the
default, :func:`recommended_pct_loss`.

References: Yan et al., "Positive-congruent training: towards regression-free model
updates", CVPR 2021 (focal distillation); Zhao et al., "ELODI: ensemble logit difference
inhibition for positive-congruent training", 2022; Srivastava, Nushi et al., "An empirical
analysis of backward compatibility in machine learning systems", KDD 2020 (new error,
strict imitation).

Backward-compatible embeddings (Shen et al., "Towards backward-compatible representation
learning", CVPR 2020) use :class:`BCTInfluenceLoss` (new embeddings through the frozen old
classifier) and :class:`EmbeddingRegressionLoss`, combined with the new head's
cross-entropy by :class:`CompatibleEmbeddingLoss`; they take embeddings ``(N, D)``.

Example:
    >>> import torch
    >>> from graceful.losses import FocalDistillationLoss, PositiveCongruentLoss
    >>> criterion = PositiveCongruentLoss(FocalDistillationLoss(alpha=1.0, beta=5.0))
    >>> new = torch.zeros(4, 3, requires_grad=True)
    >>> old = torch.eye(3)[[0, 1, 2, 0]] * 4.0
    >>> loss = criterion(new, old, torch.tensor([0, 1, 2, 1]))
    >>> loss.backward()
    >>> new.grad.shape
    torch.Size([4, 3])
"""

from .base import RegressionLoss
from .bct import BCTInfluenceLoss, class_prototypes, synthesize_classifier
from .compatible_embedding import CompatibleEmbeddingLoss
from .distillation import DistillationLoss
from .embedding_regression import EmbeddingRegressionLoss
from .focal_distillation import FocalDistillationLoss
from .logit_difference_inhibition import LogitDifferenceInhibitionLoss
from .new_error import NewErrorLoss
from .positive_congruent import PositiveCongruentLoss
from .recipes import (
    elodi_loss,
    paper_fd_kl,
    paper_fd_lm,
    recommended_pct_loss,
    reference_code_fd,
)
from .strict_imitation import StrictImitationLoss

__all__ = [
    "BCTInfluenceLoss",
    "CompatibleEmbeddingLoss",
    "DistillationLoss",
    "EmbeddingRegressionLoss",
    "FocalDistillationLoss",
    "LogitDifferenceInhibitionLoss",
    "NewErrorLoss",
    "PositiveCongruentLoss",
    "RegressionLoss",
    "StrictImitationLoss",
    "class_prototypes",
    "elodi_loss",
    "paper_fd_kl",
    "paper_fd_lm",
    "recommended_pct_loss",
    "reference_code_fd",
    "synthesize_classifier",
]
