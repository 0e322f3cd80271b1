r"""Training a new sentence-transformers encoder that stays compatible with an old gallery.

:class:`CompatibleEncoderLoss` is a loss for the sentence-transformers training API
(``SentenceTransformerTrainer`` or ``model.fit``): it makes the new encoder's embeddings
usable against the old encoder's stored ones, in one of two ways, chosen by what you have:

- **influence** (Shen et al., BCT, CVPR 2020), with the old model's classifier
  ``old_weight`` ``(C, D)`` (and ``old_bias``): the new embeddings go through the frozen
  old classifier, :class:`~graceful.losses.BCTInfluenceLoss`; the dataset's ``label``
  column holds class ids. Without a trained classifier,
  :func:`~graceful.losses.class_prototypes` of the old embeddings is one (``head="cosine"``);
- **alignment**, without one: the new embeddings regress onto the old encoder's embeddings
  of the same texts, :class:`~graceful.losses.EmbeddingRegressionLoss` (unit vectors by
  default, for cosine galleries); the ``label`` column holds the old embeddings
  (``old_encoder.encode(texts)``, computed once), as for sentence-transformers' own
  ``MSELoss``.

Either term is added, with weight ``lam``, to an optional ``base_loss`` (another
sentence-transformers loss, say ``MultipleNegativesRankingLoss``, called with the same
features and labels) that trains the new encoder's own task. The term applies to the first
text column. The new encoder's output dimension must be the old one's (add a ``Dense``
module otherwise).

The alternative that trains nothing on the encoder is a query adapter:
:func:`fit_encoder_adapter` maps the new encoder's embeddings of some texts onto the old
encoder's (:func:`graceful.retrieval.fit_query_adapter`), so new queries search the old
gallery while it is re-embedded.

Needs the ``sentence-transformers`` extra: ``pip install 'graceful[sentence-transformers]'``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from graceful._extras import require
from graceful._validation import check_instance, check_real
from graceful.errors import InputError

require("sentence-transformers", "graceful.integrations.sentence_transformers")

import sentence_transformers  # noqa: E402

from graceful.losses import BCTInfluenceLoss, EmbeddingRegressionLoss  # noqa: E402
from graceful.retrieval import QueryAdapter, fit_query_adapter  # noqa: E402

__all__ = ["CompatibleEncoderLoss", "fit_encoder_adapter"]


class CompatibleEncoderLoss(nn.Module):
    r"""A sentence-transformers loss: :math:`L_{base} + \lambda L_{compat}` on the new encoder.

    :math:`L_{compat}` is the influence loss through the old classifier when ``old_weight``
    is given (labels: class ids ``(B,)``), the alignment loss to the old embeddings
    otherwise (labels: old embeddings ``(B, D)``). See the module docstring.

    Args:
        model: the new :class:`sentence_transformers.SentenceTransformer` being trained.
        old_weight: ``(C, D)`` the old classifier's weights, or ``None`` for alignment.
        old_bias: ``(C,)`` or ``None``.
        head: ``"linear"`` or ``"cosine"`` (for prototypes; with ``scale``), as in
            :class:`~graceful.losses.BCTInfluenceLoss`.
        scale: the cosine head's logit scale.
        normalize: alignment only: compare unit vectors (cosine galleries).
        lam: weight of the compatibility term, ``>= 0``.
        base_loss: another sentence-transformers loss for the new encoder's task, or ``None``.

    Example:
        >>> import torch
        >>> from sentence_transformers import SentenceTransformer
        >>> from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> vocab = {"[UNK]": 0, "good": 1, "bad": 2, "film": 3}
        >>> tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        >>> tok.pre_tokenizer = pre_tokenizers.Whitespace()
        >>> _ = torch.manual_seed(0)
        >>> new = SentenceTransformer(modules=[StaticEmbedding(tok, embedding_dim=4)])
        >>> loss = CompatibleEncoderLoss(new, old_weight=torch.randn(2, 4))  # 2 old classes
        >>> features = new.tokenize(["good film", "bad film"])
        >>> value = loss([features], torch.tensor([1, 0]))
        >>> loss.mode, value.shape, value.requires_grad
        ('influence', torch.Size([]), True)
    """

    def __init__(
        self,
        model: sentence_transformers.SentenceTransformer,
        old_weight: Tensor | None = None,
        old_bias: Tensor | None = None,
        *,
        head: str = "linear",
        scale: float = 16.0,
        normalize: bool = True,
        lam: float = 1.0,
        base_loss: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.model = check_instance(
            "model", model, sentence_transformers.SentenceTransformer, "a SentenceTransformer"
        )
        self.lam = check_real("lam", lam, low=0.0)
        if base_loss is not None:
            check_instance("base_loss", base_loss, nn.Module, "a torch.nn.Module or None")
        self.base_loss = base_loss
        self.influence: BCTInfluenceLoss | None = None
        self.alignment: EmbeddingRegressionLoss | None = None
        if old_weight is not None:
            self.influence = BCTInfluenceLoss(old_weight, old_bias, head=head, scale=scale)
        elif old_bias is not None:
            raise InputError(
                "Expected argument `old_bias` only with `old_weight`, but got it alone"
            )
        else:
            self.alignment = EmbeddingRegressionLoss(normalize=normalize)

    @property
    def mode(self) -> str:
        """``"influence"`` or ``"alignment"``."""
        return "influence" if self.influence is not None else "alignment"

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """The loss of one batch: ``sentence_features`` per text column, and the labels."""
        features = list(sentence_features)
        if not features:
            raise InputError("Expected at least one text column, but the batch has none")
        embeddings = self.model(features[0])["sentence_embedding"]
        if self.influence is not None:
            if labels.ndim != 1 or labels.is_floating_point():
                raise InputError(
                    "Expected the `label` column to hold class ids for the influence loss,"
                    f" but got labels of shape {tuple(labels.shape)} and dtype {labels.dtype}"
                )
            compat = self.influence(embeddings, labels)
        elif self.alignment is not None:  # one of the two is set in __init__
            if labels.ndim != 2 or labels.shape != embeddings.shape:
                raise InputError(
                    "Expected the `label` column to hold the old embeddings, of shape"
                    f" {tuple(embeddings.shape)}, but got labels of shape {tuple(labels.shape)}"
                )
            compat = self.alignment(embeddings, labels.to(embeddings.dtype))
        else:
            raise InputError("Expected an old classifier or an alignment loss, but got neither")
        loss: Tensor = self.lam * compat
        if self.base_loss is not None:
            loss = loss + self.base_loss(features, labels)
        return loss

    @property
    def citation(self) -> str:
        """The reference, in the form sentence-transformers' model cards read."""
        return (
            "@inproceedings{shen2020bct, title={Towards Backward-Compatible Representation"
            " Learning}, author={Shen, Yantao and Xiong, Yuanjun and Xia, Wei and Soatto,"
            " Stefano}, booktitle={CVPR}, year={2020}}"
        )


def fit_encoder_adapter(
    new_encoder: sentence_transformers.SentenceTransformer,
    old_encoder: sentence_transformers.SentenceTransformer,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    **adapter_options: Any,
) -> QueryAdapter:
    """A query adapter from the new encoder's space to the old one's, fitted on ``texts``.

    Both encoders embed ``texts``; :func:`graceful.retrieval.fit_query_adapter` fits the
    map (its keyword options pass through). New queries then search the old gallery as
    ``adapter(new_encoder.encode(queries))``.

    Returns:
        The fitted :class:`~graceful.retrieval.QueryAdapter`.
    """
    if isinstance(texts, str) or len(texts) < 2:
        raise InputError("Expected argument `texts` to hold at least 2 texts")
    new = new_encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True)
    old = old_encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True)
    return fit_query_adapter(np.asarray(new), np.asarray(old), **adapter_options)
