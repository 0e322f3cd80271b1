"""``graceful demo``: the whole idea, end to end, on scikit-learn's digits.

The digits are installed with the project (scikit-learn), so nothing is downloaded.

1. An **old** embedding model (a small CNN, 200 training images) is deployed; its
   embeddings of the test images fill a gallery.
2. Two candidate **new** models (a wider CNN, 400 training images): one trained naively,
   one *gracefully*: cross-entropy plus focal distillation from the old model's logits
   (positive-congruent training) plus the influence loss through the old classifier
   (backward-compatible training), in one loss.
3. Both updates are compared with the regression metrics (error, negative flip rate,
   McNemar's test), each with its own :mod:`graceful.release` report.
4. The gallery: the naive model's queries are refused (its vectors live in another
   space); the graceful model is registered as compatible with the old version, with the
   cross-model retrieval evaluation as evidence, and its queries search the old gallery at
   once. A few searches are shown before and after, then a partial backfill re-embeds part
   of the gallery, resumably, while it stays searchable.
5. One HTML page tells the story with the figures (:mod:`graceful.report.demo`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

import graceful
from graceful.data import LabelledArrays, load_digits
from graceful.embedding import EmbeddingOf, EmbeddingOutput, WithEmbedding
from graceful.errors import InputError
from graceful.gallery import Gallery, IncompatibleVersionsError, RandomOrder, backfill
from graceful.io.atomic import atomic_open, atomic_write_text
from graceful.losses import BCTInfluenceLoss, CompatibleEmbeddingLoss, FocalDistillationLoss
from graceful.models import SmallCNN
from graceful.release import compare_files
from graceful.retrieval import backfill_curve, cross_model_metrics, is_compatible, update_gain
from graceful.training import CachedTeacher, TrainConfig, Trainer, predict

__all__ = ["DemoConfig", "GracefulUpdateLoss", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """The demo's models and budget (defaults: well under a minute on 2 CPU cores).

    Attributes:
        seed: seed of the split, the subsets and every model.
        old_train_size: training images of the old model.
        new_train_size: training images of the new models (``None``: all of them).
        old_width: the old CNN's width.
        new_width: the new CNNs' width.
        embedding_dim: the embedding size of every model (the gallery's dimension).
        epochs: training epochs of every model.
        lam_focal: weight of the focal distillation term of the graceful model.
        lam_influence: weight of its influence loss through the old classifier.
        backfill_fraction: share of the gallery the partial backfill re-embeds.
        examples: test queries shown before and after the switch.
    """

    seed: int = 0
    old_train_size: int = 200
    new_train_size: int | None = 400
    old_width: int = 8
    new_width: int = 12
    embedding_dim: int = 32
    epochs: int = 20
    lam_focal: float = 1.0
    lam_influence: float = 1.0
    backfill_fraction: float = 0.5
    examples: int = 4


class GracefulUpdateLoss(nn.Module):
    r"""Positive-congruent and backward-compatible training in one loss.

    :math:`\mathrm{CE}(z, y) + \lambda_{I}\,\mathrm{CE}(W_{old}\,e + b_{old}, y)
    + \lambda_{F}\,\mathrm{FD}(z, z_{old}, y)`: the new head's cross-entropy, the
    influence loss of the new embedding :math:`e` through the frozen old classifier
    (:class:`~graceful.losses.BCTInfluenceLoss`) and focal distillation towards the old
    logits (:class:`~graceful.losses.FocalDistillationLoss`), for the ``Trainer`` with a
    teacher of old logits and a :class:`~graceful.embedding.WithEmbedding` model.

    Example:
        >>> loss = GracefulUpdateLoss(torch.eye(3, 2), None, lam_focal=1.0)
        >>> out = EmbeddingOutput(torch.zeros(4, 3), torch.zeros(4, 2))
        >>> float(loss(out, torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))) > 0
        True
    """

    def __init__(
        self,
        old_weight: torch.Tensor,
        old_bias: torch.Tensor | None,
        *,
        lam_focal: float = 1.0,
        lam_influence: float = 1.0,
    ) -> None:
        super().__init__()
        self.compatible = CompatibleEmbeddingLoss(
            influence=BCTInfluenceLoss(old_weight, old_bias), lam_influence=lam_influence
        )
        self.focal = FocalDistillationLoss(alpha=0.0, beta=1.0, distance="kl", temperature=1.0)
        self.lam_focal = float(lam_focal)

    def forward(
        self, outputs: EmbeddingOutput, old_logits: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """The loss of ``(logits, embedding)`` given the old logits and the labels."""
        loss: torch.Tensor = self.compatible(outputs, None, target)
        focal: torch.Tensor = self.focal(outputs[0], old_logits, target)
        return loss + self.lam_focal * focal


class _StopBackfillError(Exception):
    """Raised between two committed batches to leave the backfill job half done."""


def _train(
    model: nn.Module,
    part: LabelledArrays,
    val: LabelledArrays,
    config: DemoConfig,
    seed: int,
    progress: bool,
    **kwargs: Any,
) -> float:
    start = time.perf_counter()
    cfg = TrainConfig(epochs=config.epochs, batch_size=64, lr=0.05, seed=seed, progress=progress)
    Trainer(model, cfg, **kwargs).fit(part.to_tensor_dataset(), val.to_tensor_dataset())
    return time.perf_counter() - start


def _outputs(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and embeddings of ``x`` (eval mode)."""
    probs = torch.softmax(predict(model, x), 1)
    return probs.numpy(), predict(EmbeddingOf(model), x).numpy()


def _write_predictions(path: Path, test: LabelledArrays, probs: np.ndarray) -> Path:
    ink = pd.qcut(test.x.reshape(len(test), -1).sum(1), 3, labels=["light", "medium", "heavy"])
    frame = pd.DataFrame({"id": test.ids, "label": test.y})
    for c in range(probs.shape[1]):
        frame[f"prob_{c}"] = probs[:, c].astype(np.float32)
    frame["ink"] = np.asarray(ink.astype(str))
    with atomic_open(path, "wb") as handle:
        frame.to_parquet(handle, index=False)  # type: ignore[arg-type]
    return path


def _compare(old: Path, new: Path, out: Path, title: str) -> dict[str, Any]:
    from graceful.report import write_html

    result = compare_files(old, new, id_col="id", score_prefix="prob_", group_cols=("ink",))
    summary = result.summary(max_examples=50, paths={"old": str(old), "new": str(new)})
    summary["title"] = title
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
    write_html(summary, out / "report.html")
    return summary


def _hits(result: Any, row: int, label_of: dict[str, int]) -> list[dict[str, Any]]:
    hits = []
    for item, score, version in zip(
        result.ids[row], result.distances[row], result.versions[row], strict=True
    ):
        if item is None:
            continue
        hits.append(
            {"id": item, "label": label_of[item], "score": float(score), "version": version}
        )
    return hits


def run_demo(
    out_dir: str | os.PathLike[str],
    config: DemoConfig | None = None,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns the story (also written as ``demo.json``).

    Writes ``old.parquet``, ``naive.parquet``, ``graceful.parquet`` (test predictions),
    ``updates/naive`` and ``updates/graceful`` (a comparison report each),
    ``gallery.sqlite`` (recreated) and ``report.html``, the page that tells the story.

    Args:
        out_dir: the output folder (created; the demo's own files in it are replaced).
        config: models and budget (default :class:`DemoConfig`).
        progress: show progress bars (training, backfill).
        log: where the step messages go.

    Raises:
        InputError: when ``out_dir`` is a file or cannot be written.
    """
    config = config or DemoConfig()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    data = load_digits(seed=config.seed)
    train, val, test = data.train, data.val, data.test
    rng = np.random.default_rng(config.seed)
    old_part = train.subset(np.sort(rng.choice(len(train), config.old_train_size, replace=False)))
    if config.new_train_size is not None:
        train = train.subset(np.sort(rng.choice(len(train), config.new_train_size, replace=False)))
    dim = config.embedding_dim

    log(f"1/5 training the old model (CNN width {config.old_width}, {len(old_part)} images)")
    torch.manual_seed(config.seed)
    old = SmallCNN(config.old_width, embedding_dim=dim)
    timings["train_old"] = _train(old, old_part, val, config, config.seed, progress)
    old.eval()
    old_val_logits = torch.as_tensor(_outputs(old, val.x)[0]).log()

    log(f"2/5 training the new models (CNN width {config.new_width}, {len(train)} images)")
    torch.manual_seed(config.seed + 1)
    naive = SmallCNN(config.new_width, embedding_dim=dim)
    timings["train_naive"] = _train(
        naive, train, val, config, config.seed + 1, progress, old_val_logits=old_val_logits
    )
    torch.manual_seed(config.seed + 1)
    new = SmallCNN(config.new_width, embedding_dim=dim)
    teacher = CachedTeacher.build(old, train.to_tensor_dataset())
    head: Any = old.head  # a Linear: SmallCNN's default head
    loss = GracefulUpdateLoss(
        head.weight.detach(),
        None if head.bias is None else head.bias.detach(),
        lam_focal=config.lam_focal,
        lam_influence=config.lam_influence,
    )
    timings["train_graceful"] = _train(
        WithEmbedding(new), train, val, config, config.seed + 1, progress,
        loss=loss, teacher=teacher, old_val_logits=old_val_logits,
    )  # fmt: skip

    log("3/5 comparing the updates (regression metrics and reports)")
    step = time.perf_counter()
    probs, emb = {}, {}
    for name, model in (("old", old), ("naive", naive), ("graceful", new)):
        probs[name], emb[name] = _outputs(model, test.x)
    paths = {n: _write_predictions(out / f"{n}.parquet", test, p) for n, p in probs.items()}
    updates = {
        name: _compare(paths["old"], paths[name], out / "updates" / name, f"old -> {name}")
        for name in ("naive", "graceful")
    }
    timings["compare"] = time.perf_counter() - step

    log("4/5 the gallery: the old model's vectors, queries from the new models")
    step = time.perf_counter()
    table = cross_model_metrics(emb, test.y, ids=test.ids, top_k=(1, 5))
    retrieval = {
        f"{r['query']}->{r['gallery']}": {"top1": r["top1"], "top5": r["top5"], "map": r["map"]}
        for r in table.to_dict("records")
    }
    m = {k: v["top1"] for k, v in retrieval.items()}
    compatibility = {
        name: {
            "compatible": bool(is_compatible(m[f"{name}->old"], m["old->old"])),
            "gain": float(update_gain(m[f"{name}->old"], m["old->old"], m["naive->naive"])),
        }
        for name in ("naive", "graceful")
    }
    for suffix in ("", "-wal", "-shm"):
        (out / f"gallery.sqlite{suffix}").unlink(missing_ok=True)
    ids = [str(i) for i in test.ids]
    label_of = dict(zip(ids, (int(v) for v in test.y), strict=True))
    row_of = {item: row for row, item in enumerate(ids)}
    pick = np.sort(rng.choice(len(ids), config.examples, replace=False))
    with Gallery(out / "gallery.sqlite") as gallery:
        gallery.register_version("v1-old", dim=dim)
        gallery.add_with_ids(emb["old"], ids, version="v1-old")
        gallery.register_version("v2-naive", dim=dim)
        try:
            gallery.search(emb["naive"][pick], 5, version="v2-naive")
            refused = None
        except IncompatibleVersionsError as exc:
            refused = str(exc)
        evidence = {"top1_new_old": m["graceful->old"], "top1_old_old": m["old->old"]}
        if compatibility["graceful"]["compatible"]:
            gallery.register_version(
                "v2-graceful", dim=dim, compatible_with=["v1-old"], evidence=evidence
            )
        else:
            gallery.register_version("v2-graceful", dim=dim)
        before = gallery.search(emb["old"][pick], 6, version="v1-old")
        try:
            after = gallery.search(emb["graceful"][pick], 6, version="v2-graceful")
        except IncompatibleVersionsError:
            after = None
        searches = []
        for row, index in enumerate(pick):
            query = ids[int(index)]
            drop = [h for h in _hits(before, row, label_of) if h["id"] != query][:5]
            searches.append(
                {
                    "query": query,
                    "label": label_of[query],
                    "pixels": test.x[int(index)].reshape(8, 8).round(3).tolist(),
                    "before": drop,
                    "after": None
                    if after is None
                    else [h for h in _hits(after, row, label_of) if h["id"] != query][:5],
                }
            )
        pixels = {item: test.x[row].reshape(8, 8).round(3).tolist() for item, row in row_of.items()}
        timings["gallery"] = time.perf_counter() - step

        log(f"5/5 partial backfill: re-embedding {config.backfill_fraction:.0%} of the gallery")
        step = time.perf_counter()
        target = round(config.backfill_fraction * len(ids))

        def embed(batch: list[str]) -> np.ndarray:
            return emb["graceful"][[row_of[item] for item in batch]]

        def stop(info: Any) -> None:
            if info.done >= target:
                raise _StopBackfillError

        with contextlib.suppress(_StopBackfillError):  # stopped half way, on purpose
            backfill(gallery, to_version="v2-graceful", embed=embed, policy=RandomOrder(
                config.seed), batch_size=30, progress=progress, on_batch=stop)  # fmt: skip
        status = gallery.status()
        try:  # refused when the graceful model did not pass the compatibility criterion
            mixed = gallery.search(emb["graceful"], 2, version="v2-graceful")
        except IncompatibleVersionsError:
            mixed = None
    mixed_top1 = None
    if mixed is not None:  # leave-one-out top-1 through the half-backfilled gallery itself
        nearest = [r[1] if r[0] == ids[i] else r[0] for i, r in enumerate(mixed.ids)]
        hits = [label_of[n] == label_of[ids[i]] for i, n in enumerate(nearest)]
        mixed_top1 = float(np.mean(hits))
    order = RandomOrder(config.seed).order(ids, 0)
    curve = backfill_curve(
        emb["graceful"], emb["old"], emb["graceful"], test.y,
        [row_of[item] for item in order], fractions=np.linspace(0, 1, 11), ids=test.ids,
        top_k=(1,),
    )  # fmt: skip
    timings["backfill"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - start

    story: dict[str, Any] = {
        "title": "graceful demo: replacing a model without new errors and without a backfill",
        "graceful_version": graceful.__version__,
        "config": asdict(config),
        "data": {
            "train": len(data.train),
            "new_train": len(train),
            "old_train": len(old_part),
            "val": len(val),
            "test": len(test),
        },
        "updates": {
            name: {
                "metrics": {k: v.get("value") for k, v in s["metrics"].items()},
                "intervals": {
                    "low": s["metrics"]["negative_flip_rate"].get("low"),
                    "high": s["metrics"]["negative_flip_rate"].get("high"),
                },
                "mcnemar": s.get("mcnemar"),
                "report": f"updates/{name}/report.html",
            }
            for name, s in updates.items()
        },
        "retrieval": retrieval,
        "compatibility": compatibility,
        "refused": refused,
        "searches": searches,
        "pixels": {
            h["id"]: pixels[h["id"]] for s in searches for h in (s["before"] + (s["after"] or []))
        },
        "backfill": {
            "status": status,
            "done": int(status.get("v2-graceful", 0)),
            "total": len(ids),
            "top1_mixed_gallery": mixed_top1,
            "curve": {
                "fraction": [float(v) for v in curve["fraction"]],
                "top1": [float(v) for v in curve["top1"]],
            },
        },
        "timings": timings,
    }
    from graceful.report.demo import write_demo_html

    atomic_write_text(out / "demo.json", json.dumps(story, indent=2, allow_nan=False) + "\n")
    write_demo_html(story, out / "report.html")
    return story
