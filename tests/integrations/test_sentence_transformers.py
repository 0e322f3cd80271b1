"""The sentence-transformers loss against the real library: a tiny static-embedding encoder."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.modules import StaticEmbedding
from tokenizers import Tokenizer, models, pre_tokenizers

from graceful.errors import InputError
from graceful.integrations.sentence_transformers import CompatibleEncoderLoss, fit_encoder_adapter
from graceful.losses import BCTInfluenceLoss, EmbeddingRegressionLoss

WORDS = ["good", "bad", "film", "very", "not", "plot", "actors", "dull", "great", "story"]
TEXTS = [f"{a} {b}" for a in WORDS[:5] for b in WORDS[5:]]  # 25 texts


def encoder(seed: int, dim: int = 6) -> SentenceTransformer:
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    torch.manual_seed(seed)
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=dim)])


def embed(model: SentenceTransformer, texts: list[str]) -> torch.Tensor:
    return model(model.tokenize(texts))["sentence_embedding"]


def test_influence_is_the_bct_loss_through_the_old_classifier():
    new = encoder(1)
    weight, bias = torch.randn(2, 6), torch.randn(2)
    loss = CompatibleEncoderLoss(new, weight, bias, lam=0.5)
    labels = torch.tensor([0, 1, 1, 0])
    value = loss([new.tokenize(TEXTS[:4])], labels)
    expected = 0.5 * BCTInfluenceLoss(weight, bias)(embed(new, TEXTS[:4]), labels)
    torch.testing.assert_close(value, expected)
    assert loss.mode == "influence"
    with pytest.raises(InputError, match="class ids"):
        loss([new.tokenize(TEXTS[:2])], torch.randn(2, 6))


def test_alignment_regresses_onto_the_old_embeddings_plus_the_base_loss():
    new, old = encoder(1), encoder(2)
    base = MultipleNegativesRankingLoss(new)
    loss = CompatibleEncoderLoss(new, base_loss=base)
    with torch.no_grad():
        targets = embed(old, TEXTS[:4])
    features = [new.tokenize(TEXTS[:4]), new.tokenize(TEXTS[4:8])]
    value = loss(features, targets)
    new_emb = embed(new, TEXTS[:4])
    expected = EmbeddingRegressionLoss(normalize=True)(new_emb, targets) + base(features, targets)
    torch.testing.assert_close(value, expected)
    assert loss.mode == "alignment"
    with pytest.raises(InputError, match="old embeddings, of shape \\(4, 6\\)"):
        loss(features[:1], targets[:, :3])
    with pytest.raises(InputError, match="`old_bias` only with `old_weight`"):
        CompatibleEncoderLoss(new, old_bias=torch.zeros(2))


@pytest.mark.parametrize("mode", ["influence", "alignment"])
def test_the_sentence_transformers_trainer_trains_with_it(tmp_path, mode):
    new, old = encoder(1), encoder(2)
    if mode == "influence":
        labels = [i % 2 for i in range(len(TEXTS))]
        loss = CompatibleEncoderLoss(new, torch.randn(2, 6))
    else:
        labels = old.encode(TEXTS, convert_to_numpy=True).tolist()
        loss = CompatibleEncoderLoss(new)
    data = datasets.Dataset.from_dict({"text": TEXTS, "label": labels})
    args = SentenceTransformerTrainingArguments(
        str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=8,
        learning_rate=0.1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    before = embed(new, TEXTS).detach().clone()
    trainer = SentenceTransformerTrainer(model=new, args=args, train_dataset=data, loss=loss)
    result = trainer.train()
    assert np.isfinite(result.training_loss)
    assert not torch.equal(before, embed(new, TEXTS).detach())


def test_the_query_adapter_maps_new_embeddings_into_the_old_space():
    new, old = encoder(1, dim=6), encoder(2, dim=4)
    adapter = fit_encoder_adapter(new, old, TEXTS, kind="affine")
    mapped = adapter(new.encode(TEXTS[:3], convert_to_numpy=True))
    assert mapped.shape == (3, 4)
    with pytest.raises(InputError, match="at least 2 texts"):
        fit_encoder_adapter(new, old, "one text")
