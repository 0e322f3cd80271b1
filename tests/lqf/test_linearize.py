"""The linearized network equals the first-order Taylor expansion of the network."""

import copy

import pytest
import torch
from torch import nn

from graceful.errors import InputError
from graceful.lqf import LinearizedModel, to_leaky_relu
from graceful.models import SmallCNN


def _net(smooth: bool = False) -> nn.Module:
    """A small MLP with batch norm; leaky-ReLU, or tanh where smoothness is needed."""
    torch.manual_seed(0)
    act = (lambda: nn.Tanh()) if smooth else (lambda: nn.ReLU())
    net = nn.Sequential(
        nn.Linear(3, 6), nn.BatchNorm1d(6), act(), nn.Linear(6, 6), act(), nn.Linear(6, 2)
    ).double()
    net.train()
    net(torch.randn(32, 3, dtype=torch.float64))  # non-trivial running statistics
    return to_leaky_relu(net, 0.1)


def _step(lin: LinearizedModel, direction: list[torch.Tensor], eps: float) -> None:
    with torch.no_grad():
        for w, w0, d in zip(lin.weights, lin.w0().values(), direction, strict=True):
            w.copy_(w0 + eps * d)


def _network_at(lin: LinearizedModel, direction, eps: float) -> nn.Module:
    net = copy.deepcopy(lin.network)
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, d in zip(lin.names, direction, strict=True):
            params[name].add_(eps * d)
    return net.eval()


def test_equals_the_network_at_w0_and_is_affine_in_w():
    lin = LinearizedModel(_net())
    x = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(lin(x), lin.network(x), rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(1)
    direction = [torch.randn(w.shape, generator=g, dtype=w.dtype) for w in lin.weights]
    f0 = lin(x).detach()
    _step(lin, direction, 1.0)
    f1 = lin(x).detach()
    _step(lin, direction, 2.5)
    torch.testing.assert_close(lin(x).detach(), f0 + 2.5 * (f1 - f0), rtol=1e-10, atol=1e-10)


def test_matches_finite_differences_to_second_order():
    # a smooth network: with leaky-ReLU the remainder is O(eps) where units cross the kink
    lin = LinearizedModel(_net(smooth=True))
    x = torch.randn(7, 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    direction = [torch.randn(w.shape, generator=g, dtype=w.dtype) for w in lin.weights]
    errors = []
    for eps in (1e-2, 5e-3, 2.5e-3):
        _step(lin, direction, eps)
        exact = _network_at(lin, direction, eps)(x)
        errors.append(float((exact - lin(x)).abs().max()))
    # the remainder of a first-order expansion is O(eps^2): halving eps quarters it
    assert 3.0 < errors[0] / errors[1] < 5.0 and 3.0 < errors[1] / errors[2] < 5.0
    # and the directional derivative equals the central finite difference
    _step(lin, direction, 1.0)
    h = 1e-5
    fd = (_network_at(lin, direction, h)(x) - _network_at(lin, direction, -h)(x)) / (2 * h)
    torch.testing.assert_close(lin(x) - lin.network(x), fd, rtol=1e-6, atol=1e-8)


def test_gradient_is_the_jacobian_at_w0_wherever_w_is():
    lin = LinearizedModel(_net())
    x = torch.randn(5, 3, dtype=torch.float64)
    lin.network.zero_grad()
    for p in lin.network.parameters():
        p.requires_grad_(True)
    lin.network(x).sum().backward()
    expected = dict(lin.network.named_parameters())
    g = torch.Generator().manual_seed(3)
    _step(lin, [torch.randn(w.shape, generator=g, dtype=w.dtype) for w in lin.weights], 0.3)
    lin(x).sum().backward()
    for name, w in zip(lin.names, lin.weights, strict=True):
        torch.testing.assert_close(w.grad, expected[name].grad, rtol=1e-10, atol=1e-12)


def test_only_the_selected_blocks_move_and_batch_norm_stays_in_eval_mode():
    torch.manual_seed(0)
    cnn = SmallCNN(width=2, num_classes=3)
    lin = LinearizedModel(cnn, trainable=["features.2.", "head."])
    assert all(n.startswith(("features.2.", "head.")) for n in lin.names)
    assert sum(p.numel() for p in lin.parameters()) < sum(p.numel() for p in cnn.parameters())
    x = torch.randn(4, 1, 28, 28)
    lin.train()  # BN must still use running statistics: output independent of the batch
    torch.testing.assert_close(lin(x[:2]), lin(x)[:2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lin(x), cnn.eval()(x), rtol=1e-5, atol=1e-6)
    assert cnn.features[0][0][0].weight.requires_grad  # the original is untouched


def test_leaky_relu_conversion_and_bad_arguments():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.ReLU6()))
    out = to_leaky_relu(net, 0.2)
    assert [type(m).__name__ for m in out[1]] == ["LeakyReLU", "LeakyReLU"]
    assert isinstance(net[1][0], nn.ReLU)  # a copy
    assert isinstance(to_leaky_relu(nn.ReLU()), nn.LeakyReLU)
    for slope in (0.0, 1.0, True):
        with pytest.raises(InputError, match="negative_slope"):
            to_leaky_relu(net, slope)
    with pytest.raises(InputError, match="trainable"):
        LinearizedModel(net, trainable=["nothing."])
    with pytest.raises(InputError, match="trainable"):
        LinearizedModel(net, trainable="0.")
    with pytest.raises(InputError, match="model"):
        LinearizedModel("net")
