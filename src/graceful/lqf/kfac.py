r"""Kronecker-factored curvature (K-FAC) of linear layers, and the preconditioned step.

For a linear layer :math:`s = W a` (bias folded in by appending 1 to :math:`a`), the
Jacobian of the network output :math:`f \in \mathbb{R}^C` with respect to :math:`W` is
:math:`\partial f_k / \partial W = g_k a^\top` with :math:`g_k = \partial f_k / \partial s`.
The Gauss-Newton matrix of the squared loss, :math:`\frac1N \sum_i J_i^\top J_i`, has the
layer block :math:`\frac1N \sum_i (a_i a_i^\top) \otimes (\sum_k g_{ik} g_{ik}^\top)`, which
K-FAC (Martens and Grosse, 2015) approximates by :math:`A \otimes G` with
:math:`A = \frac1N \sum_i a_i a_i^\top` and :math:`G = \frac1N \sum_i \sum_k g_{ik} g_{ik}^\top`;
for one sample, or when :math:`G` is the same for every sample, the two are equal. The
preconditioned gradient of the layer is
:math:`(G + \sqrt{\lambda} I)^{-1} \nabla_W (A + \sqrt{\lambda} I)^{-1}`, the inverse of the
damped factors. For a linearized network (:class:`~graceful.lqf.LinearizedModel`) the
Jacobian, hence the Gauss-Newton matrix of the squared loss, does not depend on the
weights: the factors computed on the network at :math:`w_0` hold for the whole training,
and refreshing them only averages over more data.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from graceful.errors import InputError

__all__ = ["KFACFactors", "kfac_factors", "precondition"]

KFACFactors = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""Layer name -> ``(A, G)``: ``A`` is ``(in + 1, in + 1)`` with a bias, ``G`` ``(out, out)``."""


def kfac_factors(
    model: nn.Module, batches: Iterable[torch.Tensor], *, layers: Iterable[str] | None = None
) -> KFACFactors:
    """The K-FAC factors of the squared-loss Gauss-Newton matrix of ``model``'s linear layers.

    ``G`` sums over the C outputs exactly (C backward passes per batch), so it is the
    Gauss-Newton of the squared loss, not a sampled Fisher. The model runs in eval mode.

    Args:
        model: a network whose ``nn.Linear`` layers are to be preconditioned.
        batches: input batches (the inputs are all that is needed).
        layers: names of the ``nn.Linear`` modules (default: all of them).

    Returns:
        ``{name: (A, G)}``, float64 averages over all samples.

    Example:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> A, G = kfac_factors(nn.Linear(2, 3), [torch.ones(4, 2)])[""]
        >>> A
        tensor([[1., 1., 1.],
                [1., 1., 1.],
                [1., 1., 1.]], dtype=torch.float64)
        >>> torch.equal(G, torch.eye(3, dtype=torch.float64))  # a single layer: G = I
        True
    """
    modules = dict(model.named_modules())
    names = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    if layers is not None:
        wanted = list(layers)
        bad = [n for n in wanted if not isinstance(modules.get(n), nn.Linear)]
        if bad:
            raise InputError(
                f"Expected argument `layers` to name nn.Linear modules of {names}, but got {bad}"
            )
        names = wanted
    if not names:
        raise InputError("Expected argument `model` to have at least one nn.Linear layer")
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def hook(name: str):  # type: ignore[no-untyped-def]
        def save(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            inputs[name] = args[0].detach()
            out.retain_grad()
            outputs[name] = out

        return save

    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    sums: dict[str, list[torch.Tensor]] = {}
    count = 0
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            out = model(x)
            if out.ndim != 2:
                raise InputError(f"Expected the model to output (N, C), but got {tuple(out.shape)}")
            n, c = out.shape
            grads: dict[str, list[torch.Tensor]] = {name: [] for name in names}
            for k in range(c):
                for name in names:
                    outputs[name].grad = None
                out[:, k].sum().backward(retain_graph=k < c - 1)
                for name in names:
                    grad = outputs[name].grad
                    if grad is None:
                        raise InputError(f"Layer `{name}` does not reach the output")
                    grads[name].append(grad.detach().double())
            for name in names:
                a = inputs[name].double().reshape(n, -1)
                if modules[name].bias is not None:
                    a = torch.cat([a, a.new_ones(n, 1)], dim=1)
                g = torch.stack(grads[name], dim=1)  # (N, C, out)
                a_sum = a.T @ a
                g_sum = torch.einsum("nko,nkp->op", g, g)
                if name in sums:
                    sums[name][0] += a_sum
                    sums[name][1] += g_sum
                else:
                    sums[name] = [a_sum, g_sum]
            count += n
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if count == 0:
        raise InputError("Expected argument `batches` to hold at least one sample")
    return {name: (a / count, g / count) for name, (a, g) in sums.items()}


def precondition(model: nn.Module, factors: KFACFactors, *, damping: float = 1e-3) -> None:
    r"""Replace each factored layer's gradient by the K-FAC step, in place.

    With :math:`r = \sqrt{\lambda}`, the layer's gradient :math:`[\nabla W \mid \nabla b]`
    becomes :math:`(G + r I)^{-1} [\nabla W \mid \nabla b] (A + r I)^{-1}`. Other
    parameters keep their gradient.

    Args:
        model: the network whose ``.grad`` fields hold the gradient.
        factors: from :func:`kfac_factors` (layer names of ``model``).
        damping: Tikhonov damping :math:`\lambda > 0`, split evenly between the factors.

    Example:
        >>> layer = nn.Linear(2, 1, bias=False)
        >>> layer.weight.grad = torch.tensor([[2.0, 4.0]])
        >>> A = torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64))
        >>> precondition(layer, {"": (A, torch.eye(1, dtype=torch.float64))}, damping=1e-12)
        >>> layer.weight.grad
        tensor([[2.0000, 1.3333]])
    """
    if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not damping > 0:
        raise InputError(f"Expected argument `damping` to be a number > 0, but got {damping!r}")
    modules = dict(model.named_modules())
    root = float(damping) ** 0.5
    for name, (a, g) in factors.items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear) or layer.weight.grad is None:
            raise InputError(
                f"Expected `factors` to name nn.Linear layers with a gradient, but `{name}` is not"
            )
        grad = layer.weight.grad.double()
        if layer.bias is not None:
            if layer.bias.grad is None:
                raise InputError(f"Layer `{name}` has no bias gradient")
            grad = torch.cat([grad, layer.bias.grad.double()[:, None]], dim=1)
        if grad.shape != (g.shape[0], a.shape[0]):
            raise InputError(
                f"Expected the factors of `{name}` to match its gradient {tuple(grad.shape)},"
                f" but got A {tuple(a.shape)} and G {tuple(g.shape)}"
            )
        eye_a = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
        eye_g = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
        step = torch.linalg.solve(g + root * eye_g, grad.to(g.device))
        step = torch.linalg.solve(a + root * eye_a, step.T).T
        step = step.to(layer.weight.grad.dtype)
        bias_grad = None if layer.bias is None else layer.bias.grad
        if bias_grad is not None:
            layer.weight.grad.copy_(step[:, :-1])
            bias_grad.copy_(step[:, -1])
        else:
            layer.weight.grad.copy_(step)
