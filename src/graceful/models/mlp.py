"""An MLP classification head over fixed features (e.g. frozen sentence embeddings)."""

from __future__ import annotations

import torch
from torch import nn

from graceful._validation import check_int, check_real

from ._base import EmbeddingNet, mlp

__all__ = ["EmbeddingMLP", "MLPHead"]


class MLPHead(nn.Module):
    """``Linear -> ReLU -> Dropout -> Linear``, or a single linear layer when ``hidden=0``.

    Args:
        in_features: input dimension.
        num_classes: outputs.
        hidden: hidden units (0: a linear classifier).
        dropout: dropout probability after the hidden layer.

    Example:
        >>> import torch
        >>> MLPHead(8, 2, hidden=4)(torch.zeros(3, 8)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self, in_features: int, num_classes: int, *, hidden: int = 256, dropout: float = 0.1
    ) -> None:
        super().__init__()
        for value, name in ((in_features, "in_features"), (num_classes, "num_classes")):
            check_int(name, value, low=1)
        check_real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.net = mlp(in_features, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        logits: torch.Tensor = self.net(x)
        return logits


class EmbeddingMLP(EmbeddingNet):
    """An embedding model over fixed features: a projection (the embedding), then a head.

    ``embed``: ``Linear(in_features, embedding_dim)``, or ``Linear -> ReLU -> Linear``
    through ``hidden`` units; ``head``: a linear or cosine classifier. Used to map a
    frozen encoder's vectors (e.g. MPNet's 768-d) into another space (e.g. MiniLM's 384-d).

    Args:
        in_features: input dimension.
        embedding_dim: the embedding's dimension.
        num_classes: outputs of the head.
        hidden: hidden units of the projection (0: linear projection).
        head: ``"linear"`` or ``"cosine"``.
        scale: the cosine head's scale.

    Example:
        >>> import torch
        >>> model = EmbeddingMLP(8, 4, 3)
        >>> model.embed(torch.zeros(2, 8)).shape, model(torch.zeros(2, 8)).shape
        (torch.Size([2, 4]), torch.Size([2, 3]))
    """

    def __init__(
        self,
        in_features: int,
        embedding_dim: int,
        num_classes: int,
        *,
        hidden: int = 0,
        head: str = "linear",
        scale: float = 16.0,
    ) -> None:
        check_int("in_features", in_features, low=1)
        check_int("embedding_dim", embedding_dim, low=1)
        check_int("num_classes", num_classes, low=1)
        project = mlp(in_features, hidden, embedding_dim)
        super().__init__(
            nn.Identity(),
            in_features,
            num_classes,
            embedding_dim,
            head,
            scale,
            pool=nn.Identity(),
            project=project,
        )
