"""BCT's influence loss (Shen et al., CVPR 2020) as a module, and the old classifier it needs."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from graceful._validation import check_int
from graceful.errors import InputError

from ._checks import Reduction, check_classifier, check_embeddings
from .base import _Configured
from .functional import _bct_influence

__all__ = ["BCTInfluenceLoss", "class_prototypes", "synthesize_classifier"]


class BCTInfluenceLoss(_Configured):
    r"""Cross-entropy of the new embeddings under the frozen old classifier.

    :math:`\ell_i = \mathrm{CE}(W^{old} e^{new}_i + b^{old}, y_i)`; see
    :func:`~graceful.losses.functional.bct_influence_loss`. The old classifier is held as
    buffers (a copy, detached, moved with ``.to()``), never as a model, and is not trained.

    The arguments are those of the function (``old_weight`` needs rows for every class
    the targets use; see :func:`synthesize_classifier`).

    Example:
        >>> loss = BCTInfluenceLoss(torch.eye(2))
        >>> e = torch.tensor([[2.0, 0.0], [2.0, 0.0]], requires_grad=True)
        >>> loss(e, torch.tensor([0, 1]))
        tensor(1.1269, grad_fn=<NllLossBackward0>)
        >>> sum(p.numel() for p in loss.parameters())  # nothing to train
        0
    """

    old_weight: torch.Tensor
    old_bias: torch.Tensor | None
    head: str
    scale: float

    def __init__(
        self,
        old_weight: torch.Tensor,
        old_bias: torch.Tensor | None = None,
        *,
        head: str = "linear",
        scale: float = 16.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(head=head, scale=scale, reduction=reduction)
        weight, bias = check_classifier(old_weight, old_bias)
        self.register_buffer("old_weight", weight.clone())
        self.register_buffer("old_bias", None if bias is None else bias.clone())

    def forward(self, new_embeddings: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss from new embeddings ``(N, D)`` and target ``(N,)``."""
        return _bct_influence(
            new_embeddings,
            target,
            self.old_weight,
            self.old_bias,
            self.head,
            self.scale,
            self.reduction,
        )

    def extra_repr(self) -> str:
        """Shape and hyper-parameters."""
        c, d = self.old_weight.shape
        return f"classes={c}, dim={d}, head={self.head!r}, reduction={self.reduction!r}"


def synthesize_classifier(
    old_weight: torch.Tensor,
    old_bias: torch.Tensor | None,
    old_embeddings: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    old_classes: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Extend the old classifier to classes the old model never saw, as in BCT.

    Row ``c`` of the result is the old classifier's row for class ``c`` where the old model
    was trained on ``c``; for a class it never saw, it is the mean of the *old model's*
    embeddings of that class's training samples, rescaled to the mean norm of the trained
    rows (so its logits are on the trained rows' scale; the direction is what the paper
    prescribes), with bias the mean of the trained biases.

    Args:
        old_weight: ``(K, D)`` trained rows.
        old_bias: ``(K,)`` or ``None``.
        old_embeddings: ``(N, D)`` the old model's embeddings of training samples.
        labels: ``(N,)`` their classes in ``[0, num_classes)``.
        num_classes: classes of the result.
        old_classes: the class of each trained row (default ``0 .. K-1``).

    Returns:
        ``(weight (num_classes, D), bias (num_classes,) or None)``, detached.

    Raises:
        InputError: when a class has neither a trained row nor a sample, or shapes disagree.

    Example:
        >>> w = torch.tensor([[2.0, 0.0]])  # the old model knew class 0 only
        >>> emb = torch.tensor([[0.0, 1.0], [0.0, 3.0], [5.0, 5.0]])
        >>> weight, _ = synthesize_classifier(w, None, emb, torch.tensor([1, 1, 0]), 2)
        >>> weight
        tensor([[2., 0.],
                [0., 2.]])
    """
    trained, trained_bias = check_classifier(old_weight, old_bias)
    k, d = trained.shape
    embeddings = check_embeddings("old_embeddings", old_embeddings, reduction="sum")
    if embeddings.shape[1] != d:
        raise InputError(
            f"Expected argument `old_embeddings` to have D = {d} columns like `old_weight`,"
            f" but got shape {tuple(embeddings.shape)}"
        )
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (len(embeddings),):
        raise InputError(f"Expected argument `labels` to be a tensor of shape ({len(embeddings)},)")
    num_classes = check_int("num_classes", num_classes, low=1)
    rows = list(range(k)) if old_classes is None else [int(c) for c in old_classes]
    if len(rows) != k or len(set(rows)) != k or any(not 0 <= c < num_classes for c in rows):
        raise InputError(
            f"Expected argument `old_classes` to be {k} distinct classes in [0, {num_classes}),"
            f" but got {old_classes!r}"
        )
    weight = trained.new_zeros(num_classes, d)
    weight[rows] = trained
    bias = None
    if trained_bias is not None:
        bias = trained_bias.new_full((num_classes,), float(trained_bias.mean()))
        bias[rows] = trained_bias
    target_norm = trained.norm(dim=1).mean()
    labels = labels.long()
    for c in sorted(set(range(num_classes)) - set(rows)):
        members = embeddings[labels == c]
        if len(members) == 0:
            raise InputError(
                f"Expected argument `labels` to include class {c}, which has no trained row,"
                " but no sample has it"
            )
        mean = members.detach().mean(dim=0).to(weight.dtype)
        weight[c] = mean * (target_norm / mean.norm().clamp_min(1e-12))
    return weight, bias


def class_prototypes(
    old_embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> torch.Tensor:
    r"""Unit-length class means of the old model's embeddings: a prototype head for BCT.

    Used as the old classifier of :class:`BCTInfluenceLoss` with ``head="cosine"``, it pulls
    each new embedding towards the *direction* of its class's old embeddings, for the classes
    the old model saw and the ones it did not alike: what cosine retrieval against the old
    gallery rewards. The trained rows of an old linear head point elsewhere (they only need
    to separate the classes), and a linear head lets the new embeddings meet the loss by
    growing their norm. On our Animal-MNIST benchmark (old model on 5 of 10 classes),
    prototypes with scale 8 raise the mAP update gain above the linear head's
    (``benchmarks/README.md``).

    Args:
        old_embeddings: ``(N, D)`` the old model's embeddings of training samples.
        labels: ``(N,)`` their classes in ``[0, num_classes)``.
        num_classes: the rows of the result; every class needs a sample.

    Returns:
        ``(num_classes, D)`` unit rows, detached.

    Raises:
        InputError: a class without a sample, labels out of range or of the wrong shape,
            or non-finite embeddings.

    Example:
        >>> emb = torch.tensor([[2.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
        >>> class_prototypes(emb, torch.tensor([0, 0, 1]), 2)
        tensor([[1., 0.],
                [0., 1.]])
    """
    embeddings = check_embeddings("old_embeddings", old_embeddings, reduction="sum").detach()
    num_classes = check_int("num_classes", num_classes, low=1)
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (len(embeddings),):
        raise InputError(f"Expected argument `labels` to be a tensor of shape ({len(embeddings)},)")
    labels = labels.long()
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InputError(
            f"Expected argument `labels` to hold classes in [0, {num_classes}), but got "
            f"{int(labels.min())}..{int(labels.max())}"
        )
    counts = torch.bincount(labels, minlength=num_classes)
    if bool((counts == 0).any()):
        missing = int(torch.nonzero(counts == 0)[0])
        raise InputError(
            f"Expected argument `labels` to include every class, but class {missing} has no sample"
        )
    sums = embeddings.new_zeros(num_classes, embeddings.shape[1]).index_add_(0, labels, embeddings)
    means = sums / counts.unsqueeze(1).to(sums.dtype)
    return torch.nn.functional.normalize(means, dim=1)
