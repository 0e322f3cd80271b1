"""What the reference embedding models share: features, pooling, projection, head."""

from __future__ import annotations

import torch
from torch import nn

from graceful._validation import check_int
from graceful.embedding import make_head


def mlp(in_features: int, hidden: int, out_features: int, dropout: float = 0.0) -> nn.Module:
    """``Linear``, or ``Linear -> ReLU -> [Dropout ->] Linear`` through ``hidden`` units."""
    check_int("hidden", hidden, low=0)
    if hidden == 0:
        return nn.Linear(in_features, out_features)
    layers: list[nn.Module] = [nn.Linear(in_features, hidden), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(hidden, out_features))


class EmbeddingNet(nn.Module):
    """``head(project(flatten(pool(features(x)))))``, whose ``embed`` stops before the head.

    ``pool`` is global average pooling unless given.

    ``project`` is ``Linear(dim, embedding_dim)`` when ``embedding_dim`` is set (so models
    of different widths can share one embedding space), else the identity, unless a
    ``project`` module is given (then ``embedding_dim`` is its output dimension).

    Attributes:
        embedding_dim: the embedding's dimension ``D``.
    """

    def __init__(
        self,
        features: nn.Module,
        dim: int,
        num_classes: int,
        embedding_dim: int | None,
        head: str,
        scale: float,
        *,
        pool: nn.Module | None = None,
        project: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_int("num_classes", num_classes, low=1)
        if embedding_dim is not None:
            check_int("embedding_dim", embedding_dim, low=1)
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1) if pool is None else pool
        if project is None:
            project = nn.Identity() if embedding_dim is None else nn.Linear(dim, embedding_dim)
        self.project = project
        self.embedding_dim = dim if embedding_dim is None else embedding_dim
        self.head = make_head(self.embedding_dim, num_classes, head, scale)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding ``(N, embedding_dim)``."""
        embedding: torch.Tensor = self.project(torch.flatten(self.pool(self.features(x)), 1))
        return embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        logits: torch.Tensor = self.head(self.embed(x))
        return logits
