"""Small reference models for the benchmarks and examples: CNNs, MLP heads, embedding models.

Example:
    >>> import torch
    >>> from graceful.models import SmallCNN
    >>> SmallCNN(width=8)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from .cnn import SmallCNN
from .edge import EdgeCNN
from .embedding import (
    CosineClassifier,
    EmbeddingModel,
    EmbeddingOf,
    EmbeddingOutput,
    WithEmbedding,
    classifier_logits,
)
from .mlp import EmbeddingMLP, MLPHead
from .pretrained import load_efficientnet_lite0
from .profile import (
    ModelCost,
    count_flops,
    count_parameters,
    measure_latency,
    pareto_front,
    profile_model,
)

__all__ = [
    "CosineClassifier",
    "EdgeCNN",
    "EmbeddingMLP",
    "EmbeddingModel",
    "EmbeddingOf",
    "EmbeddingOutput",
    "MLPHead",
    "ModelCost",
    "SmallCNN",
    "WithEmbedding",
    "classifier_logits",
    "count_flops",
    "count_parameters",
    "load_efficientnet_lite0",
    "measure_latency",
    "pareto_front",
    "profile_model",
]
