"""The tiny BERT classifier (built from a config, nothing downloaded) of the Transformers tests."""

from __future__ import annotations

import torch
import transformers

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "very", "not"]


def tiny_bert(seed: int, initializer_range: float = 0.02) -> torch.nn.Module:
    """A one-layer BERT of width 8 with two labels, its weights drawn from ``seed``."""
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(config)
