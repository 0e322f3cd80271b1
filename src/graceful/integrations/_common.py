"""What every framework integration shares: the objective rule and reading logits.

Nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graceful._validation import check_instance
from graceful.errors import InputError
from graceful.losses import PositiveCongruentLoss, RegressionLoss

__all__ = ["logits_of", "objective"]


def objective(criterion: object) -> nn.Module:
    """The training objective ``criterion(new_logits, old_logits, target)`` from ``criterion``.

    One rule for every integration: a bare :class:`~graceful.losses.RegressionLoss` (say
    :class:`~graceful.losses.FocalDistillationLoss`) is *added* to the cross-entropy, as
    ``PositiveCongruentLoss(criterion)`` (``CE + 1 * R``); any other module (a
    :class:`~graceful.losses.PositiveCongruentLoss`, :func:`~graceful.losses.recommended_pct_loss`,
    your own) is the whole objective.

    Example:
        >>> from graceful.losses import FocalDistillationLoss, recommended_pct_loss
        >>> type(objective(FocalDistillationLoss())).__name__
        'PositiveCongruentLoss'
        >>> objective(recommended_pct_loss()).lam
        0.15
        >>> objective("ce")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `criterion` to be a torch.nn.Module (a graceful loss), but got str
    """  # noqa: E501
    module: nn.Module = check_instance(
        "criterion", criterion, nn.Module, "a torch.nn.Module (a graceful loss)"
    )
    if isinstance(module, RegressionLoss):
        return PositiveCongruentLoss(module, reduction=module.reduction)
    return module


def logits_of(output: Any, what: str = "the model") -> torch.Tensor:
    """The logits of a framework model's output: a tensor, ``.logits``, ``["logits"]`` or ``[0]``.

    Example:
        >>> logits_of({"logits": torch.ones(1, 2)})
        tensor([[1., 1.]])
        >>> logits_of("no")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected the model to return logits (a tensor, .logits or ["logits"]), but it returned str
    """  # noqa: E501
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, Mapping):
        logits = output.get("logits")
    if logits is None and isinstance(output, tuple) and output:
        logits = output[0]
    if not isinstance(logits, torch.Tensor):
        raise InputError(
            f'Expected {what} to return logits (a tensor, .logits or ["logits"]),'
            f" but it returned {type(output).__name__}"
        )
    return logits
