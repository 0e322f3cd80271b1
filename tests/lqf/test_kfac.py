"""K-FAC factors against the exact Gauss-Newton matrix, and the preconditioned step."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from graceful.errors import InputError
from graceful.lqf import KFAC, LinearizedModel, kfac_factors, precondition


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
    a, g = (f[0] for f in kfac_factors(model, [x])[layer])
    exact = _exact_ggn_block(model, x, layer)
    torch.testing.assert_close(torch.kron(g, a), exact, rtol=1e-10, atol=1e-12)


def test_last_layer_factors_are_exact_for_many_samples():
    # the output layer's G is the identity for every sample, so A (x) G is exact
    model = _mlp()
    x = torch.randn(9, 3, dtype=torch.float64)
    factors = kfac_factors(model, [x[:4], x[4:]])  # batches are averaged over samples
    a, g = (f[0] for f in factors["2"])
    torch.testing.assert_close(g, torch.eye(2, dtype=torch.float64))
    torch.testing.assert_close(torch.kron(g, a), _exact_ggn_block(model, x, "2"))
    # the hidden layer is an approximation, but its factors are the averages of the definition
    a0, _ = factors["0"]
    aug = torch.cat([x, torch.ones(9, 1, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(a0[0], aug.T @ aug / 9)


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
        a, g = (f[0] for f in factors[name])
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
    with pytest.raises(InputError, match=r"nn\.Linear or nn\.Conv2d"):
        kfac_factors(nn.Tanh(), [torch.zeros(1, 3)])
    with pytest.raises(InputError, match="damping"):
        precondition(model, {}, damping=0.0)
    with pytest.raises(InputError, match="gradient"):
        precondition(model, kfac_factors(model, [torch.zeros(2, 3, dtype=torch.float64)]))


# --- convolutions, cross-entropy, the linearized model, the optimizer ---------------------


def _jacobian(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """(N, C, P): the output Jacobian wrt the layer's weight (and bias, if any), flattened
    per output channel as [W_o | b_o] rows, i.e. (out, in_g * kh * kw + 1) row-major."""
    params = dict(model.named_parameters())
    names = [f"{layer}.weight"] + ([f"{layer}.bias"] if f"{layer}.bias" in params else [])

    def f(*ws):
        return functional_call(model, {**params, **dict(zip(names, ws, strict=True))}, (x,))

    jacs = jacrev(f, argnums=tuple(range(len(names))))(*(params[n] for n in names))
    out = params[names[0]].shape[0]
    n, c = jacs[0].shape[:2]
    parts = [jacs[0].reshape(n, c, out, -1)]
    if len(names) > 1:
        parts.append(jacs[1][..., None])
    return torch.cat(parts, dim=-1).reshape(n, c, -1)


def _conv_net(groups: int = 1, kernel: int = 3, padding=0, spatial: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(4, 4, kernel, padding=padding, groups=groups),
        nn.Tanh(),
        nn.Flatten(),
        nn.LazyLinear(3),
    ).double()


def _materialize(model: nn.Module, x: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        model(x)
    return model


def test_conv_with_one_position_is_exact_for_one_sample():
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    model = _materialize(_conv_net(kernel=3), x)  # 3x3 kernel on 3x3 input: T = 1
    a, g = (f[0] for f in kfac_factors(model, [x])["0"])
    j = _jacobian(model, x, "0")
    exact = torch.einsum("nkp,nkq->pq", j, j)
    torch.testing.assert_close(torch.kron(g, a), exact, rtol=1e-10, atol=1e-12)


def test_grouped_conv_factors_are_the_exact_diagonal_blocks():
    # depthwise (groups = channels), T = 1, one sample: each group's block is exact
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    model = _materialize(_conv_net(groups=4, kernel=3), x)
    a, g = kfac_factors(model, [x])["0"]
    assert a.shape == (4, 10, 10) and g.shape == (4, 1, 1)
    j = _jacobian(model, x, "0").reshape(1, 3, 4, 10)  # (N, C, group, 9 + 1)
    for group in range(4):
        block = torch.einsum("nkp,nkq->pq", j[:, :, group], j[:, :, group])
        torch.testing.assert_close(torch.kron(g[group], a[group]), block, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", [0, 1, "same"])
def test_conv_factors_follow_the_kfc_definition_over_positions(padding):
    # T > 1: A sums patch outer products over positions, G averages them (loop reference)
    torch.manual_seed(1)
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    model = _materialize(_conv_net(kernel=3, padding=padding, spatial=4), x)
    a, g = (f[0] for f in kfac_factors(model, [x])["0"])
    pad = 0 if padding == 0 else 1
    xp = nn.functional.pad(x, (pad, pad, pad, pad))
    positions = [(i, j) for i in range(xp.shape[2] - 2) for j in range(xp.shape[3] - 2)]
    a_ref = torch.zeros(37, 37, dtype=torch.float64)
    for n in range(2):
        for i, j in positions:
            patch = torch.cat([xp[n, :, i : i + 3, j : j + 3].reshape(-1), torch.ones(1).double()])
            a_ref += torch.outer(patch, patch)
    torch.testing.assert_close(a, a_ref / 2)
    # G: the conv output's gradient per output k and position, by autograd on the output
    out = model[0](x).detach().requires_grad_(True)
    logits = model[3](model[2](model[1](out)))
    g_ref = torch.zeros(4, 4, dtype=torch.float64)
    for k in range(3):
        (grad,) = torch.autograd.grad(logits[:, k].sum(), out, retain_graph=True)
        per_pos = grad.permute(0, 2, 3, 1).reshape(-1, 4)
        g_ref += per_pos.T @ per_pos
    torch.testing.assert_close(g, g_ref / (2 * len(positions)))


def test_static_same_padding_subclass_is_unfolded_after_its_padding():
    class StaticSame(nn.Conv2d):  # the shape of EfficientNet's Conv2dStaticSamePadding
        def __init__(self) -> None:
            super().__init__(4, 4, 3, bias=False)
            self.static_padding = nn.ZeroPad2d((1, 1, 1, 1))

        def forward(self, x):
            return super().forward(self.static_padding(x))

    torch.manual_seed(0)
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    static = nn.Sequential(StaticSame(), nn.Flatten(), nn.Linear(64, 3)).double()
    plain = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(64, 3))
    plain = plain.double()
    plain.load_state_dict(static.state_dict())
    for (a1, g1), (a2, g2) in zip(
        kfac_factors(static, [x]).values(), kfac_factors(plain, [x]).values(), strict=True
    ):
        torch.testing.assert_close(a1, a2)
        torch.testing.assert_close(g1, g2)


def test_cross_entropy_factors_use_the_softmax_hessian():
    model = _mlp()
    x = torch.randn(1, 3, dtype=torch.float64)
    a, g = (f[0] for f in kfac_factors(model, [x], loss="cross_entropy")["0"])
    p = torch.softmax(model(x), dim=1)[0]
    h = torch.diag(p) - torch.outer(p, p)
    j = _jacobian(model, x, "0")[0]  # (C, P)
    torch.testing.assert_close(torch.kron(g, a), j.T @ h @ j, rtol=1e-10, atol=1e-12)


def test_linearized_model_factors_are_the_networks_at_w0_whatever_its_weights():
    model = _mlp()
    x = torch.randn(5, 3, dtype=torch.float64)
    lin = LinearizedModel(model, trainable=["2."])
    before = kfac_factors(lin, [x])
    assert list(before) == ["2"]  # only the trained layer
    with torch.no_grad():
        for w in lin.weights:
            w.add_(1.0)
    after = kfac_factors(lin, [x])
    reference = kfac_factors(model, [x], layers=["2"])
    for got in (before, after):
        torch.testing.assert_close(got["2"][0], reference["2"][0])
        torch.testing.assert_close(got["2"][1], reference["2"][1])
    assert all(not p.requires_grad for p in lin.network.parameters())  # restored


def test_kfac_preconditions_a_linearized_model_and_keeps_its_gradient_until_the_step():
    model = _mlp()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    lin = LinearizedModel(model)
    opt = KFAC(lin, lr=0.5, damping=1e-2, momentum=0.0)
    (0.5 * (lin(x) - y).pow(2).sum(1).mean()).backward()
    grads = [w.grad.clone() for w in lin.weights]
    factors = kfac_factors(lin, [x])
    w_before = [w.detach().clone() for w in lin.weights]
    opt.step(x)
    r = 0.1
    for i, name in enumerate(lin.names):
        layer = name.rsplit(".", 1)[0]
        a, g = (f[0] for f in factors[layer])
        idx_w, idx_b = lin.names.index(f"{layer}.weight"), lin.names.index(f"{layer}.bias")
        full = torch.cat([grads[idx_w], grads[idx_b][:, None]], 1)
        step = torch.linalg.solve(g + r * torch.eye(len(g)), full)
        step = torch.linalg.solve(a + r * torch.eye(len(a)), step.T).T
        expected = step[:, :-1] if name.endswith("weight") else step[:, -1]
        torch.testing.assert_close(w_before[i] - lin.weights[i].detach(), 0.5 * expected)


def test_refreshes_average_the_factors():
    model = _mlp()
    x = torch.randn(12, 3, dtype=torch.float64)
    mean_opt = KFAC(model, lr=0.1, refresh=1)
    for batch in x.split(4):
        mean_opt.update_factors(batch)
    whole = kfac_factors(model, [x])
    for name in whole:
        torch.testing.assert_close(mean_opt.factors[name][0], whole[name][0])
        torch.testing.assert_close(mean_opt.factors[name][1], whole[name][1])
    ema = KFAC(model, lr=0.1, decay=0.5)
    first, second = kfac_factors(model, [x[:4]]), kfac_factors(model, [x[4:8]])
    ema.update_factors(x[:4])
    ema.update_factors(x[4:8])
    torch.testing.assert_close(ema.factors["0"][0], 0.5 * first["0"][0] + 0.5 * second["0"][0])


def test_kfac_refresh_schedule():
    model = _mlp()
    x = torch.randn(4, 3, dtype=torch.float64)
    opt = KFAC(model, lr=0.01, refresh=2)
    calls = []
    original = opt.update_factors
    opt.update_factors = lambda inputs: (calls.append(opt.steps), original(inputs))  # type: ignore[method-assign]
    for _ in range(5):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step(x)
    assert calls == [0, 2, 4]
    once = KFAC(model, lr=0.01)
    once.zero_grad()
    model(x).pow(2).sum().backward()
    once.step(x)
    assert once._refreshes == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0}, "lr"),
        ({"lr": 0.1, "damping": -1}, "damping"),
        ({"lr": 0.1, "momentum": 1.0}, "momentum"),
        ({"lr": 0.1, "refresh": 0}, "refresh"),
        ({"lr": 0.1, "decay": 1.0}, "decay"),
        ({"lr": 0.1, "loss": "hinge"}, "loss"),
        ({"lr": 0.1, "layers": ["1"]}, "layers"),
    ],
)
def test_kfac_bad_arguments_name_them(kwargs, match):
    with pytest.raises(InputError, match=match):
        KFAC(_mlp(), **kwargs)
