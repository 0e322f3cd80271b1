"""A small training loop that tracks regressions against the old model every epoch.

Data: a :class:`~torch.utils.data.Dataset` of ``(x, y, id)`` items (``y`` an int64 class,
``id`` a stable int64 sample id). Loss: an ``nn.Module`` called as
``loss(new_logits, old_logits, target)``, ``old_logits`` coming from the teacher (``None``
without one). A model may instead return an :class:`~graceful.embedding.EmbeddingOutput`
(wrap it in :class:`~graceful.embedding.WithEmbedding`): the loss then gets that output
(e.g. :class:`~graceful.losses.CompatibleEmbeddingLoss`, whose teacher gives the old
model's *embeddings*), and validation and prediction use its logits.

Every epoch records the training loss, the validation error, the validation negative flip
rate against the old model and the time taken; the model is restored to the epoch chosen
by ``TrainConfig.select``.

Collapse: a loss can wreck a run without a non-finite loss (a regression-aware loss pulled
too hard towards large teacher logits: most predictions on a few classes, an error far
above the old model's). After a warm-up (``TrainConfig.collapse_warmup``), every epoch's
validation results are checked by the rule of :mod:`graceful.training.collapse`: the error
exceeds the old model's by more than ``TrainConfig.collapse_margin``, one class takes over
the predictions, or the predicted classes hold less than half of the labels. An epoch is
flagged when these signs show in it and in the checked epoch before it, or in the last
epoch: a collapse persists, while the error spike of a one-cycle schedule's peak learning
rate passes. ``TrainConfig.on_collapse`` says what a flagged epoch does: warn
(:class:`~graceful.errors.TrainingCollapseWarning`), stop, or raise
:class:`~graceful.errors.TrainingCollapsedError`. The history records the figures and the
flag of every epoch, :attr:`TrainResult.collapse` the first flagged epoch.

Reproducibility: :meth:`Trainer.fit` seeds everything from ``TrainConfig.seed``, shuffles
each epoch with :func:`~graceful.training.seed.epoch_generator` (so data order depends only
on seed and epoch) and, with a ``checkpoint_dir``, checkpoints model, optimizer,
scheduler, global RNG states and history atomically after every epoch. A run resumed
after a crash ends with exactly the weights of an uninterrupted one wherever the kernels
are deterministic (on CPU they are).

Distributed: when :mod:`torch.distributed` is initialised the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`, each process reads its share of the
training set through a :class:`~torch.utils.data.DistributedSampler` (``batch_size`` is
per process), validation is sharded without padding and its metrics are synchronised
exactly (count states; the per-class counts of the collapse check too), and only rank 0
writes checkpoints, shows progress and warns.
"""

from __future__ import annotations

import io
import math
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence, Sized
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, cast

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset
from torch.utils.data.distributed import DistributedSampler

from graceful._progress import progress_bar
from graceful._validation import (
    check_bool,
    check_callable,
    check_choice,
    check_fields,
    check_instance,
    check_int,
    check_optional,
    check_real,
    fail,
)
from graceful.errors import InputError, TrainingCollapsedError, TrainingCollapseWarning
from graceful.io.atomic import atomic_open

from .collapse import _Spread, _spread, collapse_reason
from .inference import _collect, _logits_of, _model_device, _outputs, _unpack
from .loop import RECIPE_CHECKS, Batch, OptimizerStep, train_epoch
from .seed import epoch_generator, seed_everything
from .teachers import Teacher

__all__ = ["TrainConfig", "TrainResult", "Trainer", "select_epoch"]

Criterion = Literal["last", "best_error", "best_nfr", "best_error_then_nfr"]
_OPTIMIZERS = ("sgd", "adam")
_SCHEDULES = ("onecycle", "cosine", "constant")
_CRITERIA = ("last", "best_error", "best_nfr", "best_error_then_nfr")
_ON_COLLAPSE = ("warn", "stop", "raise")
_WARMUP_STEPS = 100  # optimizer steps before the first collapse check (tiny epochs)
# Fields that change the trajectory: a checkpoint resumes only a run that agrees on them.
_RUN_FIELDS = (
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "optimizer",
    "schedule",
    "seed",
    "select",
    "collapse_margin",  # the collapse fields decide which epochs are flagged: the history,
    "collapse_warmup",  # and with "stop" or "raise" where the run ends
    "on_collapse",
)
_CHECKPOINT = "last.pt"
_FORMAT = "graceful.train_checkpoint/1"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run; every field is checked on construction.

    Attributes:
        epochs: number of passes over the training set.
        batch_size: batch size (per process under DDP).
        lr: peak learning rate (``onecycle``) or initial one (``cosine``, ``constant``).
        momentum: SGD momentum (unused by Adam).
        weight_decay: L2 penalty, applied by the optimizer.
        optimizer: ``"sgd"`` or ``"adam"``.
        schedule: ``"onecycle"``, ``"cosine"`` (to 0 at the last step) or ``"constant"``;
            stepped every batch.
        seed: seeds weights-independent randomness: data order, dropout, augmentation.
        select: epoch to keep; see :func:`select_epoch`.
        checkpoint_dir: where to write ``last.pt`` after every epoch; ``None``: no
            checkpoints (and nothing to resume).
        progress: show rich progress bars (rank 0 only).
        num_threads: ``torch.set_num_threads`` for the run (``None``: leave it).
        max_grad_norm: clip the global gradient norm to this before each step
            (``None``: no clipping). Logit matching with a large weight needs it.
        collapse_margin: an epoch has collapsed when its validation error exceeds the old
            model's by more than this (a fraction: 0.25 is 25 points); checked only when
            the old model's validation logits are known; ``None``: not checked. The other
            two signs of a collapse (one class takes over the predictions, the predicted
            classes hold less than half of the labels) are always checked; the rule is in
            :mod:`graceful.training.collapse`.
        collapse_warmup: the share of the run's optimizer steps in which no epoch is
            checked for a collapse; nor is the first epoch, nor any epoch within the first
            100 steps (:meth:`first_collapse_check`). Early in a normal run a model is
            still far worse than the old one and may predict a few classes only; 0.3 is
            ``"onecycle"``'s rise of the learning rate.
        on_collapse: what a collapsed epoch does: ``"warn"`` (a one-line
            :class:`~graceful.errors.TrainingCollapseWarning`, training goes on),
            ``"stop"`` (warns, ends training after that epoch and keeps the epoch
            ``select`` chooses among those done: with ``"last"`` the collapsed one) or
            ``"raise"`` (:class:`~graceful.errors.TrainingCollapsedError`, before that
            epoch's checkpoint, so a resumed run raises again).

    Raises:
        InputError: naming the first field with a bad value.

    Example:
        >>> TrainConfig(epochs=3, schedule="cosine").lr
        0.05
        >>> TrainConfig(epochs=0)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected `TrainConfig.epochs` to be a positive int, but got 0
    """

    epochs: int
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: Literal["sgd", "adam"] = "sgd"
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    seed: int = 0
    select: Criterion = "last"
    checkpoint_dir: str | None = None
    progress: bool = True
    num_threads: int | None = None
    max_grad_norm: float | None = None
    collapse_margin: float | None = 0.25
    collapse_warmup: float = 0.3
    on_collapse: Literal["warn", "stop", "raise"] = "warn"

    def __post_init__(self) -> None:
        check_fields(
            self,
            RECIPE_CHECKS
            | {
                "optimizer": partial(check_choice, choices=_OPTIMIZERS),
                "schedule": partial(check_choice, choices=_SCHEDULES),
                "select": partial(check_choice, choices=_CRITERIA),
                "checkpoint_dir": partial(
                    check_instance, kind=(str, type(None)), what="a str or None"
                ),
                "progress": check_bool,
                "num_threads": partial(check_optional, check_int, low=1),
                "max_grad_norm": partial(check_optional, check_real, low=0.0, low_open=True),
                "collapse_margin": partial(check_optional, check_real, low=0.0, high=1.0),
                "collapse_warmup": partial(check_real, low=0.0, high=1.0),
                "on_collapse": partial(check_choice, choices=_ON_COLLAPSE),
            },
        )

    def first_collapse_check(self, steps_per_epoch: int) -> int:
        """The first epoch checked for a collapse, with this many optimizer steps per epoch.

        Not checked: the first epoch, and every epoch that ends within the first
        ``collapse_warmup`` share of the run's optimizer steps or within its first 100
        steps (per process).

        Example:
            >>> config = TrainConfig(epochs=10)
            >>> config.first_collapse_check(390), config.first_collapse_check(17)
            (2, 5)
        """
        check_int("steps_per_epoch", steps_per_epoch, low=1)
        warmup = max(_WARMUP_STEPS, self.collapse_warmup * steps_per_epoch * self.epochs)
        # epoch e ends after (e + 1) * steps_per_epoch steps; round: 0.3 * 10 > 3
        return max(1, math.ceil(round(warmup / steps_per_epoch, 9)) - 1)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns; the model already holds the selected epoch.

    Attributes:
        history: one dict per epoch: ``epoch`` (index from 0), ``train_loss`` (mean over
            samples), ``val_error``, ``val_nfr`` and ``val_error_old`` (the old model's;
            NaN without validation data or without an old model), ``top_class`` and
            ``top_class_share`` (the most predicted validation class and its share of the
            predictions), ``predicted_classes`` (how many classes are predicted; these
            three NaN without validation data), ``collapse_signs`` (1 when the epoch shows
            the signs of a collapse), ``collapsed`` (1 when the epoch was flagged as
            collapsed: the signs in it and in the epoch before, or in the last epoch),
            ``lr`` (at the end of the epoch), ``seconds``
            (the training pass, teacher included), ``val_seconds`` and ``best_epoch`` (the
            selected epoch as of that epoch).
        best_epoch: the selected epoch.
        selected: the criterion it was selected by.
        checkpoint: path of the last checkpoint, or ``None``.
        collapse: the message of the first collapsed epoch (``"epoch 3: training
            collapsed: ..."``), or ``None``.

    Example:
        >>> r = TrainResult(history=[], best_epoch=0, selected="last")
        >>> r.selected, r.checkpoint, r.collapse
        ('last', None, None)
    """

    history: list[dict[str, float]]
    best_epoch: int
    selected: str
    checkpoint: str | None = field(default=None)
    collapse: str | None = field(default=None)


def _key(value: float) -> float:
    """Sort key: NaN (undefined) ranks after every number."""
    return math.inf if math.isnan(value) else value


def select_epoch(history: Sequence[dict[str, float]], criterion: str) -> int:
    """The epoch chosen by ``criterion`` from a training history; ties go to the earliest.

    - ``"last"``: the last epoch;
    - ``"best_error"``: lowest ``val_error``;
    - ``"best_nfr"``: lowest ``val_nfr``;
    - ``"best_error_then_nfr"``: lowest ``val_error``, ties broken by lowest ``val_nfr``.

    NaN values rank last.

    Args:
        history: dicts with ``epoch``, ``val_error`` and ``val_nfr``.
        criterion: one of the four names above.

    Returns:
        The ``epoch`` value of the chosen entry.

    Example:
        >>> h = [{"epoch": 0, "val_error": 0.3, "val_nfr": 0.05},
        ...      {"epoch": 1, "val_error": 0.2, "val_nfr": 0.06},
        ...      {"epoch": 2, "val_error": 0.2, "val_nfr": 0.04},
        ...      {"epoch": 3, "val_error": 0.25, "val_nfr": 0.01}]
        >>> [select_epoch(h, c) for c in ("last", "best_error", "best_nfr",
        ...                              "best_error_then_nfr")]
        [3, 1, 3, 2]
    """
    check_choice("criterion", criterion, _CRITERIA)
    if len(history) == 0:
        raise InputError("Expected argument `history` to hold at least one epoch, but it is empty")
    if criterion == "last":
        chosen = history[-1]
    elif criterion == "best_error":
        chosen = min(history, key=lambda h: _key(h["val_error"]))
    elif criterion == "best_nfr":
        chosen = min(history, key=lambda h: _key(h["val_nfr"]))
    else:
        chosen = min(history, key=lambda h: (_key(h["val_error"]), _key(h["val_nfr"])))
    return int(chosen["epoch"])


class _CrossEntropy(nn.Module):
    """Plain cross-entropy with the loss signature ``(new_logits, old_logits, target)``.

    ``new_logits`` may be an :class:`~graceful.embedding.EmbeddingOutput` (its logits are used).
    """

    def forward(self, new_logits: object, old_logits: Tensor | None, target: Tensor) -> Tensor:
        return F.cross_entropy(_logits_of(new_logits), target)


@dataclass(frozen=True)
class _Validation:
    """One epoch's validation figures, synchronised across processes."""

    error: float = math.nan
    nfr: float = math.nan
    old_error: float = math.nan  # NaN without the old model's logits over the same classes
    counts: Tensor | None = None  # (2, C) float64 on the CPU: predictions, labels per class

    def spread(self) -> _Spread | None:
        if self.counts is None or float(self.counts[1].sum()) <= 0:
            return None
        return _spread(self.counts[0].numpy(), self.counts[1].numpy())


def _count_classes(counts: Tensor | None, target: Tensor, logits: Tensor) -> Tensor | None:
    """Add a batch's top-1 predictions (row 0) and labels (row 1) to the per-class counts.

    Nothing is read back from the device. The labels were range-checked by the metrics.
    """
    if logits.ndim != 2:
        return counts
    if counts is None:
        counts = torch.zeros(2, logits.shape[1], dtype=torch.float64, device=logits.device)
    ones = torch.ones(target.shape[0], dtype=torch.float64, device=logits.device)
    counts[0].index_add_(0, logits.argmax(1), ones)  # argmax: the first maximum
    counts[1].index_add_(0, target.to(torch.int64), ones)
    return counts


def _sum_counts(counts: Tensor | None, device: torch.device) -> Tensor | None:
    """The per-class counts summed over all processes (a process may have no batch)."""
    if _rank_world()[1] == 1:
        return None if counts is None else counts.cpu()
    width = torch.tensor([0 if counts is None else counts.shape[1]], device=device)
    dist.all_reduce(width, op=dist.ReduceOp.MAX)
    total = torch.zeros(2, int(width), dtype=torch.float64, device=device)
    if counts is not None:
        total[:, : counts.shape[1]] = counts
    dist.all_reduce(total)
    return total.cpu() if total.shape[1] > 0 else None


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _rng_state() -> dict[str, Any]:
    kind, key, pos, has_gauss, gauss = cast(
        tuple[str, np.ndarray, int, int, float], np.random.get_state()
    )
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Train a new model, tracking its error and negative flips against the old one.

    Args:
        model: the new model, on the device to train on (batches are moved there).
        config: the run's :class:`TrainConfig`.
        loss: ``nn.Module`` called as ``loss(new_logits, old_logits, target)`` returning a
            scalar; ``None``: cross-entropy.
        teacher: gives ``old_logits`` for each batch (see :mod:`.teachers`); ``None``: the
            loss gets ``old_logits=None``. When ``old_val_logits`` is not given, the
            teacher also gives the old model's validation logits, once, at the start;
            when its outputs do not have one column per class of the new model (a teacher
            of old embeddings), the validation NFR is not tracked (NaN).
        old_val_logits: ``(len(val), C)`` old-model logits in validation-set order, for
            the per-epoch NFR; without them and without a teacher ``val_nfr`` is NaN.
        console: where the progress bars are drawn (``config.progress``); ``None``: rich's
            global console (standard output).

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> from graceful.training import OnlineTeacher
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 4, generator=g)
        >>> data = TensorDataset(x, (x[:, 0] > 0).long(), torch.arange(64))
        >>> old = torch.nn.Linear(4, 2)
        >>> _ = torch.manual_seed(1)
        >>> trainer = Trainer(torch.nn.Linear(4, 2), TrainConfig(epochs=2, batch_size=16,
        ...                   progress=False, select="best_error"), teacher=OnlineTeacher(old))
        >>> result = trainer.fit(data, data)
        >>> print(*sorted(result.history[0]))  # doctest: +NORMALIZE_WHITESPACE
        best_epoch collapse_signs collapsed epoch lr predicted_classes seconds top_class
        top_class_share train_loss val_error val_error_old val_nfr val_seconds
        >>> result.selected, result.best_epoch in (0, 1), trainer.predict(data).shape
        ('best_error', True, torch.Size([64, 2]))
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        loss: nn.Module | None = None,
        teacher: Teacher | None = None,
        old_val_logits: Tensor | None = None,
        console: Console | None = None,
    ) -> None:
        self.model: nn.Module = check_instance("model", model, nn.Module, "a torch.nn.Module")
        self.config: TrainConfig = check_instance("config", config, TrainConfig)
        self.loss: nn.Module = check_callable("loss", loss, optional=True) or _CrossEntropy()
        self.teacher: Teacher | None = check_callable("teacher", teacher, optional=True)
        if old_val_logits is not None and (
            not isinstance(old_val_logits, Tensor) or old_val_logits.ndim != 2
        ):
            raise fail("old_val_logits", "a 2-D tensor (N, C)", old_val_logits)
        self.old_val_logits = old_val_logits
        self.console: Console | None = check_instance(
            "console", console, (Console, type(None)), "a rich Console or None"
        )
        self.result: TrainResult | None = None

    @property
    def history(self) -> list[dict[str, float]]:
        """The last :meth:`fit`'s per-epoch history (empty before it)."""
        return [] if self.result is None else self.result.history

    @property
    def checkpoint_path(self) -> Path | None:
        """``checkpoint_dir/last.pt``, or ``None`` without a checkpoint directory."""
        if self.config.checkpoint_dir is None:
            return None
        return Path(self.config.checkpoint_dir) / _CHECKPOINT

    # -- public API ----------------------------------------------------------------------

    def fit(
        self, train: Dataset[Any], val: Dataset[Any] | None = None, *, resume: bool = True
    ) -> TrainResult:
        """Train for ``config.epochs`` epochs and restore the selected epoch's weights.

        Args:
            train: items ``(x, y, id)``.
            val: items ``(x, y, id)``; required unless ``config.select == "last"``.
            resume: continue from ``checkpoint_dir/last.pt`` when it exists (its run
                settings must equal ``config``'s); ``False`` starts over and overwrites it.

        Returns:
            A :class:`TrainResult`.

        Raises:
            InputError: naming the argument or the checkpoint file at fault.
        """
        cfg = self.config
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        rank, world = _rank_world()
        device = _model_device(self.model)
        old_val = self._old_val_logits(val, device)
        if val is None and cfg.select != "last":
            raise InputError(f"Expected argument `val` for select={cfg.select!r}, but got None")
        if cfg.select in ("best_nfr", "best_error_then_nfr") and old_val is None:
            raise InputError(
                f"Expected argument `old_val_logits` or a teacher for select={cfg.select!r}"
            )

        # Each process gets its own dropout/augmentation stream; data order is seeded apart.
        seed_everything((cfg.seed + rank) % 2**32)
        net: nn.Module = self.model
        if world > 1:
            net = DistributedDataParallel(self.model)
        optimizer = self._optimizer()
        steps = len(self._train_loader(train, 0))
        scheduler = self._scheduler(optimizer, steps * cfg.epochs)
        first_check = cfg.first_collapse_check(steps)

        history: list[dict[str, float]] = []
        best_state: dict[str, Tensor] | None = None
        collapse: str | None = None  # the message of the first collapsed epoch
        start = 0
        path = self.checkpoint_path
        if path is not None and resume and path.exists():
            ckpt = self._load_checkpoint(path)
            self.model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if len(ckpt["rng"]) != world:
                raise InputError(
                    f"Checkpoint `{path}` was written by {len(ckpt['rng'])} processes, but this "
                    f"run has {world}; use resume=False or another checkpoint_dir"
                )
            _set_rng_state(ckpt["rng"][rank])
            history = list(ckpt["history"])
            best_state = ckpt["best_state"]
            start = int(ckpt["epochs_done"])

            collapse = ckpt.get("collapse")
            if cfg.on_collapse == "stop" and collapse is not None:
                start = cfg.epochs  # the run stopped at its collapsed epoch: nothing to resume

        step = OptimizerStep(optimizer, max_grad_norm=cfg.max_grad_norm)
        show = cfg.progress and rank == 0
        with progress_bar(disable=not show, console=self.console) as progress:
            for epoch in range(start, cfg.epochs):
                task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps)
                seconds, train_loss = self._train_epoch(
                    net, step, scheduler, train, epoch, device, partial(progress.advance, task)
                )
                tic = time.perf_counter()
                figures = self._validate(val, old_val, device)
                val_seconds = time.perf_counter() - tic
                spread = figures.spread()
                signs = self._collapse_reason(epoch, first_check, figures, spread)
                # A collapse persists: the signs must show in two checked epochs in a row (or
                # in the last), so the transient spike of a high learning rate is not one.
                last = epoch == cfg.epochs - 1
                previous = bool(history) and bool(history[-1].get("collapse_signs", 0))
                reason = signs if signs is not None and (previous or last) else None
                entry: dict[str, float] = {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_error": figures.error,
                    "val_nfr": figures.nfr,
                    "val_error_old": figures.old_error,
                    "top_class": math.nan if spread is None else spread.top_class,
                    "top_class_share": math.nan if spread is None else spread.top_share,
                    "predicted_classes": math.nan if spread is None else spread.predicted,
                    "collapse_signs": int(signs is not None),
                    "collapsed": int(reason is not None),
                    "lr": float(optimizer.param_groups[0]["lr"]),
                    "seconds": seconds,
                    "val_seconds": val_seconds,
                }
                history.append(entry)
                entry["best_epoch"] = select_epoch(history, cfg.select)
                if cfg.select != "last" and entry["best_epoch"] == epoch:
                    best_state = _cpu_state(self.model)
                progress.update(
                    task,
                    description=f"epoch {epoch + 1}/{cfg.epochs} loss {train_loss:.4f} "
                    f"err {figures.error:.4f} nfr {figures.nfr:.4f}"
                    + (" collapsed" if reason is not None else ""),
                )
                message = None if reason is None else f"epoch {epoch}: training collapsed: {reason}"
                if message is not None and cfg.on_collapse == "raise":
                    raise TrainingCollapsedError(message)  # before the checkpoint: resumes raise
                if message is not None and rank == 0:
                    stop = ""
                    if cfg.on_collapse == "stop":
                        stop = (
                            f"; training stopped, the model keeps epoch "
                            f"{int(entry['best_epoch'])} (select={cfg.select!r})"
                        )
                    warnings.warn(message + stop, TrainingCollapseWarning, stacklevel=2)
                collapse = collapse or message
                if path is not None:
                    self._save_checkpoint(
                        path, epoch + 1, optimizer, scheduler, history, best_state, rank, collapse
                    )
                if message is not None and cfg.on_collapse == "stop":
                    break

        best_epoch = int(history[-1]["best_epoch"])
        if cfg.select != "last" and best_state is not None:
            self.model.load_state_dict(best_state)
        self.result = TrainResult(
            history=history,
            best_epoch=best_epoch,
            selected=cfg.select,
            checkpoint=None if path is None else str(path),
            collapse=collapse,
        )
        return self.result

    def predict(self, dataset: Dataset[Any]) -> Tensor:
        """The model's float32 logits on ``dataset`` (items ``(x, y, id)``), in its order, on CPU.

        :func:`~graceful.training.predict` in batches of ``config.batch_size``. Every
        process predicts the whole dataset.
        """
        logits, _ids = _collect(
            self.model, dataset, batch_size=self.config.batch_size, name="dataset"
        )
        return logits.float()

    # -- pieces of fit -------------------------------------------------------------------

    def _old_val_logits(self, val: Dataset[Any] | None, device: torch.device) -> Tensor | None:
        if val is None:
            return None
        n = len(cast(Sequence[Any], val))
        old = self.old_val_logits
        if old is None and self.teacher is not None:
            old = self._teacher_logits(self.teacher, val)
        if old is None:
            return None
        if old.ndim != 2 or old.shape[0] != n:
            raise InputError(
                f"Expected argument `old_val_logits` to have shape ({n}, C), "
                f"but got {tuple(old.shape)}"
            )
        return old.detach().to(device)

    @torch.no_grad()
    def _teacher_logits(self, teacher: Teacher, val: Dataset[Any]) -> Tensor:
        device = _model_device(self.model)
        loader = DataLoader(val, batch_size=self.config.batch_size, shuffle=False)
        out = []
        for batch in loader:
            x, _y, ids = _unpack(batch, "val")
            try:
                out.append(teacher(x.to(device), ids.to(device)).float())
            except InputError as exc:
                raise InputError(
                    f"Could not get the old model's logits on `val` from the teacher "
                    f"({exc}); pass `old_val_logits`"
                ) from None
        return torch.cat(out)

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )

    def _scheduler(
        self, optimizer: torch.optim.Optimizer, total_steps: int
    ) -> torch.optim.lr_scheduler.LRScheduler:
        cfg = self.config
        if cfg.schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=cfg.lr, total_steps=total_steps
            )
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)

    def _train_loader(self, train: Dataset[Any], epoch: int) -> DataLoader[Any]:
        cfg = self.config
        rank, world = _rank_world()
        generator = epoch_generator(cfg.seed, epoch)
        sampler: RandomSampler | DistributedSampler[Any]
        if world > 1:
            sampler = DistributedSampler(
                train, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed
            )
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(cast(Sized, train), generator=generator)
        # The loader's own generator seeds worker processes: also (seed, epoch) only.
        return DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, generator=generator)

    def _train_epoch(
        self,
        net: nn.Module,
        step: OptimizerStep,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        train: Dataset[Any],
        epoch: int,
        device: torch.device,
        on_batch: Callable[[], None],
    ) -> tuple[float, float]:
        """One pass (:func:`~graceful.training.train_epoch`); (seconds, mean loss over samples)."""
        net.train()
        _sync(device)
        tic = time.perf_counter()
        mean_loss = train_epoch(
            net,
            self._batches(train, epoch, device),
            self._objective,
            step,
            scheduler,
            epoch=epoch,
            on_batch=on_batch,
            distributed=_rank_world()[1] > 1,
            advice="lower `TrainConfig.lr`, the loss weight, or set `TrainConfig.max_grad_norm`",
        )
        _sync(device)
        return time.perf_counter() - tic, mean_loss

    def _batches(self, train: Dataset[Any], epoch: int, device: torch.device) -> Iterator[Batch]:
        """The epoch's batches on ``device``, with the teacher's outputs."""
        for batch in self._train_loader(train, epoch):
            x, y, ids = _unpack(batch, "train")
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            ids = ids.to(device)
            old = None if self.teacher is None else self.teacher(x, ids)
            yield Batch(x, y, ids, old)

    def _objective(self, new: Any, batch: Batch) -> Tensor:
        # new: logits, or an EmbeddingOutput for embedding losses
        loss: Tensor = self.loss(new, batch.old, batch.y)
        return loss

    def _collapse_reason(
        self, epoch: int, first_check: int, figures: _Validation, spread: _Spread | None
    ) -> str | None:
        """Why the epoch's validation shows a collapsed run (:func:`collapse_reason`), or None."""
        counts = figures.counts
        if epoch < first_check or counts is None or spread is None or math.isnan(figures.error):
            return None
        old_error = None if math.isnan(figures.old_error) else figures.old_error
        return collapse_reason(
            counts[0],
            counts[1],
            error=figures.error,
            old_error=old_error,
            margin=self.config.collapse_margin,
        )

    @torch.no_grad()
    def _validate(
        self, val: Dataset[Any] | None, old_val: Tensor | None, device: torch.device
    ) -> _Validation:
        """Error, NFR, old error and class counts on ``val``; sharded, synced exactly."""
        if val is None:
            return _Validation()
        # The torchmetrics classes load on first use, as in graceful.metrics: importing
        # torchmetrics costs more than a second that importing this module should not pay.
        from graceful.metrics import ErrorRate, ModelUpdateMetrics

        rank, world = _rank_world()
        indices = list(range(rank, len(cast(Sequence[Any], val)), world))
        errors = ErrorRate().to(device)
        flips = None if old_val is None else ModelUpdateMetrics().to(device)
        position = torch.tensor(indices, dtype=torch.int64, device=device)
        counts: Tensor | None = None
        offset = 0
        shard = _outputs(
            self.model, Subset(val, indices), batch_size=self.config.batch_size, name="val"
        )
        with closing(shard) as batches:  # closing it restores the model's mode at once
            for new, target, _ids in batches:
                y = cast(Tensor, target).to(device)
                if flips is not None and old_val is not None and old_val.shape[1] != new.shape[1]:
                    if self.old_val_logits is not None:
                        raise InputError(
                            f"Expected argument `old_val_logits` to have {new.shape[1]} columns"
                            f" like the model's logits, but got {old_val.shape[1]}"
                        )
                    # the teacher gives something else than logits over the same classes
                    # (e.g. old embeddings for a compatibility loss): no NFR to track
                    flips, old_val = None, None
                if flips is not None and old_val is not None:
                    rows = position[offset : offset + y.shape[0]]
                    flips.update(y, old_val[rows], new)
                else:
                    errors.update(y, new)
                counts = _count_classes(counts, y, new)
                offset += int(y.shape[0])
        totals = _sum_counts(counts, device)
        if flips is not None:
            values = flips.compute()
            return _Validation(
                float(values["error_rate_new"]),
                float(values["negative_flip_rate"]),
                float(values["error_rate_old"]),
                totals,
            )
        return _Validation(float(errors.compute()), counts=totals)

    # -- checkpoints ---------------------------------------------------------------------

    def _run_settings(self) -> dict[str, Any]:
        return {name: getattr(self.config, name) for name in _RUN_FIELDS}

    def _save_checkpoint(
        self,
        path: Path,
        epochs_done: int,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        history: list[dict[str, float]],
        best_state: dict[str, Tensor] | None,
        rank: int,
        collapse: str | None,
    ) -> None:
        world = _rank_world()[1]
        rng_states: list[Any] = [_rng_state()]
        if world > 1:  # every process's generators, so that each resumes its own
            rng_states = [None] * world
            dist.all_gather_object(rng_states, _rng_state())
        if rank == 0:
            payload = {
                "format": _FORMAT,
                "epochs_done": epochs_done,
                "config": self._run_settings(),
                "model": _cpu_state(self.model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_states,
                "history": history,
                "best_state": best_state,
                "collapse": collapse,
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            with atomic_open(path, "wb") as handle:
                cast(IO[bytes], handle).write(buffer.getvalue())
        if world > 1:
            dist.barrier()

    def _load_checkpoint(self, path: Path) -> dict[str, Any]:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any failure to read is the file's fault
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"Could not read checkpoint file `{path}`: {reason}") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
            raise InputError(f"Expected file `{path}` to be a graceful training checkpoint")
        saved = ckpt["config"]
        for name, value in self._run_settings().items():
            if name not in saved:
                raise InputError(
                    f"Checkpoint `{path}` was written by an earlier graceful that had no "
                    f"`config.{name}`; use resume=False or another checkpoint_dir"
                )
            if saved.get(name) != value:
                raise InputError(
                    f"Expected `config.{name}` to be {saved.get(name)!r} as in checkpoint "
                    f"`{path}`, but got {value!r}; use resume=False or another checkpoint_dir"
                )
        return cast(dict[str, Any], ckpt)


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so per-epoch timings measure the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
