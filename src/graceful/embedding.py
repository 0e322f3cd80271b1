"""Embedding models: what they return, and heads that turn an embedding into logits.

An *embedding model* here is any module with ``embed(x) -> (N, D)`` and a ``head`` module
with ``head(embedding) -> (N, C)``, whose ``forward`` is ``head(embed(x))``: the models of
:mod:`graceful.models` follow it. Backward-compatible training needs the embedding and the
logits of the same forward pass, so :class:`WithEmbedding` wraps such a model to return
both as an :class:`EmbeddingOutput`; the :class:`~graceful.training.Trainer` reads the
logits out of it for validation and prediction, and hands the whole output to the loss.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from graceful._validation import check_instance, check_int, check_real, fail
from graceful.errors import InputError

__all__ = [
    "CosineClassifier",
    "EmbeddingModel",
    "EmbeddingOf",
    "EmbeddingOutput",
    "WithEmbedding",
    "classifier_logits",
    "make_head",
]


class EmbeddingOutput(NamedTuple):
    """The logits ``(N, C)`` and the embedding ``(N, D)`` of one forward pass."""

    logits: torch.Tensor
    embedding: torch.Tensor


class EmbeddingModel(Protocol):
    """A module with ``embed(x)`` and a ``head`` such that ``forward(x) == head(embed(x))``."""

    head: nn.Module

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding ``(N, D)`` of a batch."""
        ...


def _check_embedding_model(model: object, name: str) -> nn.Module:
    module: nn.Module = check_instance(name, model, nn.Module, "a torch.nn.Module")
    if not callable(getattr(module, "embed", None)) or not isinstance(
        getattr(module, "head", None), nn.Module
    ):
        raise InputError(
            f"Expected argument `{name}` to have an `embed(x)` method and a `head` module,"
            f" but {type(module).__name__} lacks one"
        )
    return module


class WithEmbedding(nn.Module):
    """Wrap an embedding model so that ``forward`` returns logits *and* embedding.

    The wrapped model's parameters are this module's (``model`` is a submodule), so an
    optimizer over ``WithEmbedding(m).parameters()`` trains ``m``.

    Args:
        model: an embedding model (``embed`` and ``head``).

    Example:
        >>> from graceful.models import SmallCNN
        >>> out = WithEmbedding(SmallCNN(width=2, num_classes=3))(torch.zeros(4, 1, 28, 28))
        >>> out.logits.shape, out.embedding.shape
        (torch.Size([4, 3]), torch.Size([4, 8]))
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = _check_embedding_model(model, "model")

    def forward(self, x: torch.Tensor) -> EmbeddingOutput:
        """``EmbeddingOutput(head(embed(x)), embed(x))``."""
        embedding: torch.Tensor = self.model.embed(x)  # type: ignore[operator]
        logits: torch.Tensor = self.model.head(embedding)  # type: ignore[operator]
        return EmbeddingOutput(logits, embedding)


class EmbeddingOf(nn.Module):
    """A view of an embedding model whose ``forward`` is its ``embed``.

    Use it wherever a module's output is collected, e.g. to cache the old model's
    embeddings of the training set with :meth:`graceful.training.CachedTeacher.build`.

    Example:
        >>> from graceful.models import SmallCNN
        >>> EmbeddingOf(SmallCNN(width=2))(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 8])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = _check_embedding_model(model, "model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding ``(N, D)``."""
        embedding: torch.Tensor = self.model.embed(x)  # type: ignore[operator]
        return embedding


def classifier_logits(
    embeddings: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    head: str = "linear",
    scale: float = 16.0,
) -> torch.Tensor:
    r"""Logits of a linear or cosine classifier with the given weights.

    ``"linear"``: :math:`z = e W^\top + b`. ``"cosine"``:
    :math:`z = s \, \hat e \hat W^\top` with rows L2-normalised and scale :math:`s`
    (the bias is ignored).

    Args:
        embeddings: ``(N, D)``.
        weight: ``(C, D)``.
        bias: ``(C,)`` or ``None``.
        head: ``"linear"`` or ``"cosine"``.
        scale: the cosine head's scale :math:`s > 0`.

    Example:
        >>> e, w = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> classifier_logits(e, w)
        tensor([[3., 8.]])
        >>> classifier_logits(e, w, head="cosine", scale=10.0)
        tensor([[6., 8.]])
    """
    if head == "linear":
        return F.linear(embeddings, weight, bias)
    if head == "cosine":
        return scale * F.linear(F.normalize(embeddings, dim=1), F.normalize(weight, dim=1))
    raise fail("head", "one of 'linear', 'cosine'", head)


class CosineClassifier(nn.Module):
    r"""A classifier over L2-normalised embeddings and weights: :math:`z = s \cos(e, w_c)`.

    Args:
        in_features: embedding dimension ``D``.
        num_classes: outputs ``C``.
        scale: the fixed scale :math:`s` (cosines are in [-1, 1]; cross-entropy needs a
            larger range).

    Example:
        >>> head = CosineClassifier(4, 3, scale=10.0)
        >>> head(torch.ones(2, 4)).abs().max() <= 10.0
        tensor(True)
    """

    def __init__(self, in_features: int, num_classes: int, *, scale: float = 16.0) -> None:
        super().__init__()
        for value, name in ((in_features, "in_features"), (num_classes, "num_classes")):
            check_int(name, value, low=1)
        self.scale = check_real("scale", scale, low=0.0, low_open=True)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=in_features**-0.5)

    @property
    def bias(self) -> None:
        """A cosine classifier has no bias (for code that reads ``head.bias``)."""
        return None

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)``."""
        return classifier_logits(embeddings, self.weight, head="cosine", scale=self.scale)

    def extra_repr(self) -> str:
        """Shape and scale."""
        c, d = self.weight.shape
        return f"in_features={d}, num_classes={c}, scale={self.scale}"


def make_head(in_features: int, num_classes: int, head: str, scale: float) -> nn.Module:
    """A ``"linear"`` or ``"cosine"`` classification head (shared by the models)."""
    if head == "linear":
        return nn.Linear(in_features, num_classes)
    if head == "cosine":
        return CosineClassifier(in_features, num_classes, scale=scale)
    raise fail("head", "one of 'linear', 'cosine'", head)
