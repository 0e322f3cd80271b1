"""A plain 3-block CNN whose width sets its capacity (old vs new model in the benchmarks)."""

from __future__ import annotations

from torch import nn

from graceful._validation import check_int

from ._base import EmbeddingNet

__all__ = ["SmallCNN"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(EmbeddingNet):
    """Three conv blocks (widths w, 2w, 4w, BatchNorm, max-pooling), global pooling, linear head.

    Args:
        width: channels of the first block; the blocks have ``w, 2w, 4w``.
        num_classes: outputs.
        in_channels: input channels (1 for grey images).
        embedding_dim: when set, a linear projection of the pooled features to this many
            dimensions is the embedding (so models of different widths can share an
            embedding space); ``None``: the pooled features (``4 * width``) are.
        head: the classifier, ``"linear"`` or ``"cosine"`` (see
            :class:`~graceful.embedding.CosineClassifier`).
        scale: the cosine head's scale.

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
        self,
        width: int = 16,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        embedding_dim: int | None = None,
        head: str = "linear",
        scale: float = 16.0,
    ) -> None:
        for value, name in ((width, "width"), (in_channels, "in_channels")):
            check_int(name, value, low=1)
        features = nn.Sequential(
            _block(in_channels, width), _block(width, 2 * width), _block(2 * width, 4 * width)
        )
        super().__init__(features, 4 * width, num_classes, embedding_dim, head, scale)
