"""K-FAC factors against the exact Gauss-Newton matrix, and the preconditioned step."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from graceful.errors import InputError
from graceful.lqf import kfac_factors, precondition


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _exact_ggn_block(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """(1/N) sum_i J_i^T J_i for the layer's [W | b], flattened row-major, by brute force."""
    params = dict(model.named_parameters())

    def f(w, b):
        return functional_call(model, {**params, f"{layer}.weight": w, f"{layer}.bias": b}, (x,))

    jw, jb = jacrev(f, argnums=(0, 1))(params[f"{layer}.weight"], params[f"{layer}.bias"])
    n, c = jw.shape[:2]
    # (N, C, out, in) and (N, C, out) -> (N, C, out, in + 1) -> (N, C, out * (in + 1))
    j = torch.cat([jw, jb[..., None]], dim=-1).reshape(n, c, -1)
    return torch.einsum("nkp,nkq->pq", j, j) / n


@pytest.mark.parametrize("layer", ["0", "2"])
def test_factors_equal_the_exact_gauss_newton_for_one_sample(layer):
    model = _mlp()
    x = torch.randn(1, 3, dtype=torch.float64)
    a, g = kfac_factors(model, [x])[layer]
    exact = _exact_ggn_block(model, x, layer)
    torch.testing.assert_close(torch.kron(g, a), exact, rtol=1e-10, atol=1e-12)


def test_last_layer_factors_are_exact_for_many_samples():
    # the output layer's G is the identity for every sample, so A (x) G is exact
    model = _mlp()
    x = torch.randn(9, 3, dtype=torch.float64)
    factors = kfac_factors(model, [x[:4], x[4:]])  # batches are averaged over samples
    a, g = factors["2"]
    torch.testing.assert_close(g, torch.eye(2, dtype=torch.float64))
    torch.testing.assert_close(torch.kron(g, a), _exact_ggn_block(model, x, "2"))
    # the hidden layer is an approximation, but its factors are the averages of the definition
    a0, _ = factors["0"]
    aug = torch.cat([x, torch.ones(9, 1, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(a0, aug.T @ aug / 9)


def test_precondition_solves_the_damped_kronecker_system():
    model = _mlp()
    x = torch.randn(6, 3, dtype=torch.float64)
    factors = kfac_factors(model, [x])
    model(x).pow(2).sum().backward()
    grads = {n: torch.cat([model[int(n)].weight.grad, model[int(n)].bias.grad[:, None]], 1)
             for n in ("0", "2")}  # fmt: skip
    damping = 0.01
    precondition(model, factors, damping=damping)
    for name, grad in grads.items():
        a, g = factors[name]
        r = damping**0.5
        big = torch.kron(g + r * torch.eye(len(g)), a + r * torch.eye(len(a)))
        expected = torch.linalg.solve(big, grad.reshape(-1)).reshape(grad.shape)
        layer = model[int(name)]
        torch.testing.assert_close(layer.weight.grad, expected[:, :-1])
        torch.testing.assert_close(layer.bias.grad, expected[:, -1])


def test_bad_arguments_name_them():
    model = _mlp()
    with pytest.raises(InputError, match="layers"):
        kfac_factors(model, [torch.zeros(1, 3, dtype=torch.float64)], layers=["1"])
    with pytest.raises(InputError, match="batches"):
        kfac_factors(model, [])
    with pytest.raises(InputError, match=r"nn\.Linear"):
        kfac_factors(nn.Tanh(), [torch.zeros(1, 3)])
    with pytest.raises(InputError, match="damping"):
        precondition(model, {}, damping=0.0)
    with pytest.raises(InputError, match="gradient"):
        precondition(model, kfac_factors(model, [torch.zeros(2, 3, dtype=torch.float64)]))
