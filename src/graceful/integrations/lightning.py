r"""Regression-aware training and update metrics in Lightning.

- :class:`UpdateMetricsCallback` logs the negative flip rate and the other update metrics
  of the model under training against the old model at every validation epoch
  (``val_negative_flip_rate``, ``val_positive_flip_rate``, ``val_error_rate_new``, ...).
  The counts accumulate in a :class:`graceful.metrics.ModelUpdateMetrics` (a torchmetrics
  class) over the whole validation set and are summed across processes before the
  metrics are computed, so the result under DDP is that of one process seeing all the data.
- :class:`RegressionLossMixin` gives a ``LightningModule`` a ``training_step`` that
  trains with a graceful objective, ``criterion(new_logits, old_logits, target)``,
  against a :class:`~graceful.training.Teacher` (the old model online, or a
  :class:`~graceful.training.CachedTeacher` table keyed by sample id).

Batches are graceful's ``(x, y, id)`` (or ``(x, y)`` for the callback and an online
teacher); override :meth:`RegressionLossMixin.unpack_batch` (or pass ``unpack`` to the
callback) for another layout.

Needs the ``lightning`` extra: ``pip install 'graceful[lightning]'``.

Example:
    >>> import lightning as L, torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from graceful.losses import recommended_pct_loss
    >>> from graceful.training import OnlineTeacher
    >>> class Classifier(RegressionLossMixin, L.LightningModule):
    ...     def __init__(self, old):
    ...         super().__init__()
    ...         self.net = torch.nn.Linear(4, 3)
    ...         self.configure_regression(recommended_pct_loss(), OnlineTeacher(old))
    ...     def forward(self, x):
    ...         return self.net(x)
    ...     def configure_optimizers(self):
    ...         return torch.optim.SGD(self.parameters(), lr=0.1)
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(32, 4)
    >>> data = TensorDataset(x, (x[:, 0] > 0).long(), torch.arange(32))
    >>> old = torch.nn.Linear(4, 3)
    >>> trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False,
    ...     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    ...     callbacks=[UpdateMetricsCallback(old)])
    >>> trainer.fit(Classifier(old), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    >>> sorted(k for k in trainer.callback_metrics if "flip_rate" in k)[:2]
    ['val_negative_flip_rate', 'val_positive_flip_rate']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from graceful._extras import require
from graceful._validation import check_callable, check_instance, check_int, check_str, fail
from graceful.errors import InputError

require("lightning", "graceful.integrations.lightning")

import lightning as L  # noqa: E402, N812

from graceful.metrics import ModelUpdateMetrics  # noqa: E402
from graceful.training import OnlineTeacher, Teacher  # noqa: E402
from graceful.training.teachers import EnsembleTeacher  # noqa: E402

from ._common import logits_of, objective  # noqa: E402

__all__ = ["RegressionLossMixin", "UpdateMetricsCallback"]


def _unpack(batch: Any) -> tuple[Any, Tensor, Tensor | None]:
    """``(x, y)`` or ``(x, y, id)`` -> ``(x, y, id or None)``."""
    if isinstance(batch, Sequence) and not isinstance(batch, str) and len(batch) in (2, 3):
        ids = batch[2] if len(batch) == 3 else None
        return batch[0], batch[1], ids
    length = f" of length {len(batch)}" if isinstance(batch, Sequence) else ""
    raise InputError(
        f"Expected a batch (x, y) or (x, y, id), but got {type(batch).__name__}{length}"
    )


def _teacher_models(teacher: Teacher) -> list[nn.Module]:
    """The models an online teacher runs (to move them to the module's device)."""
    if isinstance(teacher, OnlineTeacher):
        return [teacher.model]
    if isinstance(teacher, EnsembleTeacher):
        return [m for member in teacher.members for m in _teacher_models(member)]
    return []


class UpdateMetricsCallback(L.Callback):
    """Logs the update metrics against the old model at the end of every validation epoch.

    For each validation batch the old model (frozen, eval mode, moved to the module's
    device) and the module itself run on the inputs, and the counts of a
    :class:`~graceful.metrics.ModelUpdateMetrics` grow; at the epoch's end every metric is
    logged as ``<prefix><name>`` and the counts are reset. When ``validation_step``
    returns the logits (a tensor, or a dict with ``"logits"``) they are used instead of
    running the module a second time. Sanity-check batches are not counted.

    Args:
        old_model: the old model, called as ``old_model(x)``; it returns logits or an
            output with ``.logits``.
        unpack: ``batch -> (x, y)``; default: the first two items of the batch.
        prefix: of the logged names.
        top_k: right when the target is among the ``top_k`` best classes.

    Attributes:
        metrics: the accumulating :class:`~graceful.metrics.ModelUpdateMetrics`.
        history: the metrics of every validation epoch, as floats, in order.
    """

    def __init__(
        self,
        old_model: nn.Module,
        *,
        unpack: Callable[[Any], tuple[Any, Tensor]] | None = None,
        prefix: str = "val_",
        top_k: int = 1,
    ) -> None:
        super().__init__()
        self.old_model = check_instance("old_model", old_model, nn.Module, "a torch.nn.Module")
        self.old_model.eval().requires_grad_(False)
        self.unpack = check_callable("unpack", unpack, optional=True)
        self.prefix = prefix if prefix == "" else check_str("prefix", prefix)
        self.metrics = ModelUpdateMetrics(top_k=check_int("top_k", top_k, low=1))
        self.history: list[dict[str, float]] = []

    def _inputs(self, batch: Any) -> tuple[Any, Tensor]:
        if self.unpack is not None:
            x, y = self.unpack(batch)
            return x, y
        x, y, _ = _unpack(batch)
        return x, y

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Move the old model and the counts to the module's device and reset the counts."""
        self.old_model.to(pl_module.device)
        self.metrics = self.metrics.to(pl_module.device)
        self.metrics.reset()

    @torch.no_grad()
    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the flips of one validation batch."""
        if trainer.sanity_checking:
            return
        x, y = self._inputs(batch)
        if isinstance(outputs, Tensor) or (isinstance(outputs, dict) and "logits" in outputs):
            new = logits_of(outputs, "validation_step")
        else:
            new = logits_of(pl_module(x), "the module")
        old = logits_of(self.old_model(x), "the old model")
        self.metrics.update(y, old.float(), new.detach().float())

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Compute the metrics (summed over processes), log them and reset the counts."""
        if trainer.sanity_checking:
            self.metrics.reset()
            return
        values = self.metrics.compute()
        self.metrics.reset()
        self.history.append({name: float(value) for name, value in values.items()})
        pl_module.log_dict(
            {f"{self.prefix}{name}": value.float() for name, value in values.items()},
            on_epoch=True,
            sync_dist=False,  # already the global counts
        )


class RegressionLossMixin:
    """A ``training_step`` that trains a ``LightningModule`` with a graceful objective.

    It also gives a ``validation_step`` (the cross-entropy as ``val_loss``, the logits
    returned for :class:`UpdateMetricsCallback`); define your own to replace it.

    Put it before :class:`lightning.LightningModule` in the bases and call
    :meth:`configure_regression` in ``__init__``. ``training_step`` unpacks the batch
    (:meth:`unpack_batch`, default ``(x, y, id)`` or ``(x, y)``), runs ``self(x)``, asks
    the teacher for the old logits (``teacher(x, ids)``), logs ``train_loss`` and returns
    the objective. An online teacher's model is moved to the module's device when fitting
    starts; the teacher is not a submodule, so it is neither trained nor checkpointed.
    """

    criterion: nn.Module
    teacher: Teacher

    def configure_regression(self, criterion: nn.Module, teacher: Teacher) -> None:
        """Set the objective and the teacher.

        Args:
            criterion: called as ``criterion(new_logits, old_logits, target)``; a bare
                :class:`~graceful.losses.RegressionLoss` is added to the cross-entropy,
                any other module is the whole objective.
            teacher: a :class:`~graceful.training.Teacher`: ``OnlineTeacher(old_model)``,
                a :class:`~graceful.training.CachedTeacher` (batches then carry ids), or an
                :class:`~graceful.training.EnsembleTeacher`.
        """
        # object.__setattr__: the loss is not a submodule of the model (no parameters of
        # its own to train or checkpoint; BCT-style buffers move with the batch device)
        if not isinstance(teacher, Teacher):
            raise fail("teacher", "a graceful Teacher (called as teacher(x, ids))", teacher)
        object.__setattr__(self, "criterion", objective(criterion))
        object.__setattr__(self, "teacher", teacher)

    def unpack_batch(self, batch: Any) -> tuple[Any, Tensor, Tensor | None]:
        """``batch -> (x, y, ids or None)``; override for another layout."""
        return _unpack(batch)

    def on_fit_start(self) -> None:
        """Move an online teacher's models to the module's device."""
        module = cast(L.LightningModule, self)
        for model in _teacher_models(self.teacher):
            model.to(module.device)
        super_hook = getattr(super(), "on_fit_start", None)
        if super_hook is not None:
            super_hook()

    def regression_loss(self, logits: Tensor, x: Any, target: Tensor, ids: Tensor | None) -> Tensor:
        """The objective of new logits against the teacher's logits for ``(x, ids)``."""
        if ids is None:
            if not isinstance(self.teacher, (OnlineTeacher, EnsembleTeacher)):
                raise InputError(
                    "Expected batches (x, y, id) for a cached teacher, but a batch has no ids"
                )
            ids = torch.arange(target.shape[0], device=target.device)  # not read online
        old = self.teacher(x, ids)
        return cast(Tensor, self.criterion(logits, old.to(logits.device), target))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The objective on one batch, logged as ``train_loss``."""
        module = cast(L.LightningModule, self)
        x, y, ids = self.unpack_batch(batch)
        loss = self.regression_loss(logits_of(module(x), "the module"), x, y, ids)
        module.log("train_loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        """Logs the task loss (cross-entropy) as ``val_loss``; returns ``{"logits": ...}``.

        :class:`UpdateMetricsCallback` reads the returned logits, so the module runs once.
        """
        module = cast(L.LightningModule, self)
        x, y, _ = self.unpack_batch(batch)
        logits = logits_of(module(x), "the module")
        module.log("val_loss", torch.nn.functional.cross_entropy(logits, y), on_epoch=True)
        return {"logits": logits.detach()}
