"""``python -m benchmarks hetero``: small edge models that search a large model's gallery.

The question of Duggal et al. ("Compatibility-aware heterogeneous visual search", CVPR
2021): the cloud embeds the gallery with a large model; can a phone embed queries with a
small model and search that gallery directly? For each candidate small model the
benchmark reports, on the test set with leave-one-out retrieval (relevant = same class,
cosine), M(small, large) (small queries, the large model's gallery), M(small, small) (the
small model alone) and M(large, large) (the paragon), with its cost: parameters, FLOPs per
query (``torch.utils.flop_counter``) and measured single-thread CPU latency per query.
The heterogeneous compatibility criterion is M(small, large) > M(small, small): searching
the large gallery must beat the small model's own.

Compatibility training: the small model is trained with its own head's cross-entropy, the
influence loss through the large model's frozen classifier, and a direct alignment (L2 of
unit vectors) to the large model's embedding of the same input; where the dimensions
differ, the small model's embedding layer is the projection. The search over
architectures is a grid (width x depth x block type, every candidate trained fully), and
the Pareto front of FLOPs against M(small, large) is returned.

Settings: ``animal_mnist`` (a large CNN and a family of small CNNs, conv and
depthwise-separable blocks) and ``rotten_tomatoes`` (MPNet's vectors are the large
gallery; the edge model is MiniLM-L6 with a trained projection into MPNet's space).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset

from benchmarks.data import load_animal_mnist, load_rotten_tomatoes
from graceful.data import Splits, load_digits
from graceful.embedding import EmbeddingOf, WithEmbedding
from graceful.errors import InputError
from graceful.io.atomic import atomic_write_text
from graceful.losses import BCTInfluenceLoss, CompatibleEmbeddingLoss, EmbeddingRegressionLoss
from graceful.models import EdgeCNN, EmbeddingMLP, MLPHead, SmallCNN, pareto_front, profile_model
from graceful.training import CachedTeacher, TrainConfig, seed_everything

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
    "HETERO_SETTINGS",
    "EdgeSpec",
    "HeteroSetting",
    "get_hetero_setting",
    "hetero_markdown",
    "hetero_targets",
    "run_hetero",
    "run_hetero_setting",
    "summarise_hetero",
    "write_hetero_results",
]

MEASURES = ("top1", "top5", "map")


@dataclass(frozen=True)
class EdgeSpec:
    """One candidate small model: an :class:`~graceful.models.EdgeCNN` configuration."""

    width: int
    depth: int
    block: str

    @property
    def name(self) -> str:
        """E.g. ``"dwsep w4 d1"``."""
        return f"{self.block} w{self.width} d{self.depth}"


@dataclass(frozen=True)
class HeteroSetting:
    """One ``bench hetero`` setting (see the module docs)."""

    name: str
    title: str
    description: str
    kind: str
    load_large: Callable[[], Splits]
    load_small: Callable[[], Splits]
    config: TrainConfig
    small_config: TrainConfig | None = None
    large_width: int = 16
    embedding_dim: int = 64
    grid: Sequence[EdgeSpec] = ()
    independent: EdgeSpec | None = None
    input_shape: tuple[int, ...] = (1, 28, 28)
    lam_influence: float = 1.0
    lam_regression: float = 1.0
    latency_repeats: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


def _compatibility_loss(setting: HeteroSetting, head: nn.Linear) -> CompatibleEmbeddingLoss:
    return CompatibleEmbeddingLoss(
        influence=BCTInfluenceLoss(head.weight, head.bias),
        regression=EmbeddingRegressionLoss(normalize=True),
        lam_influence=setting.lam_influence,
        lam_regression=setting.lam_regression,
    )


def _image_seed(
    setting: HeteroSetting, seed: int, log: Callable[[str], None], profile: bool
) -> dict[str, Any]:
    data = setting.load_large()
    n_classes, dim = len(data.train.classes), setting.embedding_dim
    cfg, labels = setting.config, data.test.y
    small_cfg = setting.small_config or cfg

    log(f"[{setting.name}] seed {seed}: large model (SmallCNN width {setting.large_width})")
    seed_everything(1000 * seed)
    large = SmallCNN(width=setting.large_width, num_classes=n_classes, embedding_dim=dim)
    train(large, cfg, 1000 * seed, data.train, data.val)
    head = large.head
    if not isinstance(head, nn.Linear):
        raise TypeError("the large model's head must be linear")
    gallery = embed(large, data.test)
    both: ConcatDataset[Any] = ConcatDataset(
        [data.train.to_tensor_dataset(), data.val.to_tensor_dataset()]
    )
    teacher = CachedTeacher.build(EmbeddingOf(large), both)
    large_large = loo_retrieval(gallery, gallery, labels)
    result: dict[str, Any] = {"large_large": large_large, "candidates": {}}
    if profile:
        result["large_cost"] = _cost(large, setting)

    def small(spec: EdgeSpec) -> EdgeCNN:
        seed_everything(1000 * seed + 1)
        return EdgeCNN(
            spec.width,
            spec.depth,
            block=spec.block,
            num_classes=n_classes,
            in_channels=setting.input_shape[0],
            embedding_dim=dim,
        )

    for spec in setting.grid:
        log(f"[{setting.name}] seed {seed}: compatible {spec.name}")
        model = small(spec)
        loss = _compatibility_loss(setting, head)
        train(WithEmbedding(model), small_cfg, 1000 * seed + 1, data.train, data.val,
               loss=loss, teacher=teacher)  # fmt: skip
        emb = embed(model, data.test)
        entry = {
            "small_large": loo_retrieval(emb, gallery, labels),
            "small_small": loo_retrieval(emb, emb, labels),
        }
        if profile:
            entry["cost"] = _cost(model, setting)
        result["candidates"][spec.name] = entry
    if setting.independent is not None:
        spec = setting.independent
        log(f"[{setting.name}] seed {seed}: independent {spec.name}")
        model = small(spec)
        train(WithEmbedding(model), small_cfg, 1000 * seed + 1, data.train, data.val)
        emb = embed(model, data.test)
        result["independent"] = {
            "name": spec.name,
            "small_large": loo_retrieval(emb, gallery, labels),
            "small_small": loo_retrieval(emb, emb, labels),
        }
    return result


def _text_seed(
    setting: HeteroSetting, seed: int, log: Callable[[str], None], profile: bool
) -> dict[str, Any]:
    large_data, small_data = setting.load_large(), setting.load_small()
    if not np.array_equal(large_data.test.ids, small_data.test.ids):
        raise InputError(f"Setting {setting.name!r}: the two encoders' splits differ")
    n_classes, labels, cfg = len(large_data.train.classes), large_data.test.y, setting.config
    large_dim, small_dim = large_data.train.x.shape[1], small_data.train.x.shape[1]

    log(f"[{setting.name}] seed {seed}: the large model's classifier")
    seed_everything(1000 * seed)
    large_head = MLPHead(large_dim, n_classes, hidden=0)
    train(large_head, cfg, 1000 * seed, large_data.train, large_data.val)
    linear = large_head.net
    if not isinstance(linear, nn.Linear):
        raise TypeError("the large classifier must be linear")
    gallery = torch.as_tensor(large_data.test.x)
    raw_small = torch.as_tensor(small_data.test.x)
    ids = np.concatenate([large_data.train.ids, large_data.val.ids])
    teacher = CachedTeacher(
        torch.as_tensor(ids),
        torch.as_tensor(np.concatenate([large_data.train.x, large_data.val.x])),
    )
    result: dict[str, Any] = {
        "large_large": loo_retrieval(gallery, gallery, labels),
        "small_raw": loo_retrieval(raw_small, raw_small, labels),
        "candidates": {},
    }

    def projection() -> EmbeddingMLP:
        seed_everything(1000 * seed + 1)
        return EmbeddingMLP(small_dim, large_dim, n_classes, hidden=0)

    log(f"[{setting.name}] seed {seed}: compatible projection")
    model = projection()
    train(WithEmbedding(model), cfg, 1000 * seed + 1, small_data.train, small_data.val,
           loss=_compatibility_loss(setting, linear), teacher=teacher)  # fmt: skip
    emb = embed(model, small_data.test)
    result["candidates"]["projection"] = {
        "small_large": loo_retrieval(emb, gallery, labels),
        "small_small": loo_retrieval(emb, emb, labels),
    }
    log(f"[{setting.name}] seed {seed}: independent projection")
    model = projection()
    train(WithEmbedding(model), cfg, 1000 * seed + 1, small_data.train, small_data.val)
    emb = embed(model, small_data.test)
    result["independent"] = {
        "name": "projection",
        "small_large": loo_retrieval(emb, gallery, labels),
        "small_small": loo_retrieval(emb, emb, labels),
    }
    return result


def _cost(model: nn.Module, setting: HeteroSetting) -> dict[str, float]:
    cost = profile_model(model, setting.input_shape, repeats=setting.latency_repeats)
    return {
        "parameters": float(cost.parameters),
        "flops": float(cost.flops),
        "latency_ms": float(cost.latency_ms_median),
        "latency_ms_p90": float(cost.latency_ms_p90),
    }


def run_hetero_setting(
    setting: HeteroSetting, seeds: Sequence[int], *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train and evaluate every candidate on each seed; costs are measured on the first."""
    start = time.perf_counter()
    run = _image_seed if setting.kind == "image" else _text_seed
    per_seed = {
        seed: run(setting, seed, log, profile=(i == 0 and setting.kind == "image"))
        for i, seed in enumerate(seeds)
    }
    return {"per_seed": per_seed, "seconds": time.perf_counter() - start}


def _pair_stats(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in ("small_large", "small_small"):
        for m in MEASURES:
            out[f"{pair}_{m}"] = stat([e[pair][m] for e in entries])
    out["compatible_top1"] = [e["small_large"]["top1"] > e["small_small"]["top1"] for e in entries]
    out["compatible_map"] = [e["small_large"]["map"] > e["small_small"]["map"] for e in entries]
    return out


def summarise_hetero(setting: HeteroSetting, raw: dict[str, Any]) -> dict[str, Any]:
    """Tables per candidate, the Pareto front, the independent model and the targets."""
    seeds = sorted(raw["per_seed"])
    runs = [raw["per_seed"][s] for s in seeds]
    paragon = {m: stat([r["large_large"][m] for r in runs]) for m in MEASURES}
    first = runs[0]
    large_cost = first.get("large_cost")
    rows = []
    for name in first["candidates"]:
        row: dict[str, Any] = {"name": name}
        row |= _pair_stats([r["candidates"][name] for r in runs])
        cost = first["candidates"][name].get("cost")
        if cost is not None:
            row["cost"] = cost
            if large_cost is not None:
                row["flops_ratio"] = large_cost["flops"] / cost["flops"]
        rows.append(row)
    independent = None
    if "independent" in first:
        independent = {"name": first["independent"]["name"]}
        independent |= _pair_stats([r["independent"] for r in runs])
    front: list[str] = []
    if large_cost is not None:
        points = [
            {"flops": row["cost"]["flops"], "top1": row["small_large_top1"]["mean"]} for row in rows
        ]
        front = [rows[i]["name"] for i in pareto_front(points, cost="flops", value="top1")]
    targets = hetero_targets(rows, paragon["top1"]["mean"], independent, image=bool(large_cost))
    out = {
        "name": setting.name,
        "title": setting.title,
        "description": setting.description,
        "seeds": seeds,
        "paragon": paragon,
        "large_cost": large_cost,
        "rows": rows,
        "independent": independent,
        "pareto_front": front,
        "targets": targets,
        "seconds": raw["seconds"],
    }
    if "small_raw" in first:
        out["small_raw"] = {m: stat([r["small_raw"][m] for r in runs]) for m in MEASURES}
    return out


def hetero_targets(
    rows: Sequence[dict[str, Any]],
    paragon_top1: float,
    independent: dict[str, Any] | None,
    *,
    image: bool,
) -> list[dict[str, Any]]:
    """The issue's targets from the summarised rows (see :func:`summarise_hetero`).

    Image settings: some small model with >= 10x fewer FLOPs than the large one meets the
    criterion in every seed with mean top-1 within 3 pt of the paragon's. Text settings:
    each edge model meets the criterion in every seed. Both: the independently trained
    small model meets it in no seed.
    """
    targets: list[dict[str, Any]] = []
    if image:
        cheap = [row for row in rows if row.get("flops_ratio", 0.0) >= 10.0]
        good = [
            row
            for row in cheap
            if all(row["compatible_top1"])
            and paragon_top1 - row["small_large_top1"]["mean"] <= 0.03
        ]
        pool = good or cheap
        best = max(pool, key=lambda r: r["small_large_top1"]["mean"], default=None)
        if best is None:
            detail = "no candidate has >= 10x fewer FLOPs"
        else:
            met = best["compatible_top1"]
            detail = (
                f"{'best qualifying' if good else 'none qualifies; closest'}: {best['name']}"
                f" ({best['flops_ratio']:.1f}x fewer FLOPs), top-1"
                f" {100 * best['small_large_top1']['mean']:.2f}% vs paragon"
                f" {100 * paragon_top1:.2f}%, criterion met in {sum(met)}/{len(met)} seeds;"
                f" {len(good)} of {len(cheap)} candidates with >= 10x fewer FLOPs qualify"
                " (value: the gap in pt)"
            )
        targets.append(
            {
                "name": "a compatible small model with >= 10x fewer FLOPs within 3 pt of the"
                " paragon's top-1",
                "value": None
                if best is None
                else 100 * (paragon_top1 - best["small_large_top1"]["mean"]),
                "passed": bool(good),
                "detail": detail,
            }
        )
    else:
        for row in rows:
            met = row["compatible_top1"]
            targets.append(
                {
                    "name": "the edge model searching the large gallery beats its own"
                    " small/small retrieval (top-1)",
                    "value": 100
                    * (row["small_large_top1"]["mean"] - row["small_small_top1"]["mean"]),
                    "passed": all(met),
                    "detail": f"{row['name']}: met in {sum(met)}/{len(met)} seeds (value: the"
                    " difference in pt)",
                }
            )
    if independent is not None:
        met = independent["compatible_top1"]
        targets.append(
            {
                "name": "the independently trained small model fails the criterion (top-1)",
                "value": float(sum(met)),
                "passed": not any(met),
                "detail": f"criterion met in {sum(met)}/{len(met)} seeds",
            }
        )
    return targets


def hetero_markdown(setting: dict[str, Any]) -> str:
    """One setting's table: cost and asymmetric retrieval per candidate, then the targets.

    Example:
        >>> s = {"mean": 0.9, "std": None}
        >>> row = {"name": "conv w2 d1", "small_large_top1": s, "small_small_top1": s,
        ...        "small_large_map": s, "compatible_top1": [True]}
        >>> text = hetero_markdown({"title": "t", "seeds": [0], "paragon": {"top1": s},
        ...     "rows": [row], "independent": None, "pareto_front": [], "targets": []})
        >>> "| conv w2 d1 |" in text
        True
    """
    n = len(setting["seeds"])
    large = setting.get("large_cost")
    lines = [
        f"### {setting['title']}",
        "",
        f"Mean ± std over {n} seeds; retrieval in %; cost per query (batch 1, one thread)."
        " Criterion: M(small, large) > M(small, small).",
        "",
        "| small model | params | MFLOPs | FLOPs vs large | latency (ms) | M(small, large)"
        " top-1 | M(small, small) top-1 | M(small, large) mAP | criterion met | Pareto |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    front = set(setting["pareto_front"])
    for row in setting["rows"]:
        cost = row.get("cost")
        cells = (
            [
                f"{cost['parameters'] / 1e3:.1f}k",
                f"{cost['flops'] / 1e6:.2f}",
                f"1/{row['flops_ratio']:.1f}",
                f"{cost['latency_ms']:.2f}",
            ]
            if cost
            else ["-"] * 4
        )
        met = row["compatible_top1"]
        lines.append(
            f"| {row['name']} | "
            + " | ".join(cells)
            + f" | {_cell(row['small_large_top1'])} | {_cell(row['small_small_top1'])}"
            f" | {_cell(row['small_large_map'])} | {sum(met)}/{len(met)}"
            f" | {'yes' if row['name'] in front else ''} |"
        )
    ind = setting.get("independent")
    if ind:
        met = ind["compatible_top1"]
        lines.append(
            f"| independent {ind['name']} (not trained for compatibility) | | | | "
            f"| {_cell(ind['small_large_top1'])} | {_cell(ind['small_small_top1'])}"
            f" | {_cell(ind['small_large_map'])} | {sum(met)}/{len(met)} | |"
        )
    paragon = setting["paragon"]
    large_cells = (
        f"{large['parameters'] / 1e3:.1f}k | {large['flops'] / 1e6:.2f} | 1 |"
        f" {large['latency_ms']:.2f}"
        if large
        else " | | |"
    )
    lines.append(
        f"| large model (paragon: M(large, large)) | {large_cells} | {_cell(paragon['top1'])}"
        f" | | {_cell(paragon.get('map'))} | | |"
    )
    if setting.get("small_raw"):
        raw = setting["small_raw"]
        lines.append(
            f"| small encoder's raw vectors, small/small | | | | | | {_cell(raw['top1'])} | | | |"
        )
    lines.append("")
    if setting["targets"]:
        lines += ["| target | value | met |", "|---|---|---|"]
        for t in setting["targets"]:
            value = t["value"]
            shown = "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"
            lines.append(
                f"| {t['name']} | {shown} ({t['detail']}) | {'yes' if t['passed'] else '**no**'} |"
            )
        lines.append("")
    if setting.get("seconds") is not None:
        lines += [f"Wall time {setting['seconds'] / 60:.1f} min on this machine.", ""]
    return "\n".join(lines)


def _flops_chart(setting: dict[str, Any], path: Path) -> Path | None:
    """FLOPs (log) against M(small, large) top-1 with the Pareto front and the paragon."""
    if not setting.get("large_cost"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = setting["rows"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for block, marker in (("conv", "o"), ("dwsep", "s"), ("inverted", "^")):
        chosen = [r for r in rows if r["name"].startswith(block)]
        if not chosen:
            continue
        ax.errorbar(
            [r["cost"]["flops"] / 1e6 for r in chosen],
            [100 * r["small_large_top1"]["mean"] for r in chosen],
            yerr=[100 * (r["small_large_top1"]["std"] or 0.0) for r in chosen],
            fmt=marker,
            label=f"small ({block}) -> large gallery",
            capsize=3,
        )
    front = [r for r in rows if r["name"] in set(setting["pareto_front"])]
    front.sort(key=lambda r: r["cost"]["flops"])
    ax.plot(
        [r["cost"]["flops"] / 1e6 for r in front],
        [100 * r["small_large_top1"]["mean"] for r in front],
        "--",
        color="grey",
        label="Pareto front",
    )
    paragon = 100 * setting["paragon"]["top1"]["mean"]
    ax.scatter([setting["large_cost"]["flops"] / 1e6], [paragon], marker="*", s=160,
               color="black", label="large / large (paragon)", zorder=3)  # fmt: skip
    ax.axhline(paragon - 3, color="red", lw=0.8, ls=":", label="paragon - 3 pt")
    ax.axvline(setting["large_cost"]["flops"] / 1e7, color="red", lw=0.8, ls="-.",
               label="10x fewer FLOPs")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("MFLOPs per query (log scale)")
    ax.set_ylabel("top-1 (%), leave-one-out")
    ax.set_title(setting["title"], fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    atomic_write_text(path, buffer.getvalue())
    return path


def run_hetero(
    settings: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path,
    stem: str = "hetero",
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run ``python -m benchmarks hetero``; write ``<stem>.json``, ``.md`` and FLOPs plots (SVG)."""
    specs = [get_hetero_setting(name) for name in settings]  # fail fast on a bad name
    results = results_header(
        "hetero", "Compatible models across devices (python -m benchmarks hetero)", command
    )
    for spec in specs:
        results["settings"].append(summarise_hetero(spec, run_hetero_setting(spec, seeds, log=log)))
    write_hetero_results(results, out_dir, stem)
    return results


def write_hetero_results(results: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and one FLOPs plot per image setting."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[str] = []
    for setting in results["settings"]:
        section = hetero_markdown(setting)
        chart = _flops_chart(setting, out_dir / f"{stem}_flops_{setting['name']}.svg")
        if chart is not None:
            section += f"\n![FLOPs vs accuracy]({chart.name})\n"
        sections.append(section)
    paths = list(write_json_and_markdown(results, out_dir, stem, sections))
    return paths + sorted(out_dir.glob(f"{stem}_flops_*.svg"))


_IMAGE_GRID = tuple(EdgeSpec(w, d, b) for b in ("conv", "dwsep") for w in (2, 4, 8) for d in (1, 2))


def _animal_mnist() -> HeteroSetting:
    return HeteroSetting(
        name="animal_mnist",
        title="Animal-MNIST: large CNN (width 16) gallery, small CNN queries",
        description=(
            "Large: SmallCNN width 16 (two 3x3 convs per stage), 64-d embedding, trained alone "
            "on the 7,000-image training split, 10 epochs. Small: EdgeCNN, widths 2/4/8, 1 or 2 "
            "blocks per stage, plain 3x3 conv or depthwise-separable blocks, 64-d embedding, "
            "trained for 20 epochs with cross-entropy + influence through the large model's "
            "classifier + 10 x L2 alignment to its unit embeddings. SGD + one-cycle (peak lr "
            "0.05), batch 128. Grid search: every candidate trained fully (12 per seed). "
            "Retrieval on the 2,000 test images, leave-one-out, cosine."
        ),
        kind="image",
        load_large=cache(load_animal_mnist),
        load_small=cache(load_animal_mnist),
        config=TrainConfig(epochs=10, batch_size=128, lr=0.05, progress=False),
        small_config=TrainConfig(epochs=20, batch_size=128, lr=0.05, progress=False),
        lam_regression=10.0,
        grid=_IMAGE_GRID,
        independent=EdgeSpec(4, 1, "dwsep"),
    )


def _rotten_tomatoes() -> HeteroSetting:
    return HeteroSetting(
        name="rotten_tomatoes",
        title="Rotten Tomatoes: MPNet gallery (large), MiniLM-L6 + projection queries (edge)",
        description=(
            "Large: frozen all-mpnet-base-v2 vectors (768-d) are the gallery; a linear "
            "classifier on them is the influence head. Edge: frozen all-MiniLM-L6-v2 vectors "
            "(384-d) through a trained linear projection to 768-d, trained with its own head's "
            "cross-entropy + influence + L2 alignment to MPNet's unit vectors (Adam, 10 "
            "epochs). Retrieval on the 2,562 test snippets, leave-one-out, cosine."
        ),
        kind="text",
        load_large=cache(lambda: load_rotten_tomatoes("mpnet")),
        load_small=cache(lambda: load_rotten_tomatoes("minilm-l6")),
        config=TrainConfig(
            epochs=10,
            batch_size=128,
            lr=1e-3,
            optimizer="adam",
            schedule="cosine",
            weight_decay=0.0,
            progress=False,
        ),
    )


def _digits() -> HeteroSetting:
    return HeteroSetting(
        name="digits",
        title="Digits smoke test: large CNN width 4, two small candidates, one epoch",
        description="A seconds-long run of the whole pipeline; not a result.",
        kind="image",
        load_large=cache(load_digits),
        load_small=cache(load_digits),
        config=TrainConfig(epochs=1, batch_size=64, lr=0.05, progress=False),
        large_width=4,
        embedding_dim=16,
        grid=(EdgeSpec(2, 1, "conv"), EdgeSpec(2, 1, "dwsep")),
        independent=EdgeSpec(2, 1, "dwsep"),
        input_shape=(1, 8, 8),
        latency_repeats=5,
    )


HETERO_SETTINGS: dict[str, Callable[[], HeteroSetting]] = {
    "animal_mnist": _animal_mnist,
    "rotten_tomatoes": _rotten_tomatoes,
    "digits": _digits,
}
"""Setting name -> factory."""


def get_hetero_setting(name: str) -> HeteroSetting:
    """The ``bench hetero`` setting called ``name``.

    Example:
        >>> len(get_hetero_setting("animal_mnist").grid)
        12
    """
    return setting_from(HETERO_SETTINGS, name)
