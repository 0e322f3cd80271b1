"""What the loss tests share: seeded cases with every old/new cell, and the three reductions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from loss_reference import make_case as _make_case


@pytest.fixture
def make_case() -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``make_case(seed, n=16, c=5, dtype=float64)``: new logits, old logits, target."""
    return _make_case


@pytest.fixture(params=[0], ids=["seed0"])
def case(request: pytest.FixtureRequest) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A float64 case in which every (old right, new right) cell holds four samples."""
    return _make_case(seed=request.param)


@pytest.fixture(params=["mean", "sum", "none"])
def reduction(request: pytest.FixtureRequest) -> str:
    """Each reduction of the losses."""
    return str(request.param)
