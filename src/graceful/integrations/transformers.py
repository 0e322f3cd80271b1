r"""Regression-aware fine-tuning with the Hugging Face ``Trainer``.

:class:`RegressionAwareTrainer` is a :class:`transformers.Trainer` whose training loss is
a graceful objective, ``criterion(new_logits, old_logits, labels)`` (for instance
:func:`~graceful.losses.recommended_pct_loss`), against the old model's logits:

- **cached** (the default): the old model runs once over the training set when
  :meth:`~RegressionAwareTrainer.train` starts, and each batch looks its rows up by an
  index column of the dataset (``index_column``, ``"idx"`` by default; add one with
  ``dataset.add_column("idx", range(len(dataset)))``). The table is a
  :class:`~graceful.training.CachedTeacher`: build it yourself with
  :func:`cache_old_logits` (or from another pipeline) and pass it as ``old_logits`` to
  share it between runs;
- **online** (``cache_old_logits=False``): the old model runs on every batch, for inputs
  that change between epochs (augmentation).

The old model reads the same model inputs as the new one (the same tokenizer). Evaluation
reports the model's own task loss (``eval_loss``); :class:`UpdateMetrics`, passed as
``compute_metrics``, adds the negative flip rate and the other update metrics against the
old model's predictions of the evaluation set at every evaluation (``eval_negative_flip_rate``
can be ``metric_for_best_model``). Both work under ``accelerate`` unchanged: the old model
and its table live in every process, and the Trainer gathers the evaluation predictions
before ``compute_metrics`` sees them.

Needs the ``transformers`` extra: ``pip install 'graceful[transformers]'``.

Example:
    >>> import tempfile, torch, transformers
    >>> from graceful.losses import recommended_pct_loss
    >>> config = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=16, num_labels=2)
    >>> _ = torch.manual_seed(0)
    >>> old, new = (transformers.BertForSequenceClassification(config) for _ in range(2))
    >>> rows = [{"input_ids": [1, 5 + i % 7, 2], "label": i % 2, "idx": i} for i in range(8)]
    >>> args = transformers.TrainingArguments(tempfile.mkdtemp(), max_steps=2,
    ...     per_device_train_batch_size=4, report_to=[], use_cpu=True, save_strategy="no",
    ...     disable_tqdm=True)
    >>> trainer = RegressionAwareTrainer(model=new, args=args, train_dataset=rows,
    ...     criterion=recommended_pct_loss(), old_model=old)
    >>> trainer.remove_callback(transformers.PrinterCallback)  # quiet here
    >>> _ = trainer.train()
    >>> len(trainer.old_logits), trainer.old_logits.num_classes
    (8, 2)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from graceful._extras import require
from graceful._validation import check_bool, check_int, check_str, fail
from graceful.errors import InputError

require("transformers", "graceful.integrations.transformers")

import transformers  # noqa: E402

from graceful.metrics import model_update_metrics  # noqa: E402
from graceful.training import CachedTeacher  # noqa: E402

from ._common import logits_of, objective  # noqa: E402

__all__ = ["RegressionAwareTrainer", "UpdateMetrics", "cache_old_logits"]

_LABELS = ("label", "labels", "label_ids")


def _model_columns(model: nn.Module) -> set[str]:
    """The keyword arguments of ``model.forward``, less the labels (the old model needs none)."""
    return set(inspect.signature(model.forward).parameters) - set(_LABELS)


@torch.no_grad()
def cache_old_logits(
    old_model: nn.Module,
    dataset: Any,
    *,
    index_column: str = "idx",
    data_collator: Callable[[list[dict[str, Any]]], Mapping[str, Any]] | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> CachedTeacher:
    """Run the old model once over ``dataset`` and keep its logits by ``index_column``.

    Args:
        old_model: a Transformers model (or any module whose ``forward`` takes the
            dataset's columns as keywords and returns logits or an output with ``.logits``).
        dataset: rows as mappings: a ``datasets.Dataset``, a list of dicts, a torch
            dataset of dicts. The columns the model's ``forward`` takes are collated; the
            rest (text, labels) are dropped.
        index_column: the integer column that names each row, unique.
        data_collator: collates the rows (default
            :func:`transformers.default_data_collator`; pass a
            ``DataCollatorWithPadding`` for rows of different lengths).
        batch_size: rows per forward pass.
        device: where to run (default: where the model's parameters are).

    Returns:
        A :class:`~graceful.training.CachedTeacher` of float32 logits keyed by the index.

    Raises:
        InputError: a row without the index column, or repeated indices.

    Example:
        >>> import torch, transformers
        >>> config = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
        ...     num_attention_heads=2, intermediate_size=16, num_labels=3)
        >>> old = transformers.BertForSequenceClassification(config)
        >>> rows = [{"input_ids": [1, 4, 2], "text": "a b", "idx": 10 + i} for i in range(5)]
        >>> table = cache_old_logits(old, rows, batch_size=2)
        >>> table.ids.tolist(), table.num_classes
        ([10, 11, 12, 13, 14], 3)
    """
    index_column = check_str("index_column", index_column)
    batch_size = check_int("batch_size", batch_size, low=1)
    collate = data_collator if data_collator is not None else transformers.default_data_collator
    keep = _model_columns(old_model)

    def collate_rows(rows: list[Mapping[str, Any]]) -> tuple[Mapping[str, Any], torch.Tensor]:
        for row in rows:
            if index_column not in row:
                raise InputError(
                    f"Expected every row of `dataset` to have the index column"
                    f" `{index_column}`, but a row has only {sorted(row)}"
                )
        ids = torch.as_tensor([int(row[index_column]) for row in rows], dtype=torch.int64)
        return collate([{k: v for k, v in row.items() if k in keep} for row in rows]), ids

    if device is None:
        first = next(iter(old_model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = old_model.training
    old_model.eval()
    all_ids, all_logits = [], []
    try:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_rows)
        for inputs, ids in loader:
            moved = {
                k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()
            }
            all_logits.append(logits_of(old_model(**moved), "the old model").detach().float().cpu())
            all_ids.append(ids)
    finally:
        old_model.train(was_training)
    if not all_ids:
        raise fail("dataset", "a dataset with at least one row", dataset)
    return CachedTeacher(torch.cat(all_ids), torch.cat(all_logits))


class RegressionAwareTrainer(transformers.Trainer):
    """A :class:`transformers.Trainer` that trains with a graceful regression-aware objective.

    Every argument of :class:`transformers.Trainer` is accepted; the keyword-only ones
    below are graceful's. Exactly one of ``old_model`` and ``old_logits`` is given.

    Args:
        criterion: the objective, called as ``criterion(new_logits, old_logits, labels)``;
            a bare :class:`~graceful.losses.RegressionLoss` is added to the cross-entropy
            (``PositiveCongruentLoss(criterion)``), any other module is the whole
            objective (:func:`~graceful.losses.recommended_pct_loss`).
        old_model: the old model; frozen and put in eval mode, moved to the new model's
            device on first use.
        old_logits: a ready table of the old model's training-set logits by index.
        index_column: the integer column of the training set that keys the table; kept
            in the batches (the Trainer drops columns the model does not take) and removed
            before the model sees them.
        cache_old_logits: with ``old_model``, build the table once when training starts
            (``True``) or run the old model on every batch (``False``).

    Attributes:
        old_logits: the table (``None`` when online, or until training starts).

    The loss is a per-batch mean, so the Trainer divides it by the gradient accumulation
    steps as usual. During evaluation the model's own loss is reported.
    """

    def __init__(
        self,
        *args: Any,
        criterion: nn.Module,
        old_model: nn.Module | None = None,
        old_logits: CachedTeacher | None = None,
        index_column: str = "idx",
        cache_old_logits: bool = True,
        **kwargs: Any,
    ) -> None:
        self.criterion = objective(criterion)
        if (old_model is None) == (old_logits is None):
            raise InputError(
                "Expected exactly one of the arguments `old_model` and `old_logits`, but got"
                f" {'both' if old_model is not None else 'neither'}"
            )
        if old_model is not None and not isinstance(old_model, nn.Module):
            raise fail("old_model", "a torch.nn.Module", old_model)
        if old_logits is not None and not isinstance(old_logits, CachedTeacher):
            raise fail("old_logits", "a graceful.training.CachedTeacher", old_logits)
        self.index_column = check_str("index_column", index_column)
        self.cache = check_bool("cache_old_logits", cache_old_logits)
        self.old_model = old_model
        self.old_logits = old_logits
        if old_model is not None:
            old_model.eval().requires_grad_(False)
        super().__init__(*args, **kwargs)
        # the objective is a per-batch mean: let the Trainer divide it by the accumulation
        # steps, and do not ask the model for num_items_in_batch
        self.loss_is_scaled_for_ga = False
        self.model_accepts_loss_kwargs = False
        self._old_device: torch.device | None = None

    @property
    def online(self) -> bool:
        """Whether the old model runs on every batch (no table)."""
        return self.old_logits is None and not self.cache

    def _set_signature_columns_if_needed(self) -> None:
        # keep the index column when the Trainer drops the columns the model does not take
        super()._set_signature_columns_if_needed()
        if self.old_logits is not None or self.cache:
            columns = self._signature_columns
            if columns is not None and self.index_column not in columns:
                columns.append(self.index_column)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """Build the old model's table when it is due, then :meth:`transformers.Trainer.train`."""
        if self.old_logits is None and self.cache and self.old_model is not None:
            if self.train_dataset is None:
                raise InputError("Expected argument `train_dataset`, but it is None")
            self._move_old_model()
            self.old_logits = cache_old_logits(
                self.old_model,
                self.train_dataset,
                index_column=self.index_column,
                data_collator=self.data_collator,
                batch_size=self.args.per_device_eval_batch_size,
                device=self.args.device,
            )
        return super().train(*args, **kwargs)

    def _move_old_model(self) -> None:
        if self.old_model is None:  # only called when there is one
            return
        if self._old_device != self.args.device:
            self.old_model.to(self.args.device)
            self._old_device = self.args.device

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        """The objective on a training batch; the model's own loss on an evaluation batch."""
        inputs = dict(inputs)
        ids = inputs.pop(self.index_column, None)
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels", None)
        if labels is None:
            raise InputError("Expected each training batch to have `labels`, but it has none")
        outputs = model(**inputs)
        new_logits = logits_of(outputs)
        if self.old_logits is not None:
            if not isinstance(ids, torch.Tensor):
                raise InputError(
                    f"Expected each training batch to have the index column"
                    f" `{self.index_column}`, but it has only {sorted(inputs)}"
                )
            old = self.old_logits(new_logits, ids.to(new_logits.device))
        elif self.old_model is not None:  # __init__ requires old_model or old_logits
            self._move_old_model()
            with torch.no_grad():
                old = logits_of(self.old_model(**inputs), "the old model").detach().float()
        else:
            raise InputError("Expected an old_model or old_logits, but the trainer has neither")
        loss = self.criterion(new_logits, old, labels)
        return (loss, outputs) if return_outputs else loss


class UpdateMetrics:
    """``compute_metrics`` for the Trainer: the update metrics against the old predictions.

    At every evaluation the Trainer calls it with the new model's predictions of the whole
    evaluation set (gathered over processes, in the set's order); it returns
    :func:`graceful.metrics.model_update_metrics` (``negative_flip_rate``,
    ``positive_flip_rate``, ``error_rate_new``, ...), which the Trainer logs with the
    ``eval_`` prefix.

    Args:
        old_predictions: the old model's predictions of the evaluation set, in its order:
            logits ``(N, C)`` (``old_trainer.predict(eval_dataset).predictions``) or labels
            ``(N,)``.
        top_k: right when the target is among the ``top_k`` best classes.
        compute_metrics: your own ``compute_metrics``, whose results are merged in.

    Raises:
        InputError: the evaluation set's size differs from the old predictions'.

    Example:
        >>> import numpy as np
        >>> from transformers import EvalPrediction
        >>> metrics = UpdateMetrics(np.array([0, 1, 1, 2]))
        >>> new = np.eye(3)[[0, 2, 2, 1]]
        >>> out = metrics(EvalPrediction(predictions=new, label_ids=np.array([0, 1, 2, 2])))
        >>> out["negative_flip_rate"], out["error_rate_new"]
        (0.5, 0.5)
    """

    def __init__(
        self,
        old_predictions: Any,
        *,
        top_k: int = 1,
        compute_metrics: Callable[[Any], Mapping[str, float]] | None = None,
    ) -> None:
        if isinstance(old_predictions, tuple):
            old_predictions = old_predictions[0]
        self.old_predictions = np.asarray(old_predictions)
        self.top_k = check_int("top_k", top_k, low=1)
        if compute_metrics is not None and not callable(compute_metrics):
            raise fail("compute_metrics", "callable or None", compute_metrics)
        self.compute_metrics = compute_metrics

    def __call__(self, eval_prediction: Any) -> dict[str, float]:
        """The metrics of one evaluation (a :class:`transformers.EvalPrediction`)."""
        new = eval_prediction.predictions
        if isinstance(new, tuple):
            new = new[0]
        target = eval_prediction.label_ids
        if len(target) != len(self.old_predictions):
            raise InputError(
                f"Expected the evaluation set to have {len(self.old_predictions)} rows, as"
                f" argument `old_predictions` has, but it has {len(target)}"
            )
        values = model_update_metrics(target, self.old_predictions, new, top_k=self.top_k)
        if self.compute_metrics is not None:
            values = {**self.compute_metrics(eval_prediction), **values}
        return values
