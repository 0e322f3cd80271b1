"""FastFill: the transformation, its uncertainty, the frozen head, bad input."""

import numpy as np
import pytest
import torch

from graceful.errors import InputError
from graceful.training import FastFillTransformation, fit_fastfill


def _pairs(seed=0, n=512):
    g = torch.Generator().manual_seed(seed)
    old = torch.randn(n, 6, generator=g)
    new = torch.tanh(old @ torch.randn(6, 5, generator=g))
    hard = old[:, 1] > 0.8  # here the new vectors carry what the old ones cannot predict
    new[hard] += 0.8 * torch.randn(int(hard.sum()), 5, generator=g)
    return old, new, hard


def test_sigma_tracks_the_transformation_error_and_orders_the_hard_items_first():
    old, new, hard = _pairs()
    t = fit_fastfill(old, new, torch.zeros(len(old), dtype=torch.long), hidden=64, epochs=60,
                     batch_size=64, lr=3e-3)  # fmt: skip
    sigma = t.uncertainty(old)
    error = (t(old) - torch.nn.functional.normalize(new, dim=1)).pow(2).sum(1)
    rank = np.corrcoef(
        np.argsort(np.argsort(sigma.numpy())), np.argsort(np.argsort(error.detach().numpy()))
    )[0, 1]
    assert rank > 0.4
    first = torch.argsort(-sigma)[: int(hard.sum())]
    assert hard[first].float().mean() > 2 * hard.float().mean()


def test_normalised_outputs_and_a_frozen_copied_head():
    old, new, _ = _pairs(1, 256)
    labels = (new[:, 0] > 0).long()
    head = torch.nn.Linear(5, 2)
    before = [p.detach().clone() for p in head.parameters()]
    t = fit_fastfill(old, new, labels, new_head=head, hidden=32, epochs=5)
    assert not t.training
    out = t(old)
    np.testing.assert_allclose(out.norm(dim=1).detach().numpy(), 1.0, atol=1e-5)
    for p, q in zip(head.parameters(), before, strict=True):
        assert torch.equal(p, q) and p.requires_grad  # the caller's head is untouched
    h, sigma = t.both(old[:3])
    assert h.shape == (3, 5) and sigma.shape == (3,)


def test_the_same_seed_gives_the_same_transformation():
    old, new, _ = _pairs(2, 128)
    y = torch.zeros(128, dtype=torch.long)
    a = fit_fastfill(old, new, y, hidden=16, epochs=3, seed=4)
    b = fit_fastfill(old, new, y, hidden=16, epochs=3, seed=4)
    assert torch.equal(a(old), b(old))


def test_bad_input_names_the_argument():
    old, new, _ = _pairs(3, 64)
    y = torch.zeros(64, dtype=torch.long)
    with pytest.raises(InputError, match="`new_embeddings`"):
        fit_fastfill(old, new[:63], y)
    with pytest.raises(InputError, match="`labels`"):
        fit_fastfill(old, new, y[:10])
    with pytest.raises(InputError, match="`old_embeddings`"):
        fit_fastfill(old[:1], new[:1], y[:1])
    with pytest.raises(InputError, match=r"`labels` in \[0, 2\)"):
        fit_fastfill(old, new, y + 5, new_head=torch.nn.Linear(5, 2))
    bad = old.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(InputError, match="`old_embeddings`"):
        fit_fastfill(bad, new, y)
    with pytest.raises(InputError, match="`epochs`"):
        fit_fastfill(old, new, y, epochs=0)
    assert isinstance(FastFillTransformation(2, 2), torch.nn.Module)
