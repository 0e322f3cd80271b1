r"""The linearization of a network around its pre-trained weights.

.. math:: f_{lin}(x; w) = f(x; w_0) + J_w f(x; w_0)\,(w - w_0)

is linear in :math:`w`, so with a squared loss fine-tuning is a convex (quadratic)
problem. Both terms come from one forward-mode pass,
:func:`torch.func.jvp` of the network's output with respect to its weights, in the
direction :math:`w - w_0`; gradients with respect to :math:`w` flow through that direction
by ordinary back-propagation. Only the weights named as trainable move (e.g. the last
blocks); the others stay at :math:`w_0` and act as a fixed feature extractor.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import nn
from torch.func import functional_call, jvp

from graceful._validation import check_instance, check_real, fail
from graceful.errors import InputError

__all__ = ["LinearizedModel", "to_leaky_relu"]


def to_leaky_relu(model: nn.Module, negative_slope: float = 0.1) -> nn.Module:
    """A copy of ``model`` with every ``nn.ReLU`` and ``nn.ReLU6`` replaced by leaky-ReLU.

    LQF replaces ReLU by leaky-ReLU so that the linearized network's Jacobian does not
    vanish on the negative half of every unit. ReLU6's upper clip is dropped (a
    leaky-ReLU is unbounded). Functional ``F.relu`` calls inside ``forward`` are not
    seen; use modules.

    Args:
        model: the network (not modified).
        negative_slope: the slope for negative inputs, in ``(0, 1)``.

    Returns:
        The converted copy.

    Example:
        >>> net = to_leaky_relu(nn.Sequential(nn.Linear(2, 2), nn.ReLU6()), 0.2)
        >>> net[1]
        LeakyReLU(negative_slope=0.2)
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    slope = check_real(
        "negative_slope", negative_slope, low=0.0, high=1.0, low_open=True, high_open=True
    )
    converted = copy.deepcopy(model)

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, (nn.ReLU, nn.ReLU6)):
                setattr(module, name, nn.LeakyReLU(slope))
            else:
                swap(child)

    if isinstance(converted, (nn.ReLU, nn.ReLU6)):
        return nn.LeakyReLU(slope)
    swap(converted)
    return converted


class LinearizedModel(nn.Module):
    r"""The first-order Taylor expansion of a network around its current weights.

    ``forward(x)`` returns :math:`f(x; w_0) + J_w f(x; w_0)(w - w_0)`. The trainable
    weights :math:`w` are this module's parameters, initialised to :math:`w_0`; the
    expansion point :math:`w_0`, the frozen weights and every buffer (batch-norm running
    statistics) are fixed copies, and the network is evaluated in eval mode (batch norm
    uses its running statistics, dropout is off), so :math:`f_{lin}` is an affine function
    of :math:`w` for each input.

    Args:
        model: the pre-trained network (copied; the original is untouched).
        trainable: names (or name prefixes, e.g. ``"features.2."``, ``"head"``) of the
            parameters that move; ``None``: all of them.

    Raises:
        InputError: when ``trainable`` selects no parameter.

    Example:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.1), nn.Linear(4, 2))
        >>> lin = LinearizedModel(net, trainable=["2."])
        >>> lin.names, sum(w.numel() for w in lin.parameters())
        (['2.weight', '2.bias'], 10)
    """

    def __init__(self, model: nn.Module, *, trainable: Sequence[str] | None = None) -> None:
        super().__init__()
        check_instance("model", model, nn.Module, "a torch.nn.Module")
        if isinstance(trainable, str):  # a str is a sequence of one-letter names
            raise fail("trainable", "a sequence of names, not a str", trainable)
        base = copy.deepcopy(model).eval()
        for p in base.parameters():
            p.requires_grad_(False)
        self._base = [base]  # a list hides it from .parameters(), .to() and state_dict()
        names = [name for name, _ in base.named_parameters()]
        chosen = (
            names
            if trainable is None
            else [n for n in names if any(n == t or n.startswith(t) for t in trainable)]
        )
        if not chosen:
            raise InputError(
                f"Expected argument `trainable` to select at least one parameter of {names[:6]}"
                f"{'...' if len(names) > 6 else ''}, but got {list(trainable or [])}"
            )
        params = dict(base.named_parameters())
        self.names: list[str] = chosen
        """The network's names of the trainable parameters, in :attr:`weights` order."""
        self.weights = nn.ParameterList([params[n].detach().clone() for n in chosen])
        for i, n in enumerate(chosen):
            self.register_buffer(f"w0_{i}", params[n].detach().clone())
        chosen_set = set(chosen)
        self._frozen = {n: p for n, p in base.named_parameters() if n not in chosen_set}
        self._base_buffers = dict(base.named_buffers())

    @property
    def network(self) -> nn.Module:
        """The frozen copy of the network at :math:`w_0` (eval mode)."""
        return self._base[0]

    def w0(self) -> dict[str, torch.Tensor]:
        """The expansion point of each trainable parameter, by its name in the network."""
        return {n: getattr(self, f"w0_{i}") for i, n in enumerate(self.names)}

    def delta(self) -> dict[str, torch.Tensor]:
        """:math:`w - w_0` for each trainable parameter, by its name in the network."""
        w0 = self.w0()
        return {n: w - w0[n] for n, w in zip(self.names, self.weights, strict=True)}

    def _function(self, x: torch.Tensor) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
        """The network's output on ``x`` as a function of the trainable weights."""
        base = self.network
        device = x.device
        fixed = {n: t.to(device) for n, t in self._frozen.items()}
        fixed |= {n: t.to(device) for n, t in self._base_buffers.items()}

        def f(weights: dict[str, torch.Tensor]) -> torch.Tensor:
            out: torch.Tensor = functional_call(base, {**fixed, **weights}, (x,))
            return out

        return f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`f(x; w_0) + J_w f(x; w_0)(w - w_0)`."""
        result = jvp(self._function(x), (self.w0(),), (self.delta(),))
        out0, tangent = cast(torch.Tensor, result[0]), cast(torch.Tensor, result[1])
        return out0 + tangent

    def jacobian_vector_products(
        self, x: torch.Tensor, tangents: Sequence[Sequence[torch.Tensor]]
    ) -> torch.Tensor:
        r""":math:`J_w f(x; w_0)\, v_k` for each tangent :math:`v_k`, stacked: ``(K, N, ...)``.

        The linearized output moves along a direction :math:`v` as
        :math:`f_{lin}(x; w + t v) = f_{lin}(x; w) + t\, J v`, whatever :math:`w`; this is
        that :math:`J v`, without gradients, from one forward-mode pass per tangent
        (:func:`torch.func.jvp` at :math:`w_0`, as in :meth:`forward`).

        Args:
            x: inputs, ``(N, ...)``.
            tangents: ``K >= 1`` directions, each one tensor per trainable weight in
                :attr:`weights` order, of the weights' shapes.

        Raises:
            InputError: when a tangent does not match the weights.

        Example:
            >>> lin = LinearizedModel(nn.Linear(2, 1, bias=False))
            >>> lin.jacobian_vector_products(torch.tensor([[1.0, 2.0]]),
            ...                              [[torch.tensor([[1.0, 0.0]])],
            ...                               [torch.tensor([[0.0, 1.0]])]])
            tensor([[[1.]],
            <BLANKLINE>
                    [[2.]]])
        """
        shapes = [tuple(w.shape) for w in self.weights]
        if not tangents or any(
            len(t) != len(shapes) or [tuple(v.shape) for v in t] != shapes for t in tangents
        ):
            got = [[tuple(v.shape) for v in t] for t in tangents]
            raise InputError(
                f"Expected argument `tangents` to be K >= 1 directions of shapes {shapes},"
                f" but got {got}"
            )
        f, w0 = self._function(x), self.w0()
        outs = []
        with torch.no_grad():
            for tangent in tangents:
                direction = dict(zip(self.names, tangent, strict=True))
                outs.append(cast(torch.Tensor, jvp(f, (w0,), (direction,))[1]))
        return torch.stack(outs)
