"""One process of the two-process Hugging Face test (run by ``torch.distributed.run``).

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 \
    _ddp_transformers_child.py OUT

Every process builds the same tiny BERTs (old and new, from seeds), the same tokenized
training and evaluation sets, and a RegressionAwareTrainer with the cached old logits and
UpdateMetrics; it trains a few steps, evaluates, and writes ``OUT/rank<R>.json`` (world
size, table size, the evaluation metrics, a checksum of the trained weights); rank 0 also
saves the trained weights to ``OUT/new.pt`` for the test to check the metrics against.
"""

import json
import os
import sys
from pathlib import Path

import datasets
import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
import _tiny_bert
from _tiny_bert import VOCAB

from graceful.integrations.transformers import RegressionAwareTrainer, UpdateMetrics
from graceful.losses import recommended_pct_loss

TEXTS = ["good film", "bad film", "very good film", "not good", "very bad", "film", "not bad"]


def tiny_bert(seed):
    return _tiny_bert.tiny_bert(seed, initializer_range=0.5)  # predictions that differ


def tables(out):
    vocab = Path(out) / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizer(vocab_file=str(vocab))
    labels = [1, 0, 1, 0, 0, 1, 1]

    def table(n, offset):
        texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
        data = datasets.Dataset.from_dict(
            {
                "text": texts,
                "label": [labels[i % len(TEXTS)] for i in range(n)],
                "idx": [offset + 3 * i for i in range(n)],
            }
        )
        return data.map(lambda row: tokenizer(row["text"]), batched=True).remove_columns("text")

    return tokenizer, table(24, 1000), table(11, 5000)  # 11: not a multiple of 2 processes


def old_predictions(old, evaluation, tokenizer):
    collate = transformers.DataCollatorWithPadding(tokenizer)
    batch = collate([{k: r[k] for k in ("input_ids", "attention_mask")} for r in evaluation])
    with torch.no_grad():
        return old(**batch).logits.numpy()


def main(out):
    torch.set_num_threads(1)
    tokenizer, train, evaluation = tables(out)
    old = tiny_bert(0).eval()
    args = transformers.TrainingArguments(
        os.path.join(out, "trainer"),
        max_steps=100,
        per_device_train_batch_size=3,
        per_device_eval_batch_size=2,
        learning_rate=0.003,
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
        eval_dataset=evaluation,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        compute_metrics=UpdateMetrics(old_predictions(old, evaluation, tokenizer)),
        criterion=recommended_pct_loss(),
        old_model=old,
    )
    trainer.train()
    metrics = trainer.evaluate()
    model = trainer.model
    rank = int(os.environ.get("RANK", "0"))
    result = {
        "rank": rank,
        "world_size": int(trainer.args.world_size),
        "table": len(trainer.old_logits),
        "metrics": {k: float(v) for k, v in metrics.items() if k.startswith("eval_")},
        "checksum": float(sum(p.detach().double().sum() for p in model.parameters())),
    }
    if rank == 0:
        torch.save(model.state_dict(), Path(out) / "new.pt")
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
