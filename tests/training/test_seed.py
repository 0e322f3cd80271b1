import random

import numpy as np
import pytest
import torch

from graceful.errors import InputError
from graceful.training import epoch_generator, seed_everything


def _draw() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.rand(3)


def test_seed_everything_repeats_python_numpy_and_torch():
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    b = _draw()
    assert a[:2] == b[:2]
    assert torch.equal(a[2], b[2])


def test_epoch_generator_depends_only_on_seed_and_epoch():
    def perm(seed: int, epoch: int) -> torch.Tensor:
        return torch.randperm(50, generator=epoch_generator(seed, epoch))

    torch.manual_seed(0)
    first = perm(3, 1)
    torch.rand(10)  # the global generator does not matter
    assert torch.equal(first, perm(3, 1))
    assert not torch.equal(first, perm(3, 2))
    assert not torch.equal(first, perm(4, 1))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_bad_seed_names_the_argument(seed):
    with pytest.raises(InputError, match="`seed`"):
        seed_everything(seed)
    with pytest.raises(InputError, match="`seed`"):
        epoch_generator(seed, 0)


def test_bad_epoch_names_the_argument():
    with pytest.raises(InputError, match="`epoch`"):
        epoch_generator(0, -1)
