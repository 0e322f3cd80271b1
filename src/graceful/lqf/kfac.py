r"""Kronecker-factored curvature (K-FAC) of linear and convolutional layers, and its optimizer.

For a linear layer :math:`s = W a` (bias folded in by appending 1 to :math:`a`), the
Jacobian of the network output :math:`f \in \mathbb{R}^C` with respect to :math:`W` is
:math:`\partial f_k / \partial W = g_k a^\top` with :math:`g_k = \partial f_k / \partial s`.
The Gauss-Newton matrix of a loss with output Hessian :math:`H_i`,
:math:`\frac1N \sum_i J_i^\top H_i J_i`, has the layer block
:math:`\frac1N \sum_i (a_i a_i^\top) \otimes (\sum_{kl} H_{i,kl}\, g_{ik} g_{il}^\top)`, which
K-FAC (Martens and Grosse, 2015) approximates by :math:`A \otimes G` with
:math:`A = \frac1N \sum_i a_i a_i^\top` and
:math:`G = \frac1N \sum_i \sum_{kl} H_{i,kl}\, g_{ik} g_{il}^\top`. For the squared loss
:math:`H = I`; for cross-entropy :math:`H = \mathrm{diag}(p) - p p^\top`. The sums over
outputs are exact (C backward passes), not a sampled Fisher.

A convolution is a linear layer applied at every output position :math:`t` to the
unfolded input patch :math:`a_t`; KFC (Grosse and Martens, 2016) uses
:math:`A = \frac1N \sum_i \sum_t a_{it} a_{it}^\top` and
:math:`G = \frac1{NT} \sum_i \sum_t \sum_{kl} H_{i,kl}\, g_{ikt} g_{ilt}^\top` over the
:math:`T` positions. A grouped (e.g. depthwise) convolution gets one pair of factors per
group, so its curvature is block-diagonal over groups. With one position and one group
this is the linear case.

The preconditioned gradient of a layer is
:math:`(G + \sqrt{\lambda} I)^{-1} \nabla_W (A + \sqrt{\lambda} I)^{-1}`. For a
linearized network (:class:`~graceful.lqf.LinearizedModel`) the Jacobian, hence the
Gauss-Newton matrix of the squared loss, does not depend on the weights: factors computed
once hold for the whole training, and refreshing them only averages over more data.

Why not a library: the K-FAC packages for PyTorch (kfac-pytorch, BackPACK, ASDL) read the
factors from module hooks during the training forward pass and estimate a sampled or
empirical Fisher. A :class:`~graceful.lqf.LinearizedModel` runs its network through
``torch.func.jvp``, where such hooks see dual tensors, and LQF wants the exact
Gauss-Newton of the squared loss; this module computes it on the network at :math:`w_0`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from graceful._validation import check_choice, check_int, check_optional, check_real
from graceful.errors import InputError

from .linearize import LinearizedModel

__all__ = ["KFAC", "KFACFactors", "kfac_factors", "precondition"]

KFACFactors = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""Layer name -> ``(A, G)``, float64, ``A`` of shape ``(groups, d, d)`` and ``G``
``(groups, o, o)``: ``d`` is the layer's inputs per group (times the kernel size, plus one
with a trainable bias), ``o`` its outputs per group. ``groups`` is 1 except for grouped
convolutions."""

CurvatureLoss = Literal["squared", "cross_entropy"]
CURVATURE_LOSSES: tuple[CurvatureLoss, ...] = ("squared", "cross_entropy")
"""The losses whose output Hessian the factors weight by (see :func:`kfac_factors`)."""


@dataclass(frozen=True)
class _Layer:
    """A factored layer: its module in the network and its trainable weight and bias."""

    module: nn.Linear | nn.Conv2d
    weight: torch.Tensor
    bias: torch.Tensor | None

    @property
    def groups(self) -> int:
        return self.module.groups if isinstance(self.module, nn.Conv2d) else 1


def _layers(model: nn.Module, names: Iterable[str] | None) -> dict[str, _Layer]:
    """The factorable layers of ``model`` (or of a LinearizedModel's network) by name.

    A layer is factorable when it is an ``nn.Linear`` or ``nn.Conv2d`` whose weight is
    trainable (``requires_grad``; for a LinearizedModel, among its trainable weights). Its
    bias enters the factors only when it is trainable too.
    """
    if isinstance(model, LinearizedModel):
        network = model.network
        trainable = dict(zip(model.names, model.weights, strict=True))
    else:
        network = model
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    modules = dict(network.named_modules())
    found: dict[str, _Layer] = {}
    for name, module in modules.items():
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        prefix = f"{name}." if name else ""
        weight = trainable.get(f"{prefix}weight")
        if weight is None:
            continue
        found[name] = _Layer(module, weight, trainable.get(f"{prefix}bias"))
    if names is not None:
        wanted = list(names)
        bad = [n for n in wanted if n not in found]
        if bad:
            raise InputError(
                "Expected argument `layers` to name nn.Linear or nn.Conv2d modules with a"
                f" trainable weight, of {list(found)}, but got {bad}"
            )
        found = {n: found[n] for n in wanted}
    if not found:
        raise InputError(
            "Expected argument `model` to have at least one nn.Linear or nn.Conv2d layer"
            " with a trainable weight"
        )
    return found


def _patches(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The unfolded input patches of a convolution, ``(N, in * kh * kw, T)``."""
    padding = module.padding
    # "same"-padding subclasses (e.g. EfficientNet's Conv2dStaticSamePadding) pad in forward
    static = getattr(module, "static_padding", None)
    if isinstance(static, nn.Module):
        x = static(x)
    if module.padding_mode != "zeros":
        raise InputError(f"K-FAC supports zero padding only, but a layer has {module.padding_mode}")
    if isinstance(padding, str):
        if padding == "same":
            pads: list[int] = []
            for k, d in zip(reversed(module.kernel_size), reversed(module.dilation), strict=True):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        padding = (0, 0)
    return F.unfold(x, module.kernel_size, module.dilation, padding, module.stride)


def _inputs(layer: _Layer, x: torch.Tensor) -> torch.Tensor:
    """The layer inputs per group, bias column appended: ``(groups, N * T, d)``."""
    module = layer.module
    if isinstance(module, nn.Conv2d):
        patches = _patches(module, x)  # (N, in * kh * kw, T)
        a = patches.transpose(1, 2).reshape(-1, patches.shape[1])  # (N * T, in * kh * kw)
    else:
        a = x.reshape(-1, x.shape[-1])
    groups = layer.groups
    a = a.double().reshape(a.shape[0], groups, -1).transpose(0, 1)
    if layer.bias is not None:
        a = torch.cat([a, a.new_ones(*a.shape[:2], 1)], dim=2)
    return a


def _output_grads(layer: _Layer, grad: torch.Tensor) -> torch.Tensor:
    """A gradient wrt the layer output as ``(groups, N, T, o)``."""
    groups = layer.groups
    if isinstance(layer.module, nn.Conv2d):
        n, out = grad.shape[:2]
        g = grad.reshape(n, out, -1).transpose(1, 2)  # (N, T, out)
    else:
        g = grad.reshape(grad.shape[0], -1, grad.shape[-1])  # (N, T, out); T = 1 for 2-D
    n, t, out = g.shape
    return g.double().reshape(n, t, groups, out // groups).permute(2, 0, 1, 3)


def kfac_factors(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    *,
    layers: Iterable[str] | None = None,
    loss: CurvatureLoss = "squared",
) -> KFACFactors:
    """The K-FAC factors of the Gauss-Newton matrix of ``model``'s linear and conv layers.

    ``G`` sums over the C outputs exactly (C backward passes per batch), weighted by the
    loss's output Hessian: the identity for ``"squared"``, ``diag(p) - p p^T`` with
    ``p = softmax(model(x))`` for ``"cross_entropy"``. The network runs in eval mode. For
    a :class:`~graceful.lqf.LinearizedModel` the Jacobians are those of its network at
    :math:`w_0` (the linearized model's own, whatever its weights), and the layers are
    those whose weight it trains.

    Args:
        model: a network, or a :class:`~graceful.lqf.LinearizedModel`.
        batches: input batches (the inputs are all that is needed).
        layers: names of the layers (default: every linear and conv layer with a
            trainable weight).
        loss: ``"squared"`` or ``"cross_entropy"``.

    Returns:
        ``{name: (A, G)}``, float64 averages over all samples (see :data:`KFACFactors`).

    Example:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> A, G = kfac_factors(nn.Linear(2, 3), [torch.ones(4, 2)])[""]
        >>> A
        tensor([[[1., 1., 1.],
                 [1., 1., 1.],
                 [1., 1., 1.]]], dtype=torch.float64)
        >>> torch.equal(G[0], torch.eye(3, dtype=torch.float64))  # one layer: G = I
        True
    """
    check_choice("loss", loss, CURVATURE_LOSSES)
    chosen = _layers(model, layers)
    network = model.network if isinstance(model, LinearizedModel) else model
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}
    recording = False

    def hook(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def save(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if not recording:
                return
            inputs[name] = args[0].detach()
            out.retain_grad()
            outputs[name] = out

        return save

    modules = {name: layer.module for name, layer in chosen.items()}
    handles = [module.register_forward_hook(hook(name)) for name, module in modules.items()]
    # the network's own weights must require grad for the outputs to carry one
    # (a plain network's own gradient, e.g. from the training step, is kept)
    saved = [
        (p, p.requires_grad, p.grad) for m in modules.values() for p in m.parameters(recurse=False)
    ]
    sums: dict[str, list[torch.Tensor]] = {}
    count = 0
    was_training = network.training
    network.eval()
    try:
        for p, _, _ in saved:
            p.requires_grad_(True)
            p.grad = None
        for x in batches:
            recording = True
            out = network(x)
            recording = False
            if out.ndim != 2:
                raise InputError(f"Expected the model to output (N, C), but got {tuple(out.shape)}")
            n, c = out.shape
            hessian = None
            if loss == "cross_entropy":
                with torch.no_grad():  # the current predictions (a LinearizedModel's own)
                    current = out if model is network else model(x)
                    probs = torch.softmax(current.detach().double(), dim=1)
                hessian = torch.diag_embed(probs) - probs[:, :, None] * probs[:, None, :]
            per_output: dict[str, list[torch.Tensor]] = {name: [] for name in chosen}
            g_sums = {name: torch.zeros(0) for name in chosen}
            for k in range(c):
                for name in chosen:
                    outputs[name].grad = None
                out[:, k].sum().backward(retain_graph=k < c - 1)
                for name, layer in chosen.items():
                    grad = outputs[name].grad
                    if grad is None:
                        raise InputError(f"Layer `{name}` does not reach the output")
                    g = _output_grads(layer, grad.detach())  # (groups, N, T, o)
                    if hessian is None:
                        term = torch.einsum("gnto,gntp->gop", g, g)
                        g_sums[name] = term if k == 0 else g_sums[name] + term
                    else:
                        per_output[name].append(g)
            for name, layer in chosen.items():
                if hessian is not None:
                    g = torch.stack(per_output[name], dim=2)  # (groups, N, C, T, o)
                    hg = torch.einsum("nkl,gnlto->gnkto", hessian, g)
                    g_sums[name] = torch.einsum("gnkto,gnktp->gop", g, hg)
                shape = outputs[name].shape
                spatial = shape[2:] if isinstance(layer.module, nn.Conv2d) else shape[1:-1]
                t = int(torch.Size(spatial).numel())
                a = _inputs(layer, inputs[name])  # (groups, N * T, d)
                a_sum = a.transpose(1, 2) @ a
                g_sum = g_sums[name] / t
                if name in sums:
                    sums[name][0] += a_sum
                    sums[name][1] += g_sum
                else:
                    sums[name] = [a_sum, g_sum]
            count += n
    finally:
        for handle in handles:
            handle.remove()
        for p, flag, grad in saved:
            p.requires_grad_(flag)
            p.grad = grad
        network.train(was_training)
    if count == 0:
        raise InputError("Expected argument `batches` to hold at least one sample")
    return {name: (a / count, g / count) for name, (a, g) in sums.items()}


def _damped_inverses(
    factors: KFACFactors, damping: float
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    root = float(damping) ** 0.5
    inverses = {}
    for name, (a, g) in factors.items():
        eye_a = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        eye_g = torch.eye(g.shape[-1], dtype=g.dtype, device=g.device)
        inverses[name] = (
            torch.linalg.inv(a + root * eye_a),
            torch.linalg.inv(g + root * eye_g),
        )
    return inverses


def _apply(
    layers: dict[str, _Layer], inverses: dict[str, tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Replace each layer's gradient by ``G^-1 grad A^-1`` (the inverses already damped)."""
    for name, (a_inv, g_inv) in inverses.items():
        layer = layers.get(name)
        if layer is None or layer.weight.grad is None:
            raise InputError(
                f"Expected `factors` to name layers with a gradient, but `{name}` is not one"
            )
        weight_grad = layer.weight.grad
        groups = layer.groups
        grad = weight_grad.to(g_inv.dtype).reshape(groups, weight_grad.shape[0] // groups, -1)
        bias_grad = None if layer.bias is None else layer.bias.grad
        if layer.bias is not None:
            if bias_grad is None:
                raise InputError(f"Layer `{name}` has no bias gradient")
            grad = torch.cat([grad, bias_grad.to(g_inv.dtype).reshape(groups, -1, 1)], dim=2)
        if grad.shape != (g_inv.shape[0], g_inv.shape[1], a_inv.shape[1]):
            raise InputError(
                f"Expected the factors of `{name}` to match its gradient {tuple(grad.shape)},"
                f" but got A {tuple(a_inv.shape)} and G {tuple(g_inv.shape)}"
            )
        step = g_inv @ grad.to(g_inv.device) @ a_inv
        step = step.to(device=weight_grad.device, dtype=weight_grad.dtype)
        if bias_grad is not None:
            weight_grad.copy_(step[:, :, :-1].reshape(weight_grad.shape))
            bias_grad.copy_(step[:, :, -1].reshape(bias_grad.shape))
        else:
            weight_grad.copy_(step.reshape(weight_grad.shape))


def precondition(model: nn.Module, factors: KFACFactors, *, damping: float = 1e-3) -> None:
    r"""Replace each factored layer's gradient by the K-FAC step, in place.

    With :math:`r = \sqrt{\lambda}`, the layer's gradient :math:`[\nabla W \mid \nabla b]`
    (per group) becomes :math:`(G + r I)^{-1} [\nabla W \mid \nabla b] (A + r I)^{-1}`.
    Other parameters keep their gradient.

    Args:
        model: the network (or :class:`~graceful.lqf.LinearizedModel`) whose ``.grad``
            fields hold the gradient.
        factors: from :func:`kfac_factors` (layer names of ``model``).
        damping: Tikhonov damping :math:`\lambda > 0`, split evenly between the factors.

    Example:
        >>> layer = nn.Linear(2, 1, bias=False)
        >>> layer.weight.grad = torch.tensor([[2.0, 4.0]])
        >>> A = torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64))[None]
        >>> G = torch.eye(1, dtype=torch.float64)[None]
        >>> precondition(layer, {"": (A, G)}, damping=1e-12)
        >>> layer.weight.grad
        tensor([[2.0000, 1.3333]])
    """
    damping = check_real("damping", damping, low=0.0, low_open=True)
    _apply(_layers(model, None), _damped_inverses(factors, damping))


class KFAC:
    r"""SGD with momentum on the K-FAC-preconditioned gradient.

    ``step(inputs)`` refreshes the factors from ``inputs`` every ``refresh`` steps (the
    first step always does), preconditions the gradient of every factored layer, and takes
    an SGD step; other trainable parameters (e.g. batch-norm affine weights) take a plain
    SGD step. Successive refreshes are averaged: a running mean over all refreshes when
    ``decay`` is ``None`` (right when the curvature is constant, as for the squared loss of
    a linearized model), else an exponential moving average with that decay.

    Args:
        model: a network or :class:`~graceful.lqf.LinearizedModel` (its trainable
            parameters are optimized).
        lr: learning rate (> 0).
        damping: Tikhonov damping :math:`\lambda` (> 0).
        momentum: SGD momentum in ``[0, 1)``.
        refresh: steps between factor refreshes; ``None``: compute them once.
        decay: ``None`` or the moving-average decay in ``[0, 1)``.
        loss: the curvature of ``"squared"`` or ``"cross_entropy"``.
        layers: the layers to precondition (default: all factorable ones).

    Example:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> model = nn.Linear(3, 2)
        >>> x, y = torch.randn(16, 3), torch.randn(16, 2)
        >>> opt = KFAC(model, lr=1.0, damping=1e-8, momentum=0.0)
        >>> opt.zero_grad()
        >>> (0.5 * (model(x) - y).pow(2).sum(1).mean()).backward()
        >>> opt.step(x)
        >>> # squared loss of a linear model: one K-FAC step is the least-squares fit
        >>> aug = torch.cat([x, torch.ones(16, 1)], 1)
        >>> best = torch.linalg.lstsq(aug, y).solution.T
        >>> torch.allclose(torch.cat([model.weight, model.bias[:, None]], 1), best, atol=1e-3)
        True
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float,
        damping: float = 1e-3,
        momentum: float = 0.9,
        refresh: int | None = None,
        decay: float | None = None,
        loss: CurvatureLoss = "squared",
        layers: Sequence[str] | None = None,
    ) -> None:
        lr = check_real("lr", lr, low=0.0, low_open=True)
        self.damping = check_real("damping", damping, low=0.0, low_open=True)
        momentum = check_real("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.refresh = check_optional(check_int, "refresh", refresh, low=1)
        self.decay = check_optional(check_real, "decay", decay, low=0.0, high=1.0, high_open=True)
        self.loss: CurvatureLoss = check_choice("loss", loss, CURVATURE_LOSSES)  # type: ignore[assignment]
        self.model = model
        self._layers = _layers(model, layers)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
        self.factors: KFACFactors = {}
        self.steps = 0
        self._refreshes = 0
        self._inverses: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def update_factors(self, inputs: torch.Tensor) -> None:
        """Fold the factors of one batch of ``inputs`` into the running average."""
        fresh = kfac_factors(self.model, [inputs], layers=list(self._layers), loss=self.loss)
        if not self.factors:
            self.factors = fresh
        else:
            keep = self._refreshes / (self._refreshes + 1) if self.decay is None else self.decay
            self.factors = {
                name: (
                    keep * a + (1 - keep) * fresh[name][0],
                    keep * g + (1 - keep) * fresh[name][1],
                )
                for name, (a, g) in self.factors.items()
            }
        self._refreshes += 1
        # inverted in float64, applied in the weights' precision (float32 halves the cost)
        self._inverses = {
            name: (a.to(self._layers[name].weight.dtype), g.to(self._layers[name].weight.dtype))
            for name, (a, g) in _damped_inverses(self.factors, self.damping).items()
        }

    def zero_grad(self) -> None:
        """Clear the gradients of the optimized parameters."""
        self.optimizer.zero_grad(set_to_none=True)

    def step(self, inputs: torch.Tensor) -> None:
        """Refresh the factors when due, precondition the gradient, and take an SGD step."""
        due = not self.factors or (self.refresh is not None and self.steps % self.refresh == 0)
        if due:
            self.update_factors(inputs)
        _apply(self._layers, self._inverses)
        self.optimizer.step()
        self.steps += 1
