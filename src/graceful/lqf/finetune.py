r"""Fine-tuning with the squared loss or cross-entropy, and SGD, Adam or K-FAC.

LQF trains a :class:`~graceful.lqf.LinearizedModel` on the squared loss against scaled
one-hot targets,

.. math:: \ell(f, y) = \tfrac12 \lVert f - s\, e_y \rVert^2,

so that, the model being linear in its weights, the problem is a convex quadratic and
K-FAC's Gauss-Newton preconditioner is its exact curvature up to the Kronecker
factorisation. :func:`finetune` runs the same loop for every combination of loss and
optimizer, for a linearized or an ordinary network, which is what the ablations need.
Its epochs run through :func:`graceful.training.train_epoch`, the core the
:class:`~graceful.training.Trainer` runs too; the K-FAC step is a
:class:`~graceful.training.Step` of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Literal, cast

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from graceful._validation import (
    check_callable,
    check_choice,
    check_fields,
    check_instance,
    check_int,
    check_optional,
    check_real,
)
from graceful.errors import InputError
from graceful.losses._checks import check_hyperparameters, reduce
from graceful.training import Batch, Objective, OptimizerStep, Step, train_epoch
from graceful.training.loop import RECIPE_CHECKS

from .kfac import CURVATURE_LOSSES, KFAC
from .linearize import LinearizedModel

__all__ = ["FinetuneConfig", "SquaredLoss", "finetune", "squared_loss"]

Loss = Literal["squared", "cross_entropy"]
Optimizer = Literal["sgd", "adam", "kfac"]
_OPTIMIZERS: tuple[Optimizer, ...] = ("sgd", "adam", "kfac")


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
    hp = check_hyperparameters(scale=scale, reduction=reduction)
    if outputs.ndim != 2 or targets.shape != outputs.shape[:1]:
        raise InputError(
            "Expected `outputs` (N, C) and `targets` (N,), but got"
            f" {tuple(outputs.shape)} and {tuple(targets.shape)}"
        )
    goal = F.one_hot(targets, outputs.shape[1]).to(outputs.dtype) * hp["scale"]
    return reduce(0.5 * (outputs - goal).pow(2).sum(dim=1), hp["reduction"])


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
        hp = check_hyperparameters(scale=scale, reduction=reduction)
        self.scale, self.reduction = hp["scale"], hp["reduction"]

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
        seed: seed of the data order, an int in ``[0, 2**32 - 1]``.

    Raises:
        InputError: naming the first field with a bad value.

    Example:
        >>> FinetuneConfig(optimizer="adam", lr=1e-3).loss
        'squared'
        >>> FinetuneConfig(epochs=0)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected `FinetuneConfig.epochs` to be a positive int, but got 0
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
        positive = partial(check_real, low=0.0, low_open=True)
        check_fields(
            self,
            {
                "loss": partial(check_choice, choices=CURVATURE_LOSSES),
                "optimizer": partial(check_choice, choices=_OPTIMIZERS),
                **RECIPE_CHECKS,
                "target_scale": positive,
                "damping": positive,
                "refresh": partial(check_optional, check_int, low=1),
                "factor_samples": partial(check_int, low=1),
            },
        )


def _anchors(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter, the point weight decay pulls it to) for each trainable parameter."""
    if isinstance(model, LinearizedModel):
        w0 = model.w0()
        return [(w, w0[n]) for n, w in zip(model.names, model.weights, strict=True)]
    return [(p, p.detach().clone()) for p in model.parameters() if p.requires_grad]


class _KFACStep:
    """LQF's :class:`~graceful.training.Step`: SGD with momentum on the K-FAC step.

    The curvature is refreshed from the batch's inputs when due (see
    :class:`~graceful.lqf.KFAC`); another way of moving along the preconditioned
    gradient (an exact step on the quadratic, damping adaptation) replaces this class.
    """

    def __init__(self, kfac: KFAC) -> None:
        self.kfac = kfac

    def zero_grad(self) -> None:
        self.kfac.zero_grad()

    def __call__(self, batch: Batch, loss: torch.Tensor) -> None:
        self.kfac.step(batch.x)


def _step(
    model: nn.Module, x: torch.Tensor, config: FinetuneConfig, params: list[nn.Parameter]
) -> tuple[Step, torch.optim.Optimizer]:
    """The step of ``config.optimizer``, and the optimizer whose learning rate is scheduled."""
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
        return _KFACStep(kfac), kfac.optimizer
    optimizer: torch.optim.Optimizer
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=config.lr)
    else:
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    return OptimizerStep(optimizer), optimizer


def _objective(config: FinetuneConfig) -> Objective:
    """The batch loss of ``config.loss`` (the penalty towards ``w0`` is apart)."""
    scale = config.target_scale
    if config.loss == "squared":
        return lambda out, batch: squared_loss(out, batch.y, scale=scale)
    return lambda out, batch: F.cross_entropy(out, batch.y)


def _pull(model: nn.Module, weight_decay: float) -> Callable[[], torch.Tensor] | None:
    r""":math:`\frac\mu2\lVert w - w_0\rVert^2` for the trainable weights; ``None`` for 0."""
    if weight_decay <= 0:
        return None
    anchors = _anchors(model)

    def pull() -> torch.Tensor:
        distance = cast(torch.Tensor, sum(((p - a) ** 2).sum() for p, a in anchors))
        return 0.5 * weight_decay * distance

    return pull


def _batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[Batch]:
    """One epoch's batches, in the order of a permutation drawn from ``generator``."""
    order = torch.randperm(len(x), generator=generator)
    for index in order.split(batch_size):  # type: ignore[no-untyped-call]
        yield Batch(x[index], y[index])


def _check_data(x: torch.Tensor, y: torch.Tensor) -> None:
    """``x`` (N, ...) and ``y`` (N,) tensors with N >= 1."""
    for name, value in (("x", x), ("y", y)):
        check_instance(name, value, torch.Tensor, "a tensor")
    if len(x) == 0 or len(x) != len(y) or y.ndim != 1:
        raise InputError(
            "Expected `x` (N, ...) and `y` (N,) with N >= 1, but got"
            f" {tuple(x.shape)} and {tuple(y.shape)}"
        )


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
    back in eval mode at the end. Only parameters with ``requires_grad`` move. Each epoch
    is one :func:`graceful.training.train_epoch` over a fresh permutation of the data (the
    permutations drawn from a generator seeded with ``config.seed``); the learning rate
    follows a cosine from ``config.lr`` to 0 over all steps.

    Args:
        model: the network or linearized network (its output is ``(N, C)`` logits).
        x: inputs, ``(N, ...)``.
        y: class indices, ``(N,)``.
        config: loss, optimizer and schedule.
        on_epoch: called with ``(epoch, mean loss)`` after each epoch.

    Raises:
        InputError: on mismatched or empty data.
        TrainingDivergedError: when an epoch's mean loss is not finite.

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
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_instance("config", config, FinetuneConfig)
    check_callable("on_epoch", on_epoch, optional=True)
    _check_data(x, y)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("Expected argument `model` to have trainable parameters")
    total = math.ceil(len(x) / config.batch_size) * config.epochs
    step, optimizer = _step(model, x, config, params)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total))
    )
    objective, penalty = _objective(config), _pull(model, config.weight_decay)
    linearized = isinstance(model, LinearizedModel)
    was_training = model.training
    model.train(not linearized)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    try:
        for epoch in range(config.epochs):
            batches = _batches(x, y, config.batch_size, generator)
            mean = train_epoch(
                model,
                batches,
                objective,
                step,
                schedule,
                epoch=epoch,
                penalty=penalty,
                advice="lower `FinetuneConfig.lr`",
            )
            history.append(mean)
            if on_epoch is not None:
                on_epoch(epoch, mean)
    finally:
        model.train(was_training and not linearized)
    model.eval()
    return history
