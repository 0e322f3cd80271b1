r"""Fine-tuning with the squared loss or cross-entropy, and SGD, Adam or K-FAC.

LQF trains a :class:`~graceful.lqf.LinearizedModel` on the squared loss against scaled
one-hot targets,

.. math:: \ell(f, y) = \tfrac12 \lVert f - s\, e_y \rVert^2,

so that, the model being linear in its weights, the problem is a convex quadratic and
K-FAC's Gauss-Newton preconditioner is its exact curvature up to the Kronecker
factorisation. :func:`finetune` runs the same loop for every combination of loss and
optimizer, for a linearized or an ordinary network, which is what the ablations need.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from graceful.errors import InputError

from ._checks import check_curvature_loss, check_positive
from .kfac import KFAC
from .linearize import LinearizedModel

__all__ = ["FinetuneConfig", "SquaredLoss", "finetune", "predict", "squared_loss"]

Loss = Literal["squared", "cross_entropy"]
Optimizer = Literal["sgd", "adam", "kfac"]


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise InputError(
            f"Expected argument `reduction` to be 'mean', 'sum' or 'none', but got {reduction!r}"
        )


def squared_loss(
    outputs: torch.Tensor, targets: torch.Tensor, *, scale: float = 5.0, reduction: str = "mean"
) -> torch.Tensor:
    r"""The squared loss against scaled one-hot targets, :math:`\frac12\lVert f - s\,e_y\rVert^2`.

    Args:
        outputs: ``(N, C)`` model outputs.
        targets: ``(N,)`` class indices in ``[0, C)``.
        scale: :math:`s`, the value of the target class (others are 0).
        reduction: ``"mean"`` over samples, ``"sum"`` or ``"none"``.

    Example:
        >>> squared_loss(torch.tensor([[4.0, 1.0]]), torch.tensor([0]), scale=5.0)
        tensor(1.)
    """
    _check_reduction(reduction)
    if outputs.ndim != 2 or targets.shape != outputs.shape[:1]:
        raise InputError(
            "Expected `outputs` (N, C) and `targets` (N,), but got"
            f" {tuple(outputs.shape)} and {tuple(targets.shape)}"
        )
    goal = F.one_hot(targets, outputs.shape[1]).to(outputs.dtype) * scale
    per_sample = 0.5 * (outputs - goal).pow(2).sum(dim=1)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


class SquaredLoss(nn.Module):
    """Module form of :func:`squared_loss`.

    Args:
        scale: the target value of the true class.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> SquaredLoss(scale=1.0)(torch.zeros(2, 3), torch.tensor([0, 2]))
        tensor(0.5000)
    """

    def __init__(self, *, scale: float = 5.0, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        check_positive("scale", scale)
        self.scale = float(scale)
        self.reduction = reduction

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of ``outputs`` (N, C) against class indices ``targets`` (N,)."""
        return squared_loss(outputs, targets, scale=self.scale, reduction=self.reduction)


@dataclass(frozen=True)
class FinetuneConfig:
    r"""How :func:`finetune` trains.

    Attributes:
        loss: ``"squared"`` (scaled one-hot targets) or ``"cross_entropy"``.
        optimizer: ``"sgd"`` (with momentum), ``"adam"`` or ``"kfac"`` (SGD with momentum
            on the K-FAC step, :class:`~graceful.lqf.KFAC`).
        epochs: passes over the data.
        batch_size: samples per step.
        lr: peak learning rate; it follows a cosine schedule to 0 over all steps.
        momentum: SGD / K-FAC momentum.
        weight_decay: :math:`\mu` of :math:`\frac\mu2\lVert w - w_0\rVert^2`, a pull
            towards the pre-trained weights (quadratic, so LQF stays convex).
        target_scale: the squared loss's target value of the true class.
        damping: K-FAC damping.
        refresh: K-FAC steps between factor refreshes; ``None``: factors once, before
            training, from ``factor_samples`` samples (exact for the squared loss of a
            linearized model, whose curvature is constant).
        factor_samples: samples the initial K-FAC factors are computed from.
        seed: seed of the data order.
    """

    loss: Loss = "squared"
    optimizer: Optimizer = "kfac"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    target_scale: float = 5.0
    damping: float = 1e-3
    refresh: int | None = None
    factor_samples: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        check_curvature_loss(self.loss)
        if self.optimizer not in ("sgd", "adam", "kfac"):
            raise InputError(
                "Expected argument `optimizer` to be 'sgd', 'adam' or 'kfac', but got"
                f" {self.optimizer!r}"
            )
        for name in ("epochs", "batch_size", "factor_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"Expected argument `{name}` to be an int >= 1, but got {value!r}")
        for name in ("lr", "target_scale", "damping"):
            check_positive(name, getattr(self, name))
        wd = self.weight_decay
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not wd >= 0:
            raise InputError(
                f"Expected argument `weight_decay` to be a number >= 0, but got {wd!r}"
            )


def _anchors(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter, the point weight decay pulls it to) for each trainable parameter."""
    if isinstance(model, LinearizedModel):
        w0 = model.w0()
        return [(w, w0[n]) for n, w in zip(model.names, model.weights, strict=True)]
    return [(p, p.detach().clone()) for p in model.parameters() if p.requires_grad]


def finetune(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: FinetuneConfig,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` on ``(x, y)`` in place; returns the mean training loss of each epoch.

    A :class:`~graceful.lqf.LinearizedModel` is always evaluated at its expansion point
    (eval-mode batch norm); an ordinary network is put in train mode while it trains and
    back in eval mode at the end. Only parameters with ``requires_grad`` move.

    Args:
        model: the network or linearized network (its output is ``(N, C)`` logits).
        x: inputs, ``(N, ...)``.
        y: class indices, ``(N,)``.
        config: loss, optimizer and schedule.
        on_epoch: called with ``(epoch, mean loss)`` after each epoch.

    Raises:
        InputError: on mismatched or empty data, or a loss that stops being finite.

    Example:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> x = torch.randn(64, 5)
        >>> y = (x[:, 0] > 0).long()
        >>> net = LinearizedModel(nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.1),
        ...                                     nn.Linear(8, 2)))
        >>> losses = finetune(net, x, y, FinetuneConfig(epochs=5, batch_size=16, lr=0.1))
        >>> losses[-1] < losses[0]
        True
    """
    if not isinstance(model, nn.Module):
        raise InputError(
            f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}"
        )
    if not isinstance(config, FinetuneConfig):
        raise InputError(
            f"Expected argument `config` to be a FinetuneConfig, but got {type(config).__name__}"
        )
    if len(x) == 0 or len(x) != len(y) or y.ndim != 1:
        raise InputError(
            "Expected `x` (N, ...) and `y` (N,) with N >= 1, but got"
            f" {tuple(x.shape)} and {tuple(y.shape)}"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("Expected argument `model` to have trainable parameters")
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total = steps_per_epoch * config.epochs
    kfac: KFAC | None = None
    optimizer: torch.optim.Optimizer
    if config.optimizer == "kfac":
        kfac = KFAC(
            model,
            lr=config.lr,
            damping=config.damping,
            momentum=config.momentum,
            refresh=config.refresh,
            loss=config.loss,
        )
        generator = torch.Generator().manual_seed(config.seed + 1_000_003)
        pick = torch.randperm(len(x), generator=generator)[: config.factor_samples]
        for chunk in pick.split(256):  # type: ignore[no-untyped-call]
            kfac.update_factors(x[chunk])
        optimizer = kfac.optimizer
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=config.lr)
    else:
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total))
    )
    anchors = _anchors(model) if config.weight_decay > 0 else []
    linearized = isinstance(model, LinearizedModel)
    was_training = model.training
    model.train(not linearized)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    try:
        for epoch in range(config.epochs):
            order = torch.randperm(len(x), generator=generator)
            running = torch.zeros((), dtype=torch.float64)
            for batch in order.split(config.batch_size):  # type: ignore[no-untyped-call]
                xb, yb = x[batch], y[batch]
                out = model(xb)
                if config.loss == "squared":
                    loss = squared_loss(out, yb, scale=config.target_scale)
                else:
                    loss = F.cross_entropy(out, yb)
                running += loss.detach().double() * len(batch)
                if anchors:
                    pull = sum(((p - a) ** 2).sum() for p, a in anchors)
                    loss = loss + 0.5 * config.weight_decay * pull
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                if kfac is not None:
                    kfac.step(xb)
                else:
                    optimizer.step()
                schedule.step()
            mean = float(running) / len(x)
            if not math.isfinite(mean):
                raise InputError(
                    f"Fine-tuning diverged in epoch {epoch}: the loss is {mean}; lower `lr`"
                )
            history.append(mean)
            if on_epoch is not None:
                on_epoch(epoch, mean)
    finally:
        model.train(was_training and not linearized)
    model.eval()
    return history


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """The model's outputs on ``x`` in eval mode, without gradients, batch by batch.

    Example:
        >>> predict(nn.Linear(3, 2), torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
