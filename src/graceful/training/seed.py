"""Seeding: one call seeds every global generator; data order comes from (seed, epoch) alone."""

from __future__ import annotations

import random

import numpy as np
import torch

from graceful._validation import check_int, check_seed

__all__ = ["epoch_generator", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU).

    Args:
        seed: an int in ``[0, 2**32 - 1]``.

    Raises:
        InputError: ``seed`` is not such an int.

    Example:
        >>> seed_everything(7)
        >>> a = torch.rand(2)
        >>> seed_everything(7)
        >>> torch.equal(a, torch.rand(2))
        True
    """
    seed = check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator whose state depends only on ``(seed, epoch)``.

    The trainer shuffles each epoch's data with it, so the data order of epoch ``e`` is the
    same whether training ran straight through or was resumed from a checkpoint, and it
    does not consume the global torch generator (which dropout and augmentation use). The
    pair is mixed with NumPy's ``SeedSequence``, so nearby seeds and epochs give unrelated
    streams.

    Args:
        seed: an int in ``[0, 2**32 - 1]``.
        epoch: the epoch index, a non-negative int.

    Returns:
        A freshly seeded :class:`torch.Generator`.

    Example:
        >>> a = torch.randperm(5, generator=epoch_generator(0, 3))
        >>> b = torch.randperm(5, generator=epoch_generator(0, 3))
        >>> torch.equal(a, b)
        True
    """
    seed, epoch = check_seed("seed", seed), check_int("epoch", epoch, low=0)
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator()
    generator.manual_seed(int(state) & (2**63 - 1))
    return generator
