"""Regression-aware fine-tuning through the Hugging Face Trainer: MiniLM-L6 on Rotten Tomatoes.

The old model is the offline MiniLM-L6 checkpoint fine-tuned as a sequence classifier on a
small part of the training split; the update is the same checkpoint fine-tuned on a larger
part, once plainly and once with graceful's :func:`~graceful.losses.recommended_pct_loss`
through :class:`graceful.integrations.transformers.RegressionAwareTrainer` (the old model's
logits cached once per training example by the ``idx`` column). Each seed draws the new
models' head and data order; the plain and regression-aware runs of a seed share them. The
split and the old model are the same for every seed.

To fit 2 CPU cores, the embeddings and the lower encoder layers are frozen (only the top
``--trainable-layers`` layers, the pooler and the head train) and the training parts are
subsampled; texts are cut at ``--max-length`` tokens.

Run: ``python -m benchmarks.hf_pct --out benchmarks/results --stem hf_pct``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graceful.data.splits import stratified_split

TARGET_NFR_RATIO = 0.7
TARGET_EXTRA_ERROR_PT = 0.5


def _freeze(model: Any, trainable_layers: int) -> int:
    """Freeze all but the top encoder layers, the pooler and the head; the trainable count."""
    base = model.base_model
    layers = base.encoder.layer
    for p in model.parameters():
        p.requires_grad_(False)
    keep = [*layers[len(layers) - trainable_layers :], model.classifier]
    if getattr(base, "pooler", None) is not None:
        keep.append(base.pooler)
    for module in keep:
        for p in module.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run(
    texts: Sequence[str],
    labels: np.ndarray,
    *,
    make_model: Callable[[int], Any],
    tokenizer: Any,
    seeds: Sequence[int],
    old_train: int,
    new_train: int,
    test: int,
    max_length: int = 48,
    epochs: float = 1.0,
    old_epochs: float = 1.0,
    trainable_layers: int = 2,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    work_dir: str | os.PathLike[str] = "hf_pct_work",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Old, plain update and regression-aware update over ``seeds``; raw values per seed."""
    import datasets  # type: ignore[import-untyped]
    import transformers

    from graceful.integrations.transformers import RegressionAwareTrainer, cache_old_logits
    from graceful.losses import recommended_pct_loss
    from graceful.metrics import model_update_metrics

    started = time.perf_counter()
    y = np.asarray(labels, dtype=np.int64)
    test_pos, new_pos = stratified_split(y, [test, new_train], seed=0)
    old_pos = new_pos[stratified_split(y[new_pos], [old_train], seed=1)[0]]

    def table(pos: np.ndarray) -> Any:
        data = datasets.Dataset.from_dict(
            {"text": [texts[i] for i in pos], "label": y[pos].tolist(), "idx": pos.tolist()}
        )
        return data.map(
            lambda rows: tokenizer(rows["text"], truncation=True, max_length=max_length),
            batched=True,
        )

    old_ds, new_ds, test_ds = table(old_pos), table(new_pos), table(test_pos)
    collator = transformers.DataCollatorWithPadding(tokenizer)

    def arguments(name: str, seed: int, n_epochs: float) -> Any:
        return transformers.TrainingArguments(
            str(Path(work_dir) / name),
            num_train_epochs=n_epochs,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=128,
            learning_rate=learning_rate,
            warmup_steps=0,
            weight_decay=0.0,
            lr_scheduler_type="linear",
            seed=seed,
            data_seed=seed,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
        )

    def fit(trainer: Any) -> Any:
        trainer.remove_callback(transformers.PrinterCallback)
        trainer.train()
        return trainer

    def predict(model: Any) -> np.ndarray:
        trainer = transformers.Trainer(
            model=model, args=arguments("predict", 0, 1), data_collator=collator
        )
        return np.asarray(trainer.predict(test_ds).predictions)

    t0 = time.perf_counter()
    old_model = make_model(1000)
    trainable = _freeze(old_model, trainable_layers)
    fit(
        transformers.Trainer(
            model=old_model,
            args=arguments("old", 1000, old_epochs),
            train_dataset=old_ds,
            data_collator=collator,
        )
    )
    old_logits = predict(old_model)
    old_error = float((old_logits.argmax(1) != y[test_pos]).mean())
    log(f"old: error {old_error:.4f} ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    cache = cache_old_logits(old_model, new_ds, data_collator=collator, batch_size=128)
    log(f"old logits of {len(cache)} training rows cached ({time.perf_counter() - t0:.0f} s)")

    per_seed = []
    for seed in seeds:
        row: dict[str, Any] = {"seed": int(seed)}
        for method in ("plain", "regression_aware"):
            t0 = time.perf_counter()
            model = make_model(seed)
            _freeze(model, trainable_layers)
            kwargs: dict[str, Any] = {
                "model": model,
                "args": arguments(f"{method}-{seed}", seed, epochs),
                "train_dataset": new_ds,
                "data_collator": collator,
            }
            if method == "plain":
                fit(transformers.Trainer(**kwargs))
            else:
                fit(
                    RegressionAwareTrainer(
                        **kwargs, criterion=recommended_pct_loss(), old_logits=cache
                    )
                )
            new_logits = predict(model)
            m = model_update_metrics(y[test_pos], old_logits, new_logits)
            row[method] = {
                "error_rate": m["error_rate_new"],
                "negative_flip_rate": m["negative_flip_rate"],
                "positive_flip_rate": m["positive_flip_rate"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            log(
                f"seed {seed} {method}: error {m['error_rate_new']:.4f},"
                f" NFR {m['negative_flip_rate']:.4f} ({time.perf_counter() - t0:.0f} s)"
            )
        per_seed.append(row)

    def mean(method: str, key: str) -> float:
        return float(np.mean([r[method][key] for r in per_seed]))

    def std(method: str, key: str) -> float:
        return (
            float(np.std([r[method][key] for r in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0
        )

    summary = {
        method: {
            key: {"mean": mean(method, key), "std": std(method, key)}
            for key in ("error_rate", "negative_flip_rate", "positive_flip_rate")
        }
        for method in ("plain", "regression_aware")
    }
    plain_nfr = summary["plain"]["negative_flip_rate"]["mean"]
    # undefined (None, not passed) when the plain update flips nothing
    ratio = (
        summary["regression_aware"]["negative_flip_rate"]["mean"] / plain_nfr
        if plain_nfr > 0
        else None
    )
    extra = 100 * (
        summary["regression_aware"]["error_rate"]["mean"] - summary["plain"]["error_rate"]["mean"]
    )
    targets = [
        {
            "name": "nfr_regression_aware_over_plain",
            "value": ratio,
            "threshold": TARGET_NFR_RATIO,
            "passed": ratio is not None and bool(ratio <= TARGET_NFR_RATIO),
        },
        {
            "name": "extra_error_points_regression_aware_minus_plain",
            "value": extra,
            "threshold": TARGET_EXTRA_ERROR_PT,
            "passed": bool(extra <= TARGET_EXTRA_ERROR_PT),
        },
    ]
    return {
        "benchmark": "hf_pct",
        "setting": {
            "old_train": old_train,
            "new_train": new_train,
            "test": test,
            "max_length": max_length,
            "epochs": epochs,
            "old_epochs": old_epochs,
            "trainable_layers": trainable_layers,
            "trainable_parameters": trainable,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "loss": "recommended_pct_loss() (CE + 0.15 focal distillation, scaled logit matching)",
            "seeds": [int(s) for s in seeds],
            "threads": torch.get_num_threads(),
        },
        "old": {"error_rate": old_error},
        "per_seed": per_seed,
        "summary": summary,
        "targets": targets,
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    s = results["setting"]
    lines = [
        "# Regression-aware fine-tuning through the Hugging Face Trainer",
        "",
        f"MiniLM-L6 sequence classifier on Rotten Tomatoes; old: {s['old_train']} training"
        f" snippets, {s['old_epochs']} epoch(s); update: {s['new_train']} snippets,"
        f" {s['epochs']} epoch(s); test: {s['test']} snippets. Top {s['trainable_layers']}"
        f" encoder layers, pooler and head trained ({s['trainable_parameters']:,} parameters),"
        f" the rest frozen; max {s['max_length']} tokens; loss {s['loss']}.",
        f"Seeds {s['seeds']}; {results['seconds']:.0f} s on {s['threads']} thread(s).",
        "",
        f"Old model error: {100 * results['old']['error_rate']:.2f} %.",
        "",
        "| seed | plain error | plain NFR | regression-aware error | regression-aware NFR |",
        "|---|---|---|---|---|",
    ]
    for r in results["per_seed"]:
        p, q = r["plain"], r["regression_aware"]
        lines.append(
            f"| {r['seed']} | {100 * p['error_rate']:.2f} % | {100 * p['negative_flip_rate']:.2f} %"
            f" | {100 * q['error_rate']:.2f} % | {100 * q['negative_flip_rate']:.2f} % |"
        )
    for method in ("plain", "regression_aware"):
        m = results["summary"][method]
        lines.append(
            f"| mean ± sd ({method}) | {100 * m['error_rate']['mean']:.2f} ±"
            f" {100 * m['error_rate']['std']:.2f} % | {100 * m['negative_flip_rate']['mean']:.2f} ±"
            f" {100 * m['negative_flip_rate']['std']:.2f} % | | |"
        )
    lines += ["", "| target | value | threshold | passed |", "|---|---|---|---|"]
    for t in results["targets"]:
        value = "undefined" if t["value"] is None else f"{t['value']:.3f}"
        lines.append(f"| {t['name']} | {value} | {t['threshold']} | {t['passed']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: load the data and the checkpoint, run, write ``<out>/<stem>.{json,md}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--old-train", type=int, default=1000)
    parser.add_argument("--new-train", type=int, default=3000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--old-epochs", type=float, default=3.0)
    parser.add_argument("--trainable-layers", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--stem", default="hf_pct")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import tempfile

    import transformers

    from benchmarks.data import encoder_path
    from benchmarks.data.rotten_tomatoes import read_rotten_tomatoes_csv, rotten_tomatoes_csv

    texts, labels = read_rotten_tomatoes_csv(rotten_tomatoes_csv())
    path = str(encoder_path("minilm-l6"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]

    def make_model(seed: int) -> Any:
        transformers.set_seed(seed)
        return transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    with tempfile.TemporaryDirectory() as work:
        results = run(
            texts,
            labels,
            make_model=make_model,
            tokenizer=tokenizer,
            seeds=list(range(args.seeds)),
            old_train=args.old_train,
            new_train=args.new_train,
            test=args.test,
            max_length=args.max_length,
            epochs=args.epochs,
            old_epochs=args.old_epochs,
            trainable_layers=args.trainable_layers,
            learning_rate=args.learning_rate,
            work_dir=work,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{args.stem}.md").write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
