"""Small reference models for the benchmarks and examples: CNNs, MLP heads, embedding models.

Example:
    >>> import torch
    >>> from graceful.models import SmallCNN
    >>> SmallCNN(width=8)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from .cnn import SmallCNN
from .embedding import (
    CosineClassifier,
    EmbeddingModel,
    EmbeddingOf,
    EmbeddingOutput,
    WithEmbedding,
    classifier_logits,
)
from .mlp import EmbeddingMLP, MLPHead

__all__ = [
    "CosineClassifier",
    "EmbeddingMLP",
    "EmbeddingModel",
    "EmbeddingOf",
    "EmbeddingOutput",
    "MLPHead",
    "SmallCNN",
    "WithEmbedding",
    "classifier_logits",
]
