"""A plain 3-block CNN whose width sets its capacity (old vs new model in the benchmarks)."""

from __future__ import annotations

from typing import Any

from .edge import EdgeCNN

__all__ = ["SmallCNN"]


class SmallCNN(EdgeCNN):
    """Three conv blocks (widths w, 2w, 4w, BatchNorm, max-pooling), global pooling, linear head.

    It is the :class:`~graceful.models.EdgeCNN` with two plain conv layers per stage.

    Args:
        width: channels of the first block; the blocks have ``w, 2w, 4w``.
        num_classes: outputs.
        in_channels: input channels (1 for grey images).
        options: ``embedding_dim`` (a linear projection of the pooled features to this many
            dimensions is the embedding, so models of different widths can share an
            embedding space), ``head`` (``"linear"`` or ``"cosine"``) and ``scale``, as for
            :class:`~graceful.models.EdgeCNN`.

    Example:
        >>> import torch
        >>> model = SmallCNN(width=4, num_classes=3)
        >>> model(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 3])
        >>> model.embed(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 16])
        >>> cosine = SmallCNN(width=4, embedding_dim=32, head="cosine")
        >>> cosine.embed(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 32])
    """

    def __init__(
        self, width: int = 16, num_classes: int = 10, in_channels: int = 1, **options: Any
    ) -> None:
        super().__init__(width, 2, num_classes=num_classes, in_channels=in_channels, **options)
