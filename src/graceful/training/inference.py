"""Batched inference without gradients: the one way graceful runs a model over data.

:func:`predict` runs a model in eval mode, batch by batch, under :func:`torch.no_grad`, over
either a tensor of inputs or a dataset of ``(x, y, id)`` items, and returns the outputs in
the order of the data; every submodule's train/eval mode is restored afterwards. A model
that returns an :class:`~graceful.embedding.EmbeddingOutput` gives its logits; wrap an
embedding model in :class:`~graceful.embedding.EmbeddingOf` for its embeddings. The
:class:`~graceful.training.Trainer` (validation, ``predict``), the
:class:`~graceful.training.CachedTeacher` and :func:`graceful.lqf.predict` (the same
function) all run through it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeAlias

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from graceful._eval_mode import eval_mode
from graceful._validation import check_instance, check_int, fail
from graceful.embedding import EmbeddingOutput
from graceful.errors import InputError

__all__ = ["predict"]

Data: TypeAlias = "Tensor | Dataset[Any] | np.ndarray[Any, Any]"
"""What :func:`predict` runs a model over: inputs ``(N, ...)`` or ``(x, y, id)`` items."""


def _unpack(batch: Any, name: str) -> tuple[Tensor, Tensor, Tensor]:
    """Split a collated batch into ``(x, y, ids)``; InputError naming ``name`` otherwise."""
    if not isinstance(batch, (list, tuple)) or len(batch) != 3:
        raise InputError(f"Expected the items of `{name}` to be (x, y, id) tuples")
    x, y, ids = batch
    if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32):
        raise InputError(f"Expected the ids of `{name}` to be integers")
    return x, y, ids


def _model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a stateless module."""
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def _logits_of(out: object) -> Tensor:
    """The logits of a model's output: the tensor itself, or an EmbeddingOutput's logits."""
    if isinstance(out, EmbeddingOutput):
        return out.logits
    if not isinstance(out, Tensor):
        raise InputError(
            "Expected the model to return a tensor of logits or an EmbeddingOutput,"
            f" but it returned {type(out).__name__}"
        )
    return out


@torch.no_grad()
def _outputs(
    model: nn.Module,
    data: Tensor | Dataset[Any],
    *,
    batch_size: int,
    num_workers: int = 0,
    name: str = "data",
    to: torch.device | None = None,
) -> Generator[tuple[Tensor, Tensor | None, Tensor | None], None, None]:
    """Yield ``(outputs, y, ids)`` batch by batch, in order, in eval mode and without gradients.

    Inputs move to the model's device; outputs go to ``to`` (``None``: they stay there).
    A tensor's batches have no ``y`` and no ``ids`` (``None``). Consume the generator to
    the end, or close it, to restore the modes.
    """
    device = _model_device(model)
    with eval_mode(model):
        if isinstance(data, Tensor):
            for start in range(0, len(data), batch_size):
                out = _logits_of(model(data[start : start + batch_size].to(device)))
                yield out if to is None else out.to(to), None, None
            return
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        for batch in loader:
            x, y, ids = _unpack(batch, name)
            out = _logits_of(model(x.to(device)))
            yield out if to is None else out.to(to), y, ids


def _collect(
    model: nn.Module, data: Data, *, batch_size: int, num_workers: int = 0, name: str = "data"
) -> tuple[Tensor, Tensor]:
    """:func:`predict`'s outputs and the ids of the rows (a tensor's: its row positions)."""
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_int("batch_size", batch_size, low=1)
    check_int("num_workers", num_workers, low=0)
    if isinstance(data, np.ndarray):
        data = torch.as_tensor(data)
    if isinstance(data, Tensor):
        if data.ndim == 0:
            raise fail(name, "a tensor of inputs (N, ...)", data)
        to = data.device
    elif isinstance(data, Dataset) or hasattr(data, "__getitem__"):
        to = torch.device("cpu")
    else:
        raise fail(name, "a tensor of inputs or a dataset of (x, y, id) items", data)
    outputs, ids = [], []
    batches = _outputs(
        model, data, batch_size=batch_size, num_workers=num_workers, name=name, to=to
    )
    for out, _y, batch_ids in batches:
        outputs.append(out)
        if batch_ids is not None:
            ids.append(batch_ids.to(torch.int64).cpu())
    if not outputs:
        raise InputError(f"Expected `{name}` to hold at least one sample, but it is empty")
    rows = torch.cat(ids) if ids else torch.arange(sum(len(out) for out in outputs))
    return torch.cat(outputs), rows


def predict(
    model: nn.Module, data: Data, *, batch_size: int = 1024, num_workers: int = 0
) -> Tensor:
    """The model's outputs on ``data``, in its order: eval mode, no gradients, batch by batch.

    Every submodule's train/eval mode is restored afterwards. A model returning an
    :class:`~graceful.embedding.EmbeddingOutput` gives its logits (for the embeddings,
    pass :class:`~graceful.embedding.EmbeddingOf` ``(model)``). Inputs are moved to the
    model's device; the outputs keep the model's dtype.

    Args:
        model: any module returning a tensor (or an ``EmbeddingOutput``) per batch.
        data: inputs ``(N, ...)`` (a tensor or a NumPy array; the outputs land on the
            tensor's device), or a dataset of ``(x, y, id)`` items (outputs on the CPU).
        batch_size: inputs per forward pass.
        num_workers: DataLoader workers for a dataset.

    Returns:
        ``(N, ...)`` outputs, row ``i`` for the ``i``-th input or item.

    Raises:
        InputError: naming the argument, for an empty or malformed ``data`` or a model
            that returns something else than a tensor.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> net = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5)).train()
        >>> x = torch.randn(5, 3)
        >>> out = predict(net, x, batch_size=2)
        >>> out.shape, net.training, torch.allclose(out, net.eval()(x))
        (torch.Size([5, 2]), True, True)
        >>> items = TensorDataset(x, torch.zeros(5, dtype=torch.long), torch.arange(5))
        >>> torch.allclose(predict(net, items), out)
        True
    """
    return _collect(model, data, batch_size=batch_size, num_workers=num_workers)[0]
