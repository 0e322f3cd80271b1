"""A tiny version of the Hugging Face example: a random BERT from a config, generated texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from benchmarks.hf_pct import markdown, run

WORDS = ["good", "bad", "film", "very", "not", "plot", "dull", "great"]


def test_the_example_runs_end_to_end_and_reports_its_targets(tmp_path):
    torch.set_num_threads(1)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = transformers.BertTokenizer(vocab_file=str(vocab))
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=3)) for _ in range(60)]
    labels = np.array([int("good" in t or "great" in t) for t in texts])
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
    )

    def make_model(seed: int) -> transformers.BertForSequenceClassification:
        torch.manual_seed(seed)
        return transformers.BertForSequenceClassification(config)

    results = run(
        texts,
        labels,
        make_model=make_model,
        tokenizer=tokenizer,
        seeds=[0, 1],
        old_train=12,
        new_train=30,
        test=20,
        batch_size=8,
        trainable_layers=1,
        work_dir=tmp_path / "work",
        log=lambda line: None,
    )
    assert [r["seed"] for r in results["per_seed"]] == [0, 1]
    names = [t["name"] for t in results["targets"]]
    assert names == [
        "nfr_regression_aware_over_plain",
        "extra_error_points_regression_aware_minus_plain",
    ]
    for row in results["per_seed"]:
        for method in ("plain", "regression_aware"):
            assert 0.0 <= row[method]["negative_flip_rate"] <= row[method]["error_rate"] <= 1.0
    plain = np.mean([r["plain"]["negative_flip_rate"] for r in results["per_seed"]])
    if plain > 0:
        ratio = np.mean([r["regression_aware"]["negative_flip_rate"] for r in results["per_seed"]])
        assert results["targets"][0]["value"] == pytest.approx(ratio / plain)
    assert "| target |" in markdown(results)
