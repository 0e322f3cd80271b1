"""Small reference models for the benchmarks and examples: a CNN and an MLP head.

Example:
    >>> import torch
    >>> from graceful.models import SmallCNN
    >>> SmallCNN(width=8)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from .cnn import SmallCNN
from .mlp import MLPHead

__all__ = ["MLPHead", "SmallCNN"]
