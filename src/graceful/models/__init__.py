"""Reference models of the demo, the guide and the benchmarks, and the cost of a model.

:class:`SmallCNN` (a plain 3-block CNN) and :class:`EdgeCNN` (a family of small edge
CNNs) are embedding models in the sense of :mod:`graceful.embedding`; :class:`MLPHead`
and :class:`EmbeddingMLP` are heads over fixed features. :func:`profile_model` measures
parameters, FLOPs and CPU latency, and :func:`pareto_front` picks the candidates that no
other beats on both cost and value.

Example:
    >>> import torch
    >>> from graceful.models import SmallCNN
    >>> SmallCNN(width=8)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from .cnn import SmallCNN
from .edge import EdgeCNN
from .mlp import EmbeddingMLP, MLPHead
from .profile import (
    ModelCost,
    count_flops,
    count_parameters,
    measure_latency,
    pareto_front,
    profile_model,
)

__all__ = [
    "EdgeCNN",
    "EmbeddingMLP",
    "MLPHead",
    "ModelCost",
    "SmallCNN",
    "count_flops",
    "count_parameters",
    "measure_latency",
    "pareto_front",
    "profile_model",
]
