"""An MLP classification head over fixed features (e.g. frozen sentence embeddings)."""

from __future__ import annotations

import torch
from torch import nn

from graceful.errors import InputError

__all__ = ["MLPHead"]


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
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f"Expected argument `{name}` to be a positive int, but got {value!r}"
                )
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
            raise InputError(f"Expected argument `hidden` to be an int >= 0, but got {hidden!r}")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"Expected argument `dropout` to be in [0, 1), but got {dropout!r}")
        if hidden == 0:
            self.net: nn.Module = nn.Linear(in_features, num_classes)
        else:
            self.net = nn.Sequential(
                nn.Linear(in_features, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        logits: torch.Tensor = self.net(x)
        return logits
