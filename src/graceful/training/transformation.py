r"""Learn a map from old embeddings into a new model's space (FCT-style gallery upgrade).

Ramanujan et al., "Forward compatible training for large-scale embedding retrieval
systems" (CVPR 2022): instead of re-running the new model on every gallery item, learn
a transformation :math:`h` with :math:`h(e^{old}(x)) \approx e^{new}(x)` and apply it to
the stored old vectors. Training needs both models' embeddings of some training inputs;
the gallery itself is never read.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from graceful._validation import check_vectors, fail
from graceful.embedding import WithEmbedding
from graceful.errors import InputError
from graceful.losses import CompatibleEmbeddingLoss, EmbeddingRegressionLoss
from graceful.models import EmbeddingMLP

from .teachers import CachedTeacher
from .trainer import TrainConfig, Trainer

__all__ = ["fit_transformation"]


def _as_float_tensor(
    name: str, value: object, rows: int | None = None, min_rows: int = 1
) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
    arr = check_vectors(name, value, rows=rows)
    if len(arr) < min_rows:
        raise fail(name, f"a float array (N, D) with N >= {min_rows}", arr)
    return torch.from_numpy(arr)


def _paired(
    old_embeddings: object, new_embeddings: object, labels: object, min_rows: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Old and new embeddings of the same ``N >= min_rows`` items and their ``(N,)`` labels."""
    old = _as_float_tensor("old_embeddings", old_embeddings, min_rows=min_rows)
    new = _as_float_tensor("new_embeddings", new_embeddings, rows=len(old))
    y = torch.as_tensor(np.asarray(labels)).long()
    if tuple(y.shape) != (len(old),):
        raise InputError(
            f"Expected argument `labels` to have shape ({len(old)},), but got {tuple(y.shape)}"
        )
    return old, new, y


def fit_transformation(
    old_embeddings: np.ndarray | torch.Tensor,
    new_embeddings: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    new_head: nn.Module | None = None,
    hidden: int = 512,
    ce_weight: float = 0.1,
    normalize: bool = True,
    config: TrainConfig | None = None,
) -> nn.Module:
    r"""Train :math:`h` so that :math:`h(e^{old}_i) \approx e^{new}_i`; return :math:`h`.

    Objective per sample: :math:`\lVert h(e^{old}_i) - e^{new}_i \rVert^2` (of unit vectors
    with ``normalize=True``, which suits cosine retrieval) plus ``ce_weight`` times the
    cross-entropy of the *frozen* new head on :math:`h(e^{old}_i)`, which keeps the
    transformed vectors on the right side of the new model's class boundaries.
    :math:`h` is an MLP with one hidden layer (``hidden=0``: linear).

    Args:
        old_embeddings: ``(N, D_old)`` the old model's embeddings of training inputs.
        new_embeddings: ``(N, D_new)`` the new model's embeddings of the same inputs.
        labels: ``(N,)`` integer classes (used by the head term).
        new_head: the new model's classifier over its embeddings (copied and frozen);
            ``None`` (or ``ce_weight=0``): regression only.
        hidden: hidden units of :math:`h`.
        ce_weight: weight of the head's cross-entropy.
        normalize: regress unit vectors.
        config: training recipe (default: Adam, lr 1e-3, 30 epochs, batch 256, cosine).

    Returns:
        :math:`h`, an ``nn.Module`` mapping ``(M, D_old)`` to ``(M, D_new)``, in eval mode.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> old = torch.randn(64, 3, generator=g)
        >>> new = old @ torch.randn(3, 4, generator=g)  # the new space is a linear map away
        >>> h = fit_transformation(old, new, torch.zeros(64, dtype=torch.long), hidden=0,
        ...                        normalize=False, config=TrainConfig(
        ...                            epochs=300, lr=0.05, optimizer="adam",
        ...                            schedule="cosine", progress=False))
        >>> bool(((h(old) - new).norm(dim=1) / new.norm(dim=1)).mean() < 0.05)
        True
    """
    old, new, y = _paired(old_embeddings, new_embeddings, labels)
    if config is None:
        config = TrainConfig(
            epochs=30,
            batch_size=256,
            lr=1e-3,
            optimizer="adam",
            schedule="cosine",
            weight_decay=0.0,
            progress=False,
        )
    num_classes = int(y.max()) + 1 if len(y) else 1
    model = EmbeddingMLP(old.shape[1], new.shape[1], num_classes, hidden=hidden)
    if new_head is not None and ce_weight > 0:
        model.head = copy.deepcopy(new_head)
        for p in model.head.parameters():
            p.requires_grad_(False)
    else:
        ce_weight = 0.0
    ids = torch.arange(len(old))
    teacher = CachedTeacher(ids, new)
    loss = CompatibleEmbeddingLoss(
        regression=EmbeddingRegressionLoss(normalize=normalize), ce_weight=ce_weight
    )
    Trainer(WithEmbedding(model), config, loss=loss, teacher=teacher).fit(
        TensorDataset(old, y, ids)
    )
    project: nn.Module = model.project
    return project.eval()
