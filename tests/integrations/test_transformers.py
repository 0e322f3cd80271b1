"""The Hugging Face integration against the real Trainer: a tiny BERT built from a config."""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import transformers

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _tiny_bert import VOCAB, tiny_bert  # noqa: E402

from graceful.errors import InputError  # noqa: E402
from graceful.integrations.transformers import (  # noqa: E402
    RegressionAwareTrainer,
    UpdateMetrics,
    cache_old_logits,
)
from graceful.losses import FocalDistillationLoss, PositiveCongruentLoss  # noqa: E402
from graceful.metrics import model_update_metrics  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return transformers.BertTokenizer(vocab_file=str(vocab))


@pytest.fixture(scope="module")
def table(tokenizer):
    texts = ["good film", "bad film", "very good film", "not good", "very bad", "film"] * 2
    labels = [1, 0, 1, 0, 0, 1] * 2
    data = datasets.Dataset.from_dict(
        {"text": texts, "label": labels, "idx": [100 + 7 * i for i in range(len(texts))]}
    )
    return data.map(lambda row: tokenizer(row["text"]), batched=True)


def make_trainer(tmp_path, tokenizer, train, **graceful_kwargs):
    args = transformers.TrainingArguments(
        str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=5,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    trainer = RegressionAwareTrainer(
        model=tiny_bert(1),
        args=args,
        train_dataset=train,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        **graceful_kwargs,
    )
    trainer.remove_callback(transformers.PrinterCallback)
    return trainer


def one_batch(tokenizer, table, rows):
    collate = transformers.DataCollatorWithPadding(tokenizer)
    return collate(
        [{k: table[i][k] for k in ("input_ids", "attention_mask", "label", "idx")} for i in rows]
    )


def test_the_cache_holds_the_old_logits_of_each_row_by_its_index(table, tokenizer):
    old = tiny_bert(0).eval()
    cache = cache_old_logits(
        old, table, data_collator=transformers.DataCollatorWithPadding(tokenizer), batch_size=5
    )
    assert cache.ids.tolist() == sorted(table["idx"])
    for row in (0, 5, 11):
        ids = torch.tensor([table[row]["input_ids"]])
        with torch.no_grad():
            expected = old(input_ids=ids).logits
        got = cache(expected, torch.tensor([table[row]["idx"]]))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cached", [True, False])
def test_the_training_loss_is_the_criterion_on_new_and_old_logits(
    tmp_path, tokenizer, table, cached
):
    old = tiny_bert(0)
    criterion = PositiveCongruentLoss(FocalDistillationLoss(alpha=1.0, beta=5.0), lam=0.5)
    trainer = make_trainer(
        tmp_path, tokenizer, table, criterion=criterion, old_model=old, cache_old_logits=cached
    )
    if cached:
        trainer.old_logits = cache_old_logits(
            old, table, data_collator=transformers.DataCollatorWithPadding(tokenizer)
        )
    batch = one_batch(tokenizer, table, [1, 4, 6, 9])
    model = trainer.model.train()
    loss = trainer.compute_loss(model, dict(batch))
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        old_logits = old(**inputs).logits
    expected = criterion(model(**inputs).logits, old_logits, batch["labels"])
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    assert loss.requires_grad


def test_train_builds_the_table_keeps_the_index_column_and_trains(tmp_path, tokenizer, table):
    # the text column is dropped by the Trainer, the index column is kept for the lookup
    trainer = make_trainer(
        tmp_path, tokenizer, table, criterion=FocalDistillationLoss(), old_model=tiny_bert(0)
    )
    before = [p.detach().clone() for p in trainer.model.parameters()]
    result = trainer.train()
    assert trainer.old_logits is not None and len(trainer.old_logits) == len(table)
    assert np.isfinite(result.training_loss)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True)
    )
    assert all(not p.requires_grad for p in trainer.old_model.parameters())


def test_a_training_set_without_the_index_column_is_one_error(tmp_path, tokenizer, table):
    trainer = make_trainer(
        tmp_path,
        tokenizer,
        table.remove_columns("idx"),
        criterion=FocalDistillationLoss(),
        old_model=tiny_bert(0),
    )
    with pytest.raises(InputError, match="index column `idx`"):
        trainer.train()


def test_exactly_one_source_of_old_logits(tmp_path, tokenizer, table):
    with pytest.raises(InputError, match="exactly one of the arguments `old_model` and"):
        make_trainer(tmp_path, tokenizer, table, criterion=FocalDistillationLoss())
    with pytest.raises(InputError, match="`criterion`"):
        make_trainer(tmp_path, tokenizer, table, criterion="kl", old_model=tiny_bert(0))


def test_update_metrics_report_nfr_at_each_evaluation(tmp_path, tokenizer, table):
    old = tiny_bert(0)
    collator = transformers.DataCollatorWithPadding(tokenizer)
    old_trainer = transformers.Trainer(
        model=old,
        args=transformers.TrainingArguments(
            str(tmp_path / "old"), report_to=[], use_cpu=True, per_device_eval_batch_size=5
        ),
        data_collator=collator,
    )
    old_logits = old_trainer.predict(table).predictions
    trainer = make_trainer(
        tmp_path,
        tokenizer,
        table,
        criterion=FocalDistillationLoss(),
        old_model=old,
        cache_old_logits=False,
    )
    trainer.compute_metrics = UpdateMetrics(old_logits)
    trainer.eval_dataset = table
    metrics = trainer.evaluate()
    new_logits = trainer.predict(table).predictions
    expected = model_update_metrics(np.array(table["label"]), old_logits, new_logits)
    assert metrics["eval_negative_flip_rate"] == pytest.approx(expected["negative_flip_rate"])
    assert metrics["eval_error_rate_new"] == pytest.approx(expected["error_rate_new"])
    assert np.isfinite(metrics["eval_loss"])  # the model's own loss
    with pytest.raises(InputError, match="to have 3 rows"):
        UpdateMetrics(old_logits[:3])(transformers.EvalPrediction(new_logits, table["label"]))
