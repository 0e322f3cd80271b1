"""``python -m benchmarks bct``: backward-compatible embeddings on real data.

The question of Shen et al. (BCT, CVPR 2020): can a new embedding model's queries search a
gallery that the old model embedded, without re-embedding it? For each method the
benchmark reports, on the test set with leave-one-out retrieval (each test item is a
query against all the others, relevance = same class), cosine similarity:

* M(old, old): old queries, old gallery (today's service);
* M(new, old): new queries, old gallery (the update without backfilling);
* M(new, new): new queries, new gallery (after a full backfill);
* M(new*, new*): the new architecture trained alone (the ceiling);

the empirical compatibility criterion M(new, old) > M(old, old) and the update gain
(M(new, old) - M(old, old)) / (M(new*, new*) - M(old, old)). Methods:

* ``independent``: the new model trained alone (cross-entropy); it is new*;
* ``l2``: plus L2 regression of its embeddings onto the old model's, same inputs;
* ``bct``: plus BCT's influence loss through the frozen old classifier (rows of classes
  the old model never saw synthesized from mean old embeddings);
* ``transformation``: new* queries against the old gallery vectors mapped into new*'s
  space by a learned transformation (FCT-style: no model is re-run on the gallery).

For BCT, the backfilling curve: the gallery starts with every item's old embedding and
items are re-embedded by the new model in a random order or in decreasing old-model
uncertainty (entropy of the old classifier's softmax on the item's old embedding); the
metric is recorded at each fraction re-embedded, and its area under the curve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset

from benchmarks.data import load_animal_mnist, load_rotten_tomatoes
from benchmarks.pages.bct import write_bct_html
from graceful.data import Splits, load_digits
from graceful.embedding import EmbeddingOf, WithEmbedding
from graceful.errors import InputError
from graceful.gallery import balanced_order, uncertainty_scores
from graceful.io.atomic import atomic_write_text
from graceful.losses import (
    BCTInfluenceLoss,
    CompatibleEmbeddingLoss,
    EmbeddingRegressionLoss,
    class_prototypes,
    synthesize_classifier,
)
from graceful.models import EmbeddingMLP, MLPHead, SmallCNN
from graceful.retrieval import backfill_curve, curve_auc, retrieval_metrics, update_gain
from graceful.training import (
    CachedTeacher,
    TrainConfig,
    fit_fastfill,
    fit_transformation,
    predict,
    seed_everything,
)

from ._common import (
    embed,
    loo_retrieval,
    results_header,
    setting_from,
    stat,
    train,
    write_json_and_markdown,
)
from .output import _cell

__all__ = [
    "BCT_METHODS",
    "BCT_SETTINGS",
    "BCTSetting",
    "bct_markdown",
    "get_bct_setting",
    "run_bct",
    "run_bct_setting",
    "summarise_bct",
    "write_backfill_svgs",
]

BCT_METHODS: dict[str, str] = {
    "independent": "Independent (new*)",
    "l2": "L2 regression",
    "bct": "BCT (influence loss)",
    "bct_proto": "BCT, old class prototypes, cosine head (scale 8, weight 3)",
    "transformation": "Transformation (old -> new*)",
}
"""Method key -> label, in table order."""

PAIRS = ("old_old", "new_old", "new_new", "newstar_newstar")
"""The four retrieval settings of each method's row."""

PROTOTYPE_SCALE = 8.0
PROTOTYPE_LAMBDA = 3.0
"""The cosine scale of ``bct_proto``'s prototype head and the weight of its influence term,
chosen on the validation split of Animal-MNIST (scale among 2, 4, 6, 8, 16 and 32 on seed
0; the weight among 1, 2 and 3 on seeds 0-2; see benchmarks/README.md)."""

MEASURES = ("top1", "top5", "map")
"""Retrieval measures (CMC top-1, top-5, mean average precision)."""

ORDERS = ("random", "uncertainty", "uncertainty_balanced")
"""Backfilling orders: random; old-model uncertainty, highest first; the same within each
old-predicted class, the classes interleaved (:func:`graceful.gallery.balanced_order`)."""


@dataclass(frozen=True)
class BCTSetting:
    """One ``bench bct`` setting.

    ``kind="image"``: old and new CNNs trained from pixels, the old one on
    ``old_classes`` only. ``kind="text"``: the old embeddings are a frozen encoder's
    (``load_old``), the new model is a trained projection of another encoder's vectors
    (``load_new``) into the old space; new* is that projection trained alone.
    """

    name: str
    title: str
    description: str
    kind: str
    load_old: Callable[[], Splits]
    load_new: Callable[[], Splits]
    config: TrainConfig
    embedding_dim: int = 64
    old_width: int = 8
    new_width: int = 12
    old_classes: int | None = None
    hidden: int = 0
    lam_influence: float = 1.0
    lam_regression: float = 1.0
    fractions: Sequence[float] = tuple(i / 10 for i in range(11))


def _logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return predict(model, x, batch_size=batch_size)


def _masked_retrieval(
    q: torch.Tensor, g: torch.Tensor, labels: np.ndarray, mask: np.ndarray
) -> dict[str, float]:
    """Leave-one-out retrieval of the queries in ``mask`` against the whole gallery."""
    ids = np.arange(len(labels))
    rows = np.flatnonzero(mask)
    return retrieval_metrics(
        q[rows], labels[rows], g, labels, query_ids=ids[rows], gallery_ids=ids, top_k=(1, 5)
    )


def _image_seed(
    setting: BCTSetting, seed: int, log: Callable[[str], None]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the image setting's models; return test embeddings and the old head's logits."""
    data = setting.load_old()
    k = setting.old_classes or len(data.train.classes)
    n_classes = len(data.train.classes)
    old_train = data.train.subset(np.flatnonzero(data.train.y < k))
    old_val = data.val.subset(np.flatnonzero(data.val.y < k))
    cfg, dim = setting.config, setting.embedding_dim

    def new_model(offset: int) -> SmallCNN:
        seed_everything(1000 * seed + offset)
        return SmallCNN(width=setting.new_width, num_classes=n_classes, embedding_dim=dim)

    log(f"[{setting.name}] seed {seed}: old model ({k} of {n_classes} classes)")
    seed_everything(1000 * seed)
    old = SmallCNN(width=setting.old_width, num_classes=k, embedding_dim=dim)
    train(old, cfg, 1000 * seed, old_train, old_val)
    old_train_emb = embed(old, data.train)
    head = old.head
    if not isinstance(head, nn.Linear):  # the setting's models have linear heads
        raise TypeError("the old model's head must be linear")
    weight, bias = synthesize_classifier(
        head.weight, head.bias, old_train_emb, torch.as_tensor(data.train.y), n_classes
    )
    out = {"old": embed(old, data.test)}
    extra = {"old_test_logits": _logits(old, torch.as_tensor(data.test.x))}

    log(f"[{setting.name}] seed {seed}: independent (new*)")
    independent = new_model(1)
    train(WithEmbedding(independent), cfg, 1000 * seed + 1, data.train, data.val)
    out["independent"] = embed(independent, data.test)

    log(f"[{setting.name}] seed {seed}: L2 regression")
    both: ConcatDataset[Any] = ConcatDataset(
        [data.train.to_tensor_dataset(), data.val.to_tensor_dataset()]
    )
    teacher = CachedTeacher.build(EmbeddingOf(old), both)
    l2 = new_model(1)
    loss = CompatibleEmbeddingLoss(
        regression=EmbeddingRegressionLoss(), lam_regression=setting.lam_regression
    )
    train(WithEmbedding(l2), cfg, 1000 * seed + 1, data.train, data.val, loss=loss,
           teacher=teacher)  # fmt: skip
    out["l2"] = embed(l2, data.test)

    log(f"[{setting.name}] seed {seed}: BCT")
    bct = new_model(1)
    loss = CompatibleEmbeddingLoss(
        influence=BCTInfluenceLoss(weight, bias), lam_influence=setting.lam_influence
    )
    train(WithEmbedding(bct), cfg, 1000 * seed + 1, data.train, data.val, loss=loss)
    out["bct"] = embed(bct, data.test)

    log(f"[{setting.name}] seed {seed}: BCT with a prototype head")
    proto = new_model(1)
    prototypes = class_prototypes(old_train_emb, torch.as_tensor(data.train.y), n_classes)
    loss = CompatibleEmbeddingLoss(
        influence=BCTInfluenceLoss(prototypes, head="cosine", scale=PROTOTYPE_SCALE),
        lam_influence=PROTOTYPE_LAMBDA,
    )
    train(WithEmbedding(proto), cfg, 1000 * seed + 1, data.train, data.val, loss=loss)
    out["bct_proto"] = embed(proto, data.test)

    log(f"[{setting.name}] seed {seed}: transformation old -> new*")
    seed_everything(1000 * seed + 2)
    new_train_emb = embed(independent, data.train)
    h = fit_transformation(old_train_emb, new_train_emb, data.train.y, new_head=independent.head)
    out["transformed_old"] = predict(h, out["old"])
    out["newstar"] = out["independent"]
    _fastfill(setting, seed, log, out, old_train_emb, new_train_emb, data.train.y, independent)
    return out, extra


def _text_seed(
    setting: BCTSetting, seed: int, log: Callable[[str], None]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the text setting's projections; return test embeddings and old-head logits."""
    old_data, new_data = setting.load_old(), setting.load_new()
    if not np.array_equal(old_data.train.ids, new_data.train.ids) or not np.array_equal(
        old_data.test.ids, new_data.test.ids
    ):
        raise InputError(f"Setting {setting.name!r}: the two encoders' splits differ")
    n_classes = len(old_data.train.classes)
    cfg, dim = setting.config, old_data.train.x.shape[1]

    log(f"[{setting.name}] seed {seed}: old classifier on the old encoder's vectors")
    seed_everything(1000 * seed)
    old_head = MLPHead(dim, n_classes, hidden=0)
    train(old_head, cfg, 1000 * seed, old_data.train, old_data.val)
    linear = old_head.net
    if not isinstance(linear, nn.Linear):  # hidden=0 makes one linear layer
        raise TypeError("the old classifier must be linear")
    out = {"old": torch.as_tensor(old_data.test.x)}
    extra = {"old_test_logits": _logits(old_head, out["old"])}

    def projection(offset: int) -> EmbeddingMLP:
        seed_everything(1000 * seed + offset)
        return EmbeddingMLP(new_data.train.x.shape[1], dim, n_classes, hidden=setting.hidden)

    log(f"[{setting.name}] seed {seed}: independent projection")
    independent = projection(1)
    train(WithEmbedding(independent), cfg, 1000 * seed + 1, new_data.train, new_data.val)
    out["independent"] = embed(independent, new_data.test)

    log(f"[{setting.name}] seed {seed}: L2 projection")
    ids = np.concatenate([old_data.train.ids, old_data.val.ids])
    teacher = CachedTeacher(
        torch.as_tensor(ids), torch.as_tensor(np.concatenate([old_data.train.x, old_data.val.x]))
    )
    l2 = projection(1)
    loss = CompatibleEmbeddingLoss(
        regression=EmbeddingRegressionLoss(), lam_regression=setting.lam_regression
    )
    train(WithEmbedding(l2), cfg, 1000 * seed + 1, new_data.train, new_data.val, loss=loss,
           teacher=teacher)  # fmt: skip
    out["l2"] = embed(l2, new_data.test)

    log(f"[{setting.name}] seed {seed}: BCT projection")
    bct = projection(1)
    loss = CompatibleEmbeddingLoss(
        influence=BCTInfluenceLoss(linear.weight, linear.bias),
        lam_influence=setting.lam_influence,
    )
    train(WithEmbedding(bct), cfg, 1000 * seed + 1, new_data.train, new_data.val, loss=loss)
    out["bct"] = embed(bct, new_data.test)

    log(f"[{setting.name}] seed {seed}: BCT projection with a prototype head")
    proto = projection(1)
    prototypes = class_prototypes(
        torch.as_tensor(old_data.train.x), torch.as_tensor(old_data.train.y), n_classes
    )
    loss = CompatibleEmbeddingLoss(
        influence=BCTInfluenceLoss(prototypes, head="cosine", scale=PROTOTYPE_SCALE),
        lam_influence=PROTOTYPE_LAMBDA,
    )
    train(WithEmbedding(proto), cfg, 1000 * seed + 1, new_data.train, new_data.val, loss=loss)
    out["bct_proto"] = embed(proto, new_data.test)

    log(f"[{setting.name}] seed {seed}: transformation old -> new*")
    seed_everything(1000 * seed + 2)
    new_train_emb = embed(independent, new_data.train)
    h = fit_transformation(
        old_data.train.x, new_train_emb, old_data.train.y, new_head=independent.head
    )
    out["transformed_old"] = predict(h, out["old"])
    out["newstar"] = out["independent"]
    _fastfill(setting, seed, log, out, torch.as_tensor(old_data.train.x), new_train_emb,
              old_data.train.y, independent)  # fmt: skip
    return out, extra


def _fastfill(
    setting: BCTSetting,
    seed: int,
    log: Callable[[str], None],
    out: dict[str, torch.Tensor],
    old_train: torch.Tensor,
    new_train: torch.Tensor,
    labels: np.ndarray,
    newstar: nn.Module,
) -> None:
    """FastFill's transformation and uncertainty, fitted on training pairs, on the test gallery."""
    log(f"[{setting.name}] seed {seed}: FastFill transformation old -> new* with uncertainty")
    head = getattr(newstar, "head", None)
    ff = fit_fastfill(old_train, new_train, labels, new_head=head, seed=1000 * seed + 3)
    paper = fit_fastfill(old_train, new_train, labels, new_head=head, seed=1000 * seed + 3,
                         sigma_from="output")  # fmt: skip
    with torch.no_grad():
        out["fastfill_old"], out["fastfill_sigma"] = ff.both(out["old"])
        out["fastfill_sigma_paper"] = paper.uncertainty(out["old"])


def run_bct_setting(
    setting: BCTSetting, seeds: Sequence[int], *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train every method on each seed and evaluate retrieval; raw per-seed results.

    Returns:
        ``{"per_seed": {seed: {"methods": {method: {pair: {measure: value}}},
        "backfill": {order: {"fraction": [...], measure: [...]}},
        "auc": {order: {measure: value}}}}, "seconds": float}``; :func:`summarise_bct`
        turns it into tables.
    """
    start = time.perf_counter()
    per_seed: dict[int, dict[str, Any]] = {}
    labels = setting.load_old().test.y
    for seed in seeds:
        run = _image_seed if setting.kind == "image" else _text_seed
        emb, extra = run(setting, seed, log)
        log(f"[{setting.name}] seed {seed}: retrieval evaluation")
        old, newstar = emb["old"], emb["newstar"]
        old_old = loo_retrieval(old, old, labels)
        star = loo_retrieval(newstar, newstar, labels)
        methods: dict[str, dict[str, dict[str, float]]] = {}
        for method in ("independent", "l2", "bct", "bct_proto"):
            new = emb[method]
            methods[method] = {
                "old_old": old_old,
                "new_old": loo_retrieval(new, old, labels),
                "new_new": star if method == "independent" else loo_retrieval(new, new, labels),
                "newstar_newstar": star,
            }
        by_classes = {}
        if setting.old_classes is not None:  # gains on the classes the old model saw or not
            for group, mask in (
                ("seen", labels < setting.old_classes),
                ("unseen", labels >= setting.old_classes),
            ):
                base = _masked_retrieval(old, old, labels, mask)
                best = _masked_retrieval(newstar, newstar, labels, mask)
                by_classes[group] = {
                    method: {
                        "old_old": base,
                        "new_old": _masked_retrieval(emb[method], old, labels, mask),
                        "newstar_newstar": best,
                    }
                    for method in ("independent", "l2", "bct", "bct_proto")
                }
        methods["transformation"] = {
            "old_old": old_old,
            "new_old": loo_retrieval(newstar, emb["transformed_old"], labels),
            "new_new": star,
            "newstar_newstar": star,
        }
        old_logits = extra["old_test_logits"]
        by_row = uncertainty_scores([str(i) for i in range(len(old_logits))], old_logits.numpy())
        uncertainty = np.fromiter(by_row.values(), np.float64, len(by_row))  # entropy, row order
        rng = np.random.default_rng(seed)
        predicted = extra["old_test_logits"].argmax(dim=1).numpy()
        orders = {
            "random": rng.permutation(len(labels)),
            # most uncertain first; ties (none in practice) by position
            "uncertainty": np.argsort(-uncertainty, kind="stable"),
            "uncertainty_balanced": balanced_order(uncertainty, predicted),
        }
        backfill: dict[str, dict[str, list[float]]] = {}
        auc: dict[str, dict[str, float]] = {}
        for name, order in orders.items():
            curve = backfill_curve(
                emb["bct"], old, emb["bct"], labels, order, fractions=list(setting.fractions)
            )
            backfill[name] = {col: [float(v) for v in curve[col]] for col in curve.columns}
            auc[name] = {
                m: curve_auc(curve["fraction"].to_numpy(), curve[m].to_numpy()) for m in MEASURES
            }
        per_seed[seed] = {
            "methods": methods,
            "by_classes": by_classes,
            "backfill": backfill,
            "auc": auc,
        }
        per_seed[seed]["fastfill"] = _fastfill_curves(setting, emb, labels, seed)
        ff_auc = per_seed[seed]["fastfill"]["auc"]
        log(
            f"[{setting.name}] seed {seed}: FastFill AUC top-1 sigma {ff_auc['sigma']['top1']:.4f}"
            f", random {np.mean([a['top1'] for a in ff_auc['random']]):.4f}"
            f", oracle {ff_auc['oracle']['top1']:.4f}"
        )
        log(
            f"[{setting.name}] seed {seed}: top-1 old/old {old_old['top1']:.4f}, BCT new/old"
            f" {methods['bct']['new_old']['top1']:.4f}, new*/new* {star['top1']:.4f}"
        )
    return {"per_seed": per_seed, "seconds": time.perf_counter() - start}


FASTFILL_FRACTIONS = tuple(i / 20 for i in range(21))
"""The FastFill curves' grid: 21 points, 0 to 100 % in steps of 5 %."""
FASTFILL_PERMUTATIONS = 10
"""Random backfill orders per seed, against which the sigma order is judged."""


def _fastfill_curves(
    setting: BCTSetting, emb: dict[str, torch.Tensor], labels: np.ndarray, seed: int
) -> dict[str, Any]:
    """Backfill the FastFill-transformed gallery with new* vectors: sigma, oracle, random.

    The gallery starts as h(old) for every item; queries are new*; at each fraction the
    first items of the order hold their new* vector. Orders: descending sigma (FastFill),
    descending true transformation error (the oracle, for reference) and
    :data:`FASTFILL_PERMUTATIONS` random permutations.
    """
    newstar, start = emb["newstar"], emb["fastfill_old"]
    target = torch.nn.functional.normalize(newstar, dim=1)
    error = (torch.nn.functional.normalize(start, dim=1) - target).pow(2).sum(1).numpy()
    sigma = emb["fastfill_sigma"].numpy()
    rng = np.random.default_rng(10_000 + seed)
    orders: dict[str, np.ndarray] = {
        "sigma": np.argsort(-sigma, kind="stable"),
        # the paper's head (a linear map of h), trained separately: its order, on this start
        "sigma_paper": np.argsort(-emb["fastfill_sigma_paper"].numpy(), kind="stable"),
        "oracle": np.argsort(-error, kind="stable"),
    }
    for k in range(FASTFILL_PERMUTATIONS):
        orders[f"random{k}"] = rng.permutation(len(labels))
    curves: dict[str, dict[str, list[float]]] = {}
    aucs: dict[str, dict[str, float]] = {}
    for name, order in orders.items():
        curve = backfill_curve(newstar, start, newstar, labels, order,
                               fractions=list(FASTFILL_FRACTIONS), top_k=1)  # fmt: skip
        curves[name] = {col: [float(v) for v in curve[col]] for col in ("fraction", "top1", "map")}
        aucs[name] = {
            m: curve_auc(curve["fraction"].to_numpy(), curve[m].to_numpy()) for m in ("top1", "map")
        }
    rank = float(np.corrcoef(np.argsort(np.argsort(sigma)), np.argsort(np.argsort(error)))[0, 1])
    randoms = [curves[f"random{k}"] for k in range(FASTFILL_PERMUTATIONS)]
    random_mean = {
        col: [float(np.mean([c[col][i] for c in randoms])) for i in range(len(FASTFILL_FRACTIONS))]
        for col in ("fraction", "top1", "map")
    }
    return {
        "curves": {"sigma": curves["sigma"], "sigma_paper": curves["sigma_paper"],
                   "oracle": curves["oracle"], "random_mean": random_mean},
        "auc": {
            "sigma": aucs["sigma"],
            "sigma_paper": aucs["sigma_paper"],
            "oracle": aucs["oracle"],
            "random": [aucs[f"random{k}"] for k in range(FASTFILL_PERMUTATIONS)],
        },
        "sigma_error_rank_correlation": rank,
    }  # fmt: skip


def _summarise_fastfill(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean ± std AUCs over seeds, the per-seed z-score of sigma against the permutations."""
    if not runs or "fastfill" not in runs[0]:
        return None
    out: dict[str, Any] = {"auc": {}, "z": {}, "fractions": list(FASTFILL_FRACTIONS)}
    for m in ("top1", "map"):
        random = [[a[m] for a in r["fastfill"]["auc"]["random"]] for r in runs]
        sigma = [r["fastfill"]["auc"]["sigma"][m] for r in runs]
        out["auc"][m] = {
            "sigma": stat(sigma),
            "sigma_paper": stat([r["fastfill"]["auc"]["sigma_paper"][m] for r in runs]),
            "oracle": stat([r["fastfill"]["auc"]["oracle"][m] for r in runs]),
            "random": stat([float(np.mean(v)) for v in random]),
            "random_std_within_seed": stat([float(np.std(v, ddof=1)) for v in random]),
        }
        out["z"][m] = [
            float((s - np.mean(v)) / max(float(np.std(v, ddof=1)), 1e-12))
            for s, v in zip(sigma, random, strict=True)
        ]
    out["sigma_error_rank_correlation"] = stat(
        [r["fastfill"]["sigma_error_rank_correlation"] for r in runs]
    )
    out["curves"] = {
        order: {
            col: [stat([r["fastfill"]["curves"][order][col][i] for r in runs])
                  for i in range(len(FASTFILL_FRACTIONS))]
            for col in ("top1", "map")
        }
        for order in ("sigma", "sigma_paper", "oracle", "random_mean")
    }  # fmt: skip
    return out


_TRAINED = ("independent", "l2", "bct", "bct_proto")


def _class_gains(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Update gains on the classes the old model saw and on the others, per method."""
    if not runs or not runs[0].get("by_classes"):
        return {}
    out: dict[str, Any] = {}
    for group in ("seen", "unseen"):
        out[group] = {}
        for method in _TRAINED:
            pairs = [r["by_classes"][group][method] for r in runs]
            out[group][method] = {
                m: stat(
                    [
                        update_gain(p["new_old"][m], p["old_old"][m], p["newstar_newstar"][m])
                        for p in pairs
                    ]
                )
                for m in ("top1", "map")
            } | {"new_old_map": stat([p["new_old"]["map"] for p in pairs]),
                 "old_old_map": stat([p["old_old"]["map"] for p in pairs])}  # fmt: skip
    return out


def _best_training_target(
    rows: Sequence[dict[str, Any]], class_gains: dict[str, Any], n_seeds: int
) -> dict[str, Any]:
    """Issue 15's target for the best compatible training method (by mean mAP gain)."""
    by = {row["method"]: row for row in rows}
    best = max(("bct", "bct_proto"), key=lambda m: by[m]["gain_map"]["mean"] or -math.inf)
    gains = by[best]["gain_map"]["values"]
    unseen = class_gains["unseen"][best]["map"]["values"]
    mean = float(np.mean(gains))
    passed = (
        mean >= 0.5
        and all(by[best]["compatible_map"])
        and all(g is not None and g > 0 for g in unseen)
        and n_seeds >= 5
    )
    return {
        "name": "Best compatible training: mAP update gain >= 0.5 (mean over >= 5 seeds), the "
        "criterion met in every seed, a positive gain on the unseen classes in every seed",
        "value": mean,
        "threshold": 0.5,
        "passed": bool(passed),
        "detail": f"{BCT_METHODS[best]}; criterion (mAP) met in "
        f"{sum(by[best]['compatible_map'])}/{n_seeds} seeds; unseen-class mAP gains "
        + ", ".join(f"{g:.2f}" for g in unseen),
    }


def summarise_bct(setting: BCTSetting, raw: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std tables, the criterion per seed, update gains, curves, AUCs and targets."""
    seeds = sorted(raw["per_seed"])
    runs = [raw["per_seed"][s] for s in seeds]
    rows = []
    for method, label in BCT_METHODS.items():
        row: dict[str, Any] = {"method": method, "label": label}
        for pair in PAIRS:
            for measure in MEASURES:
                row[f"{pair}_{measure}"] = stat([r["methods"][method][pair][measure] for r in runs])
        for measure in ("top1", "map"):
            m = [r["methods"][method] for r in runs]
            compatible = [p["new_old"][measure] > p["old_old"][measure] for p in m]
            row[f"compatible_{measure}"] = compatible
            row[f"gain_{measure}"] = stat(
                [
                    update_gain(
                        p["new_old"][measure], p["old_old"][measure], p["newstar_newstar"][measure]
                    )
                    for p in m
                ]
            )
        rows.append(row)
    backfill = {}
    for order in ORDERS:
        fractions = runs[0]["backfill"][order]["fraction"]
        backfill[order] = {
            "fraction": fractions,
            **{
                m: [stat([r["backfill"][order][m][i] for r in runs]) for i in range(len(fractions))]
                for m in MEASURES
            },
            "auc": {m: stat([r["auc"][order][m] for r in runs]) for m in MEASURES},
        }
    by = {row["method"]: row for row in rows}
    bct, ind, l2 = by["bct"], by["independent"], by["l2"]
    gains = bct["gain_top1"]["values"]
    auc_r = [r["auc"]["random"]["top1"] for r in runs]
    targets = [
        {
            "name": "BCT meets the criterion in every seed with update gain >= 0.3 (top-1)",
            "value": min((g for g in gains if g is not None), default=None),
            "passed": bool(
                all(bct["compatible_top1"]) and all(g is not None and g >= 0.3 for g in gains)
            ),
            "detail": f"criterion met in {sum(bct['compatible_top1'])}/{len(seeds)} seeds;"
            " value = the smallest gain",
        },
        {
            "name": "Independent training fails the criterion (top-1)",
            "value": float(sum(ind["compatible_top1"])),
            "passed": not any(ind["compatible_top1"]),
            "detail": f"criterion met in {sum(ind['compatible_top1'])}/{len(seeds)} seeds",
        },
        {
            "name": "L2 regression fails the criterion (top-1)",
            "value": float(sum(l2["compatible_top1"])),
            "passed": not any(l2["compatible_top1"]),
            "detail": f"criterion met in {sum(l2['compatible_top1'])}/{len(seeds)} seeds",
        },
    ]
    for order, name in (("uncertainty", "Uncertainty"), ("uncertainty_balanced", "Balanced")):
        auc_u = [r["auc"][order]["top1"] for r in runs]
        targets.append(
            {
                "name": f"{name}-ordered backfill AUC > random (top-1)",
                "value": float(np.mean(auc_u) - np.mean(auc_r)),
                "passed": bool(np.mean(auc_u) > np.mean(auc_r)),
                "detail": f"AUC {np.mean(auc_u):.4f} vs {np.mean(auc_r):.4f} (mean over seeds);"
                f" higher in {sum(u > r for u, r in zip(auc_u, auc_r, strict=True))}"
                f"/{len(seeds)} seeds",
            }
        )
    class_gains = _class_gains(runs)
    if class_gains:
        targets.append(_best_training_target(rows, class_gains, len(seeds)))
    fastfill = _summarise_fastfill(runs)
    if fastfill is not None:
        for key, measure_name in (("top1", "top-1"), ("map", "mAP")):
            z = fastfill["z"][key]
            targets.append(
                {
                    "name": "FastFill sigma-ordered backfill AUC > random mean + 2 std"
                    f" ({measure_name})",
                    "value": min(z),
                    "threshold": 2.0,
                    "passed": bool(all(v > 2 for v in z)),
                    "detail": f"value: the smallest z over seeds (z = (sigma AUC - mean) / std"
                    f" over {FASTFILL_PERMUTATIONS} random orders); z per seed "
                    + ", ".join(f"{v:.1f}" for v in z),
                }
            )
    return {
        "name": setting.name,
        "title": setting.title,
        "description": setting.description,
        "seeds": seeds,
        "rows": rows,
        "backfill": backfill,
        "class_gains": class_gains,
        "fastfill": fastfill,
        "targets": targets,
        "seconds": raw["seconds"],
    }


def _animal_mnist() -> BCTSetting:
    return BCTSetting(
        name="animal_mnist",
        title="Animal-MNIST: old CNN (width 8) on 5 of 10 classes -> new CNN (width 12) on all",
        description=(
            "Old: SmallCNN width 8, 64-d embedding, linear head, trained on classes 0-4 of the "
            "7,000-image training split. New: SmallCNN width 12, 64-d embedding, trained on all "
            "10 classes. SGD + one-cycle (peak lr 0.05), 10 epochs, batch 128. Retrieval on the "
            "2,000 test images (all 10 classes), leave-one-out, cosine."
        ),
        kind="image",
        load_old=cache(load_animal_mnist),
        load_new=cache(load_animal_mnist),
        config=TrainConfig(epochs=10, batch_size=128, lr=0.05, progress=False),
        old_classes=5,
    )


def _rotten_tomatoes() -> BCTSetting:
    adam = TrainConfig(
        epochs=10,
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        schedule="cosine",
        weight_decay=0.0,
        progress=False,
    )
    return BCTSetting(
        name="rotten_tomatoes",
        title="Rotten Tomatoes: MiniLM-L6 gallery (old) -> MPNet + projection to 384-d (new)",
        description=(
            "Old: frozen all-MiniLM-L6-v2 sentence embeddings (384-d) and a linear classifier "
            "on them (fresh/rotten). New: frozen all-mpnet-base-v2 embeddings (768-d) through "
            "a trained linear projection to 384-d with its own head; new* is that projection "
            "trained alone. Adam, 10 epochs. Retrieval on the 2,562 test snippets, leave-one-out, "
            "cosine; relevance = same label."
        ),
        kind="text",
        load_old=cache(lambda: load_rotten_tomatoes("minilm-l6")),
        load_new=cache(lambda: load_rotten_tomatoes("mpnet")),
        config=adam,
    )


def _digits() -> BCTSetting:
    return BCTSetting(
        name="digits",
        title="Digits smoke test: CNN width 2 on 5 classes -> CNN width 4 on 10, one epoch",
        description="A seconds-long run of the whole pipeline; not a result.",
        kind="image",
        load_old=cache(load_digits),
        load_new=cache(load_digits),
        config=TrainConfig(epochs=1, batch_size=64, lr=0.05, progress=False),
        embedding_dim=16,
        old_width=2,
        new_width=4,
        old_classes=5,
        fractions=(0.0, 0.5, 1.0),
    )


BCT_SETTINGS: dict[str, Callable[[], BCTSetting]] = {
    "animal_mnist": _animal_mnist,
    "rotten_tomatoes": _rotten_tomatoes,
    "digits": _digits,
}
"""Setting name -> factory."""


def get_bct_setting(name: str) -> BCTSetting:
    """The ``bench bct`` setting called ``name``.

    Example:
        >>> get_bct_setting("animal_mnist").old_classes
        5
    """
    return setting_from(BCT_SETTINGS, name)


def bct_markdown(setting: dict[str, Any]) -> str:
    """One setting's tables (top-1 and mAP in %, mean ± std), backfill AUCs and targets.

    Example:
        >>> stat = {"mean": 0.5, "std": 0.01}
        >>> row = {"label": "BCT", "compatible_top1": [True], "compatible_map": [False],
        ...        "gain_top1": {"mean": 0.4, "std": None}, "gain_map": {"mean": -0.1}}
        >>> row |= {f"{p}_{m}": stat for p in PAIRS for m in MEASURES}
        >>> text = bct_markdown({"title": "t", "seeds": [0], "rows": [row], "backfill": {},
        ...                      "targets": []})
        >>> cells = " | ".join(["50.00 ± 1.00"] * 4)
        >>> f"| BCT | {cells} | 1/1 | 0.40 |" in text
        True
    """
    n = len(setting["seeds"])
    lines = [f"### {setting['title']}", ""]
    for measure, name in (("top1", "top-1 (%)"), ("map", "mAP (%)")):
        lines += [
            f"Retrieval {name}, mean ± std over {n} seeds; criterion: M(new, old) > M(old, old).",
            "",
            "| method | M(old, old) | M(new, old) | M(new, new) | M(new\\*, new\\*) "
            "| criterion met | update gain |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in setting["rows"]:
            met = row[f"compatible_{measure}"]
            cells = [_cell(row[f"{pair}_{measure}"]) for pair in PAIRS]
            lines.append(
                f"| {row['label']} | "
                + " | ".join(cells)
                + f" | {sum(met)}/{len(met)} | {_cell(row[f'gain_{measure}'], percent=False)} |"
            )
        lines.append("")
    class_gains = setting.get("class_gains")
    if class_gains:
        lines += [
            "Update gain by class group (queries of the classes the old model saw, or not; "
            "the gallery holds all), mean ± std over seeds:",
            "",
            "| method | gain mAP, seen | gain mAP, unseen | M(new, old) mAP, unseen (%) "
            "| M(old, old) mAP, unseen (%) | gain top-1, seen | gain top-1, unseen |",
            "|---|---|---|---|---|---|---|",
        ]
        for method in _TRAINED:
            seen, unseen = class_gains["seen"][method], class_gains["unseen"][method]
            lines.append(
                f"| {BCT_METHODS[method]} | {_cell(seen['map'], percent=False)} | "
                f"{_cell(unseen['map'], percent=False)} | {_cell(unseen['new_old_map'])} | "
                f"{_cell(unseen['old_old_map'])} | {_cell(seen['top1'], percent=False)} | "
                f"{_cell(unseen['top1'], percent=False)} |"
            )
        lines.append("")
    if setting["backfill"]:
        lines += [
            "Backfilling BCT's gallery (new queries; items re-embedded in order): area under "
            "the curve of the metric against the fraction re-embedded, in %.",
            "",
            "| order | AUC top-1 | AUC mAP | top-1 at 0 / 10 / 30 / 50 / 100 % |",
            "|---|---|---|---|",
        ]
        for order, curve in setting["backfill"].items():
            fractions = curve["fraction"]
            picks = [
                _cell(curve["top1"][fractions.index(f)])
                for f in (0.0, 0.1, 0.3, 0.5, 1.0)
                if f in fractions
            ]
            lines.append(
                f"| {order} | {_cell(curve['auc']['top1'])} | {_cell(curve['auc']['map'])} | "
                + " / ".join(picks)
                + " |"
            )
        lines.append("")
    fastfill = setting.get("fastfill")
    if fastfill:
        lines += [
            "FastFill (Jaeckle et al., ICLR 2023): the gallery starts as h(old) (the "
            "transformation, no model run on the gallery) and is backfilled with new\\* "
            f"vectors; new\\* queries; {len(fastfill['fractions'])} points from 0 to 100 %. "
            "AUC in %, mean ± std over seeds; random: the mean over "
            f"{FASTFILL_PERMUTATIONS} permutations per seed (its spread within a seed in the "
            "last column).",
            "",
            "| measure | sigma order | sigma, the paper's head | random order | oracle order "
            "| random: std within a seed |",
            "|---|---|---|---|---|---|",
        ]
        for m, name in (("top1", "top-1"), ("map", "mAP")):
            a = fastfill["auc"][m]
            lines.append(
                f"| {name} | {_cell(a['sigma'])} | {_cell(a['sigma_paper'])} | "
                f"{_cell(a['random'])} | {_cell(a['oracle'])} | "
                f"{_cell(a['random_std_within_seed'])} |"
            )
        rank = fastfill["sigma_error_rank_correlation"]
        lines += ["", f"Rank correlation of sigma with the true per-item transformation error: "
                  f"{_cell(rank, percent=False)}.", ""]  # fmt: skip
    if setting["targets"]:
        lines += ["| target | value | met |", "|---|---|---|"]
        for t in setting["targets"]:
            met = "yes" if t["passed"] else "**no**"
            value = t["value"]
            shown = "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"
            lines.append(f"| {t['name']} | {shown} ({t['detail']}) | {met} |")
        lines.append("")
    seconds = setting.get("seconds")
    if seconds is not None:
        lines += [f"Wall time {seconds / 60:.1f} min on this machine.", ""]
    return "\n".join(lines)


def run_bct(
    settings: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path,
    stem: str = "bct",
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run ``python -m benchmarks bct`` on ``settings``; write ``<stem>.json``, ``.md``, ``.html``.

    Returns:
        The results dict (as written to JSON).
    """
    specs = [get_bct_setting(name) for name in settings]  # fail fast on a bad name
    title = "Backward-compatible embeddings (python -m benchmarks bct)"
    results = results_header("bct", title, command)
    for spec in specs:
        results["settings"].append(summarise_bct(spec, run_bct_setting(spec, seeds, log=log)))
    sections = [bct_markdown(setting) for setting in results["settings"]]
    write_json_and_markdown(results, out_dir, stem, sections)
    write_bct_html(results, out_dir / f"{stem}.html")
    write_backfill_svgs(results, out_dir, stem)
    return results


def write_backfill_svgs(results: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Write each setting's backfilling curves (top-1 vs fraction) as a standalone SVG.

    Files: ``<out_dir>/<stem>_backfill_<setting>.svg`` (for the README).
    """
    from benchmarks.pages.bct import ORDER_LABELS
    from graceful.report.charts import curve_chart

    paths = []
    for setting in results["settings"]:
        series = [
            {"label": ORDER_LABELS.get(order, order), "x": curve["fraction"], "y": curve["top1"]}
            for order, curve in setting["backfill"].items()
        ]
        svg = curve_chart(
            series,
            x_label="fraction of the gallery re-embedded by the new model",
            y_label="top-1, new queries",
            chart_id=f"backfill-{setting['name']}",
        )
        if svg is not None:
            # a standalone file needs the namespaces that inline SVG in HTML does without
            if "xmlns=" not in svg:
                svg = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
            if "xlink:" in svg and "xmlns:xlink" not in svg:
                svg = svg.replace("<svg ", '<svg xmlns:xlink="http://www.w3.org/1999/xlink" ', 1)
            path = out_dir / f"{stem}_backfill_{setting['name']}.svg"
            atomic_write_text(path, svg)
            paths.append(path)
    return paths
