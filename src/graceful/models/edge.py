"""A family of small (edge) embedding CNNs: plain, depthwise-separable or inverted-residual.

:class:`EdgeCNN` has the layout of :class:`~graceful.models.SmallCNN` (three stages of
``w, 2w, 4w`` channels, each followed by 2x2 max-pooling, global average pooling, an
optional linear projection, a head) with a choice of block and of blocks per stage, so
that one family spans a wide range of cost: train each member to be compatible with a
large model and pick the Pareto front of cost (:mod:`graceful.models.profile`) against
accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

from graceful._validation import check_choice, check_int, check_real

from ._base import EmbeddingNet

__all__ = ["EdgeCNN"]

_BLOCKS = ("conv", "dwsep", "inverted")


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Conv3x3 (no bias) -> BN -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _dwsep_block(c_in: int, c_out: int) -> nn.Sequential:
    """Depthwise Conv3x3 -> BN -> ReLU -> pointwise Conv1x1 -> BN -> ReLU (MobileNet)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, kernel_size=3, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _InvertedResidual(nn.Module):
    """MobileNetV2 block: expand (1x1), depthwise 3x3, linear project (1x1), residual.

    The residual is added when input and output have the same shape (``c_in == c_out``;
    the block never changes the resolution: pooling does).
    """

    def __init__(self, c_in: int, c_out: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = expansion * c_in
        self.block = nn.Sequential(
            nn.Conv2d(c_in, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c_out, kernel_size=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.residual = c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(x)
        return x + out if self.residual else out


def _make_block(kind: str, c_in: int, c_out: int) -> nn.Module:
    if kind == "conv":
        return _conv_block(c_in, c_out)
    if kind == "dwsep":
        return _dwsep_block(c_in, c_out)
    return _InvertedResidual(c_in, c_out)


class EdgeCNN(EmbeddingNet):
    """A small embedding CNN: three stages of ``depth`` blocks (``w, 2w, 4w`` channels).

    Each stage is ``depth`` blocks followed by 2x2 max-pooling (28x28 -> 14 -> 7 -> 3,
    8x8 -> 4 -> 2 -> 1, as in :class:`~graceful.models.SmallCNN`; inputs need a side of
    at least 8 pixels), then global average pooling, an optional linear projection
    ``self.project`` (the embedding) and the head. The first block of a stage changes the
    channels, the later ones keep them. ``block``:

    - ``"conv"``: Conv3x3 (no bias) -> BatchNorm -> ReLU. ``EdgeCNN(w, depth=2)`` has the
      layers of ``SmallCNN(w)``.
    - ``"dwsep"``: depthwise-separable (MobileNet): depthwise Conv3x3 -> BN -> ReLU ->
      pointwise Conv1x1 -> BN -> ReLU.
    - ``"inverted"``: inverted residual (MobileNetV2) with expansion 2: Conv1x1 to
      ``2 c_in`` -> BN -> ReLU -> depthwise Conv3x3 -> BN -> ReLU -> Conv1x1 to ``c_out``
      -> BN (linear bottleneck), plus the input when ``c_in == c_out``.

    As in MobileNet, the very first block (on the raw image) is a plain ``"conv"`` block
    whatever ``block`` is: a depthwise conv over a 1-channel image would be a single 3x3
    filter, and every later channel a rescaled copy of it. So ``"dwsep"`` and
    ``"inverted"`` differ from ``"conv"`` in all blocks but that stem.

    Args:
        width: channels of the first stage ``w``; the stages have ``w, 2w, 4w``.
        depth: blocks per stage (>= 1).
        block: ``"conv"``, ``"dwsep"`` or ``"inverted"``.
        num_classes: outputs of the head.
        in_channels: input channels (1 for grey images).
        embedding_dim: when set, ``Linear(4 * width, embedding_dim)`` of the pooled
            features is the embedding (so models of different widths can share the large
            model's embedding space); ``None``: the pooled ``4 * width`` features are.
        head: the classifier, ``"linear"`` or ``"cosine"`` (see
            :class:`~graceful.embedding.CosineClassifier`).
        scale: the cosine head's scale (> 0).

    Attributes:
        embedding_dim: the embedding's dimension ``D`` (``embedding_dim`` or ``4 * width``).

    Example:
        >>> import torch
        >>> model = EdgeCNN(width=4, depth=2, block="dwsep", num_classes=3)
        >>> model(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 3])
        >>> model.embed(torch.zeros(5, 1, 8, 8)).shape
        torch.Size([5, 16])
        >>> EdgeCNN(width=2, embedding_dim=32, head="cosine").embed(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 32])
    """

    def __init__(
        self,
        width: int = 8,
        depth: int = 1,
        *,
        block: str = "conv",
        num_classes: int = 10,
        in_channels: int = 1,
        embedding_dim: int | None = None,
        head: str = "linear",
        scale: float = 16.0,
    ) -> None:
        for value, name in ((width, "width"), (depth, "depth"), (in_channels, "in_channels")):
            check_int(name, value, low=1)
        check_choice("block", block, _BLOCKS)
        check_real("scale", scale, low=0.0, low_open=True)
        stages: list[nn.Module] = []
        c_in = in_channels
        for c_out in (width, 2 * width, 4 * width):
            blocks: list[nn.Module] = []
            for i in range(depth):
                kind = "conv" if not stages and i == 0 else block  # the stem is a plain conv
                blocks.append(_make_block(kind, c_in if i == 0 else c_out, c_out))
            stages.append(nn.Sequential(*blocks, nn.MaxPool2d(2)))
            c_in = c_out
        features = nn.Sequential(*stages)
        super().__init__(features, 4 * width, num_classes, embedding_dim, head, float(scale))
