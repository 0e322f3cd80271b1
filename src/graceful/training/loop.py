"""One epoch of gradient training: the core the Trainer and LQF's fine-tuning both run.

Each caller decides what an epoch's batches are (the :class:`~graceful.training.Trainer`:
a seeded loader of ``(x, y, id)`` items with the teacher's outputs; :func:`graceful.lqf.finetune`:
a seeded permutation of tensors), what the loss of a batch is, and how parameters move
(a :class:`Step`: :class:`OptimizerStep`, or LQF's K-FAC step). :func:`train_epoch` does the
rest, once for both: per batch the forward pass, the loss (checked to be a scalar), an
optional penalty that is minimised but not reported, the backward pass, the step and the
learning-rate schedule; the running sum of the loss over samples; and, after the epoch,
one check that its mean is finite (one host sync per epoch rather than per step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn

from graceful._validation import check_int, check_optional, check_real, check_seed, describe
from graceful.errors import InputError, TrainingDivergedError

from .inference import _model_device

__all__ = ["RECIPE_CHECKS", "Batch", "Objective", "OptimizerStep", "Step", "train_epoch"]

RECIPE_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "epochs": partial(check_int, low=1),
    "batch_size": partial(check_int, low=1),
    "lr": partial(check_real, low=0.0, low_open=True),
    "momentum": partial(check_real, low=0.0, high=1.0, high_open=True),
    "weight_decay": partial(check_real, low=0.0),
    "seed": check_seed,
}
"""The rules of the fields every training recipe has (:class:`~graceful.training.TrainConfig`,
:class:`~graceful.lqf.FinetuneConfig`), for :func:`graceful._validation.check_fields`."""


@dataclass(frozen=True)
class Batch:
    """One training batch, on the training device.

    Attributes:
        x: the inputs.
        y: the targets, one per sample.
        ids: the samples' stable ids (``None`` where the data has none).
        old: the old model's outputs for the batch, from a teacher (``None`` without one).

    Example:
        >>> len(Batch(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)))
        4
    """

    x: Tensor
    y: Tensor
    ids: Tensor | None = None
    old: Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


Objective = Callable[[Any, Batch], Tensor]
"""``objective(output, batch) -> loss``: the scalar loss of the model's output on a batch."""


class Step(Protocol):
    """How parameters move once the gradient of a batch's loss is in their ``.grad``.

    :func:`train_epoch` calls ``zero_grad()``, back-propagates the loss, then calls
    ``step(batch, loss)``; a step may use the batch (K-FAC refreshes its curvature from
    the inputs) or the loss (a line search).
    """

    def zero_grad(self) -> None:
        """Clear the gradients of the parameters the step moves."""
        ...

    def __call__(self, batch: Batch, loss: Tensor) -> None:
        """Move the parameters, their gradient being in ``.grad``."""
        ...


class OptimizerStep:
    """A :class:`Step` that clips the gradient norm (optionally) and steps an optimizer.

    Args:
        optimizer: moves the parameters of its ``param_groups``.
        max_grad_norm: clip the global gradient norm of those parameters to this before
            each step; ``None``: no clipping.

    Example:
        >>> layer = torch.nn.Linear(2, 1)
        >>> step = OptimizerStep(torch.optim.SGD(layer.parameters(), lr=0.1), max_grad_norm=1.0)
        >>> step.zero_grad()
        >>> layer(torch.ones(1, 2)).sum().backward()
        >>> step(Batch(torch.ones(1, 2), torch.zeros(1)), torch.zeros(()))
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, max_grad_norm: float | None = None):
        self.optimizer = optimizer
        self.max_grad_norm = check_optional(
            check_real, "max_grad_norm", max_grad_norm, low=0.0, low_open=True
        )

    def zero_grad(self) -> None:
        """Set the optimizer's gradients to ``None``."""
        self.optimizer.zero_grad(set_to_none=True)

    def __call__(self, batch: Batch, loss: Tensor) -> None:
        """Clip (when asked), then take the optimizer's step."""
        if self.max_grad_norm is not None:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        self.optimizer.step()


def train_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    objective: Objective,
    step: Step,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    epoch: int,
    penalty: Callable[[], Tensor] | None = None,
    on_batch: Callable[[], None] | None = None,
    distributed: bool = False,
    advice: str = "lower the learning rate",
) -> float:
    r"""One pass over ``batches``; returns the mean of the loss over the epoch's samples.

    Per batch: ``loss = objective(model(batch.x), batch)``; the gradient of
    ``loss + penalty()`` is taken and ``step`` moves the parameters, then
    ``scheduler.step()``. The reported mean is :math:`\sum_b |b|\,\ell_b / \sum_b |b|`
    (exact when the last batch is small), without the penalty. The model's train/eval
    mode is the caller's.

    Args:
        model: the network the batches run through (e.g. a DDP wrapper).
        batches: the epoch's batches, on the model's device.
        objective: the scalar loss of an output on its batch.
        step: moves the parameters (:class:`OptimizerStep`, K-FAC, ...).
        scheduler: stepped once per batch, after ``step``.
        epoch: the epoch's index, for the divergence message.
        penalty: a regulariser added to the minimised loss but not to the reported one
            (LQF's pull towards the pre-trained weights).
        on_batch: called after each batch (a progress bar's advance).
        distributed: sum the loss and the sample count over all processes of
            :mod:`torch.distributed` before taking the mean.
        advice: the end of the divergence message: what to change.

    Returns:
        The mean loss over the epoch's samples (over all processes when ``distributed``).

    Raises:
        InputError: when the objective does not return a scalar or there is no batch.
        TrainingDivergedError: when the mean loss is NaN or infinite.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Linear(3, 2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
        >>> batches = [Batch(x[:5], y[:5]), Batch(x[5:], y[5:])]
        >>> ce = lambda out, batch: torch.nn.functional.cross_entropy(out, batch.y)
        >>> constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        >>> first = train_epoch(model, batches, ce, OptimizerStep(optimizer), constant, epoch=0)
        >>> second = train_epoch(model, batches, ce, OptimizerStep(optimizer), constant, epoch=1)
        >>> second < first
        True
    """
    device = _model_device(model)
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for batch in batches:
        loss = objective(model(batch.x), batch)
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            got = f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else describe(loss)
            raise InputError(f"Expected `loss` to return a scalar tensor, but got {got}")
        minimised = loss if penalty is None else loss + penalty()
        step.zero_grad()
        minimised.backward()  # type: ignore[no-untyped-call]
        step(batch, minimised)
        scheduler.step()
        total += loss.detach().double() * len(batch)
        count += len(batch)
        if on_batch is not None:
            on_batch()
    sums = torch.stack([total, torch.tensor(float(count), dtype=torch.float64, device=device)])
    if distributed:
        dist.all_reduce(sums)
    loss_sum, samples = (float(v) for v in sums.tolist())  # the epoch's one host sync
    if samples == 0:
        raise InputError(f"Expected the batches of epoch {epoch} to hold a sample, but got none")
    mean = loss_sum / samples
    if not math.isfinite(mean):
        raise TrainingDivergedError(
            f"training diverged in epoch {epoch}: the loss is {mean}; {advice}"
        )
    return mean
