"""K-FAC with the exact step of the quadratic model: curvature, step, damping, convergence."""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from graceful.errors import InputError
from graceful.lqf import (
    ExactConfig,
    LinearizedModel,
    adapt_damping,
    curvature,
    finetune_exact,
    kfac_factors,
    precondition,
    squared_loss,
)
from graceful.lqf.exact import MAX_DAMPING, MIN_DAMPING

SCALE = 3.0


def _net(batch_norm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(3, 5)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(5))
    layers += [nn.Tanh(), nn.Linear(5, 2)]
    net = nn.Sequential(*layers).double()
    if batch_norm:  # non-trivial running statistics, then eval mode (as linearized)
        net.train()
        net(torch.randn(32, 3, dtype=torch.float64) * 2 + 1)
    return net.eval()


def _data(n: int = 40):
    torch.manual_seed(1)
    x = torch.randn(n, 3, dtype=torch.float64)
    return x, (x[:, 0] - x[:, 2] > 0).long()


def _objective(lin: LinearizedModel, x, y, weight_decay: float = 0.0) -> torch.Tensor:
    pull = sum(d.pow(2).sum() for d in lin.delta().values())
    return squared_loss(lin(x), y, scale=SCALE) + 0.5 * weight_decay * pull


def _value(lin: LinearizedModel, x, y, weight_decay: float = 0.0) -> float:
    return float(_objective(lin, x, y, weight_decay).detach())


def _set(lin: LinearizedModel, values) -> None:
    with torch.no_grad():
        for w, v in zip(lin.weights, values, strict=True):
            w.copy_(v)


def _ridge(lin: LinearizedModel, x, y, weight_decay: float, names=None) -> list[torch.Tensor]:
    """The closed-form minimiser w0 + (J^T J / N + mu I)^-1 J^T (t - f0) / N, over ``names``."""
    net = lin.network
    w0 = lin.w0()
    names = list(lin.names) if names is None else names
    fixed = {n: p for n, p in net.named_parameters()} | dict(net.named_buffers())

    def f(*ws):
        return functional_call(net, {**fixed, **dict(zip(names, ws, strict=True))}, (x,))

    jac = jacrev(f, argnums=tuple(range(len(names))))(*(w0[n] for n in names))
    n = len(x)
    j = torch.cat([jn.reshape(n * 2, -1) for jn in jac], dim=1)  # (N C, P)
    residual = nn.functional.one_hot(y, 2).double() * SCALE - f(*(w0[n] for n in names))
    system = j.T @ j / n + weight_decay * torch.eye(j.shape[1], dtype=torch.float64)
    delta = torch.linalg.solve(system, j.T @ residual.reshape(-1) / n)
    out, start = [], 0
    for name in lin.names:
        if name in names:
            size = w0[name].numel()
            out.append(w0[name] + delta[start : start + size].reshape(w0[name].shape))
            start += size
        else:
            out.append(w0[name].clone())
    return out


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_curvature_equals_the_autograd_hessian_vector_products(weight_decay):
    x, y = _data()
    lin = LinearizedModel(_net(batch_norm=True))
    torch.manual_seed(2)
    _set(lin, [w + 0.1 * torch.randn_like(w) for w in lin.weights])  # away from w0
    directions = [[torch.randn_like(w) for w in lin.weights] for _ in range(3)]
    got = curvature(lin, x, directions, weight_decay=weight_decay)
    grads = torch.autograd.grad(_objective(lin, x, y, weight_decay), list(lin.weights),
                                create_graph=True)  # fmt: skip
    reference = torch.empty(3, 3, dtype=torch.float64)
    for k, d in enumerate(directions):
        inner = sum((g * v).sum() for g, v in zip(grads, d, strict=True))
        hvp = torch.autograd.grad(inner, list(lin.weights), retain_graph=True)
        for m, e in enumerate(directions):
            reference[m, k] = sum((h * v).sum() for h, v in zip(hvp, e, strict=True))
    torch.testing.assert_close(got, reference, rtol=1e-6, atol=1e-10)
    # and the objective is exactly quadratic along a direction: a finite difference agrees
    d, t = directions[0], 0.7
    base = _value(lin, x, y, weight_decay)
    g_d = float(sum((g * v).sum() for g, v in zip(grads, d, strict=True)).detach())
    _set(lin, [w + t * v for w, v in zip(lin.weights, d, strict=True)])
    moved = _value(lin, x, y, weight_decay)
    assert moved == pytest.approx(base + t * g_d + 0.5 * t * t * float(got[0, 0]), rel=1e-10)


def test_full_batch_step_is_the_exact_minimum_along_the_kfac_direction():
    x, y = _data()
    lin = LinearizedModel(_net())
    before = [w.detach().clone() for w in lin.weights]
    # the K-FAC direction, computed apart with the public API and the same damping
    objective = _objective(lin, x, y)
    lin.zero_grad()
    objective.backward()
    grads = [w.grad.clone() for w in lin.weights]
    factors = kfac_factors(lin, [x])
    precondition(lin, factors, damping=MIN_DAMPING)
    direction = [-w.grad.clone() for w in lin.weights]
    lin.zero_grad()
    config = ExactConfig(max_epochs=1, batch_size=len(x), momentum=False, damping=MIN_DAMPING,
                         target_scale=SCALE, factor_samples=len(x))  # fmt: skip
    history = finetune_exact(lin, x, y, config)
    alpha = history.step_sizes[0]
    for w, w0, d in zip(lin.weights, before, direction, strict=True):
        torch.testing.assert_close(w.detach(), w0 + alpha * d, rtol=1e-8, atol=1e-10)
    g_d = sum(float((g * d).sum()) for g, d in zip(grads, direction, strict=True))
    d_h_d = float(curvature(lin, x, [direction])[0, 0])
    assert alpha == pytest.approx(-g_d / d_h_d, rel=1e-6)
    assert alpha > 0

    def loss_at(step: float) -> float:
        _set(lin, [w0 + step * d for w0, d in zip(before, direction, strict=True)])
        return _value(lin, x, y)

    best = loss_at(alpha)
    for eps in (1e-3, 1e-2):
        assert best < loss_at(alpha + eps) and best < loss_at(alpha - eps)


def test_damping_rule_moves_the_right_way():
    omega = (19 / 20) ** 5
    assert adapt_damping(1.0, 0.9, omega=omega) == pytest.approx(omega)
    assert adapt_damping(1.0, 5.0, omega=omega) == pytest.approx(omega)
    assert adapt_damping(1.0, 0.1, omega=omega) == pytest.approx(1 / omega)
    assert adapt_damping(1.0, -2.0, omega=omega) == pytest.approx(1 / omega)
    assert adapt_damping(1.0, math.nan, omega=omega) == pytest.approx(1 / omega)
    assert adapt_damping(1.0, 0.5, omega=omega) == 1.0
    assert adapt_damping(1.0, 0.75, omega=omega) == 1.0
    assert adapt_damping(1.0, 0.25, omega=omega) == 1.0
    assert adapt_damping(MIN_DAMPING, 1.0, omega=omega) == MIN_DAMPING
    assert adapt_damping(MAX_DAMPING, 0.0, omega=omega) == MAX_DAMPING


def test_full_batch_ratio_is_at_least_one_so_the_damping_only_falls():
    # with full batches the quadratic model is exact: rho = 1 + (damping term) >= 1
    x, y = _data()
    lin = LinearizedModel(_net())
    config = ExactConfig(max_epochs=30, batch_size=len(x), damping=10.0, period=2,
                         target_scale=SCALE, tol=1e-14)  # fmt: skip
    history = finetune_exact(lin, x, y, config)
    assert len(history.rhos) >= 5 and min(history.rhos) >= 1.0 - 1e-9
    assert all(b <= a for a, b in zip(history.dampings, history.dampings[1:], strict=False))
    assert history.dampings[-1] < 10.0


def test_converges_to_the_ridge_solution_without_a_learning_rate():
    x, y = _data()
    lin = LinearizedModel(_net())
    config = ExactConfig(max_epochs=500, batch_size=len(x), weight_decay=0.1, target_scale=SCALE,
                         tol=1e-12)  # fmt: skip
    history = finetune_exact(lin, x, y, config)
    assert history.converged and history.epochs < config.max_epochs
    assert history.reason.startswith("converged")
    for got, best in zip(lin.weights, _ridge(lin, x, y, 0.1), strict=True):
        torch.testing.assert_close(got.detach(), best, rtol=1e-5, atol=1e-6)
    assert len(history.step_sizes) == history.epochs  # one step per full-batch epoch
    assert len(history.momenta) == len(history.dampings) == history.epochs


def test_minibatches_grow_to_full_batches_and_stop_at_the_ridge_solution():
    x, y = _data(96)
    lin = LinearizedModel(_net())
    config = ExactConfig(max_epochs=300, batch_size=16, weight_decay=0.1, target_scale=SCALE,
                         tol=1e-13)  # fmt: skip
    history = finetune_exact(lin, x, y, config)
    assert history.converged and history.epochs < config.max_epochs
    sizes = history.batch_sizes
    assert sizes[0] == 16 and sizes[-1] == 96 and sorted(set(sizes)) == [16, 32, 64, 96]
    assert sizes == sorted(sizes)  # it only grows, doubling up to the whole data
    steps = sum(math.ceil(96 / b) for b in sizes)
    assert len(history.step_sizes) == len(history.dampings) == steps
    assert len(history.rhos) == steps // config.period
    for got, best in zip(lin.weights, _ridge(lin, x, y, 0.1), strict=True):
        torch.testing.assert_close(got.detach(), best, rtol=1e-5, atol=1e-6)


def test_batch_norm_parameters_frozen_or_moved_along_their_own_step():
    x, y = _data()
    bn = ["1.weight", "1.bias"]
    for others in ("frozen", "own_step"):
        lin = LinearizedModel(_net(batch_norm=True))
        w0 = lin.w0()
        config = ExactConfig(max_epochs=500, batch_size=len(x), weight_decay=0.1,
                             target_scale=SCALE, tol=1e-12, others=others)  # fmt: skip
        history = finetune_exact(lin, x, y, config)
        assert history.converged
        names = [n for n in lin.names if n not in bn] if others == "frozen" else None
        best = _ridge(lin, x, y, 0.1, names)
        for name, got, want in zip(lin.names, lin.weights, best, strict=True):
            torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)
            if name in bn:
                moved = not torch.equal(got.detach(), w0[name])
                assert moved == (others == "own_step"), (others, name)
        assert (max(map(abs, history.other_step_sizes)) > 0) == (others == "own_step")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ExactConfig(max_epochs=0), "max_epochs"),
        (lambda: ExactConfig(batch_size=0), "batch_size"),
        (lambda: ExactConfig(damping=0.0), "damping"),
        (lambda: ExactConfig(period=0), "period"),
        (lambda: ExactConfig(omega=1.0), "omega"),
        (lambda: ExactConfig(momentum="yes"), "momentum"),
        (lambda: ExactConfig(others="sgd"), "others"),
        (lambda: ExactConfig(tol=0.0), "tol"),
        (lambda: ExactConfig(patience=0), "patience"),
        (lambda: ExactConfig(weight_decay=-1.0), "weight_decay"),
        (lambda: ExactConfig(target_scale=0.0), "target_scale"),
        (lambda: ExactConfig(factor_samples=0), "factor_samples"),
        (lambda: ExactConfig(seed=-1), "seed"),
        (lambda: finetune_exact(_net(), *_data()), "model"),
        (lambda: finetune_exact(LinearizedModel(_net()), *_data(), {"tol": 1}), "config"),
        (lambda: finetune_exact(LinearizedModel(_net()), _data()[0], _data()[1][:-1]), "x"),
        (lambda: finetune_exact(LinearizedModel(_net()), *_data(), on_epoch=1), "on_epoch"),
        (lambda: adapt_damping(0.0, 1.0, omega=0.5), "damping"),
        (lambda: adapt_damping(1.0, "good", omega=0.5), "rho"),
        (lambda: adapt_damping(1.0, 1.0, omega=1.5), "omega"),
        (lambda: curvature(_net(), _data()[0], []), "model"),
        (lambda: curvature(LinearizedModel(_net()), _data()[0], []), "tangents"),
        (
            lambda: curvature(LinearizedModel(_net()), _data()[0], [[torch.zeros(1)]]),
            "tangents",
        ),
        (
            lambda: curvature(LinearizedModel(_net()), _data()[0], [], weight_decay=-1.0),
            "weight_decay",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors_naming_them(call, match):
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
