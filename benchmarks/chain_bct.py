"""``python -m benchmarks chain-bct``: a chain of versions kept compatible by training.

Three versions of an Animal-MNIST CNN (widths 8 -> 16 -> 32, embedding dimension 32, each
from its own seed, 4 epochs), the gallery under v1. v2 is trained with BCT's influence
loss through v1's frozen classifier. v3 is trained three ways from the same seed:

* **independently** (no constraint): its own accuracy is the reference;
* **BCT on v2 alone**: compatible with v2 directly, with v1 only through v2
  (transitivity is what a chain of single-step updates relies on);
* **BCT on v1 and v2**: one influence term per earlier classifier
  (``CompatibleEmbeddingLoss(influence=[...])``), the growing set of constraints.

Reported per variant: v3's own mAP and top-1 (v3 queries, v3 gallery), and its retrieval
against the v2 and v1 galleries with no adapter. The compatibility criterion
(:func:`graceful.retrieval.is_compatible`: v3 -> v1 mAP above v1 / v1) is checked in every
seed. Queries: the test split; gallery: the train and validation splits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from graceful.embedding import WithEmbedding
from graceful.losses import BCTInfluenceLoss, CompatibleEmbeddingLoss
from graceful.models import SmallCNN
from graceful.retrieval import is_compatible
from graceful.training import TrainConfig, seed_everything

from ._common import embed, results_header, setting_named, stat, train, write_json_and_markdown
from .clusters_chain import CHAIN_SETTINGS, _map_top1, _put
from .output import _cell

__all__ = ["CHAIN_BCT_SETTINGS", "chain_bct_markdown", "run_chain_bct"]

EMBEDDING_DIM = 32

CHAIN_BCT_SETTINGS = CHAIN_SETTINGS
"""The chain's settings (``python -m benchmarks chain``): the same data, widths and epochs."""

_VARIANTS = ("independent", "bct_v2", "bct_v1_v2")
_LABELS = {
    "independent": "v3 trained independently",
    "bct_v2": "v3 trained with BCT on v2 alone",
    "bct_v1_v2": "v3 trained with BCT on v1 and v2",
}


def _influence(model: SmallCNN) -> BCTInfluenceLoss:
    head = model.head
    if not isinstance(head, nn.Linear):  # SmallCNN's default head is linear
        raise TypeError("the chain's models must have linear heads")
    return BCTInfluenceLoss(head.weight.detach(), head.bias.detach())


def _seed_vectors(
    load: Callable[[], Any],
    widths: tuple[int, int, int],
    epochs: int,
    seed: int,
    log: Callable[[str], None],
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Each model's (gallery, queries) embeddings for one seed, and both label arrays."""
    data = load()
    n_classes = len(data.train.classes)
    config = TrainConfig(epochs=epochs, batch_size=128, lr=0.05, progress=False)

    def model(width: int, offset: int) -> SmallCNN:
        seed_everything(1000 * seed + offset)
        return SmallCNN(width=width, num_classes=n_classes, embedding_dim=EMBEDDING_DIM)

    def vectors(m: SmallCNN) -> tuple[np.ndarray, np.ndarray]:
        gallery = torch.cat([embed(m, data.train), embed(m, data.val)])
        return gallery.numpy(), embed(m, data.test).numpy()

    def fit(m: SmallCNN, offset: int, influence: list[BCTInfluenceLoss] | None) -> SmallCNN:
        loss = None if influence is None else CompatibleEmbeddingLoss(influence=influence)
        train(WithEmbedding(m), config, 1000 * seed + offset, data.train, data.val, loss=loss)
        return m

    log(f"[chain-bct] seed {seed}: v1 (width {widths[0]})")
    v1 = fit(model(widths[0], 0), 0, None)
    log(f"[chain-bct] seed {seed}: v2 (width {widths[1]}), BCT on v1")
    v2 = fit(model(widths[1], 1), 1, [_influence(v1)])
    out = {"v1": vectors(v1), "v2": vectors(v2)}
    constraints: dict[str, list[BCTInfluenceLoss] | None] = {
        "independent": None,
        "bct_v2": [_influence(v2)],
        "bct_v1_v2": [_influence(v1), _influence(v2)],
    }
    for variant, influence in constraints.items():
        log(f"[chain-bct] seed {seed}: v3 (width {widths[2]}), {_LABELS[variant]}")
        out[variant] = vectors(fit(model(widths[2], 2), 2, influence))  # same init each time
    g_labels = np.concatenate([data.train.y, data.val.y])
    return out, g_labels, np.asarray(data.test.y)


def run_chain_bct(
    names: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path | None = None,
    stem: str = "chain_bct",
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the chain per setting and seed; ``<stem>.json`` / ``.md`` into ``out_dir``."""
    specs = [(name, setting_named(CHAIN_BCT_SETTINGS, name)) for name in names]
    results = results_header("chain-bct", "Chains of versions kept compatible by training", command)
    for name, (title, load, widths, epochs) in specs:
        start = time.perf_counter()
        raw: dict[str, dict[str, list[float]]] = {}
        compatible: dict[str, list[bool]] = {v: [] for v in _VARIANTS}

        for seed in seeds:
            vec, gl, ql = _seed_vectors(load, widths, epochs, seed, log)
            (g1, q1), (g2, q2) = vec["v1"], vec["v2"]
            base = _map_top1(q1, ql, g1, gl)
            _put(raw, "v1 / v1 (no update)", base)
            _put(raw, "v2 / v2", _map_top1(q2, ql, g2, gl))
            _put(raw, "v2 -> v1", _map_top1(q2, ql, g1, gl))
            for variant in _VARIANTS:
                g3, q3 = vec[variant]
                label = _LABELS[variant]
                _put(raw, f"{label}: v3 / v3", _map_top1(q3, ql, g3, gl))
                _put(raw, f"{label}: v3 -> v2", _map_top1(q3, ql, g2, gl))
                to_v1 = _map_top1(q3, ql, g1, gl)
                _put(raw, f"{label}: v3 -> v1", to_v1)
                compatible[variant].append(is_compatible(to_v1["map"], base["map"]))
            log(
                f"[chain-bct {name}] seed {seed}: v3 -> v1 mAP "
                + ", ".join(
                    f"{v} {raw[f'{_LABELS[v]}: v3 -> v1']['map'][-1]:.4f}" for v in _VARIANTS
                )
                + f" vs v1/v1 {base['map']:.4f}"
            )
        rows = {key: {m: stat(v) for m, v in metrics.items()} for key, metrics in raw.items()}
        targets = [
            {
                "name": f"{_LABELS[variant]}: v3 -> v1 meets the compatibility criterion "
                "(mAP above v1 / v1) in every seed",
                "value": float(np.mean(compatible[variant])),
                "threshold": 1.0,
                "passed": bool(all(compatible[variant])),
            }
            for variant in ("bct_v2", "bct_v1_v2")
        ]
        results["settings"].append(
            {
                "name": name,
                "title": title,
                "seeds": list(seeds),
                "widths": list(widths),
                "embedding_dim": EMBEDDING_DIM,
                "seconds": time.perf_counter() - start,
                "rows": rows,
                "raw": raw,
                "compatible_per_seed": compatible,
                "targets": targets,
            }
        )
    if out_dir is not None:
        write_json_and_markdown(
            results, out_dir, stem, [chain_bct_markdown(s) for s in results["settings"]]
        )
    return results


def chain_bct_markdown(setting: dict[str, Any]) -> str:
    """One setting's table (mAP and top-1 per queries -> gallery pair) and its targets.

    Example:
        >>> s = {"title": "T", "seeds": [0], "seconds": 1.0, "rows": {"v1 / v1 (no update)":
        ...      {"map": {"mean": 0.5, "std": 0.0}, "top1": {"mean": 0.6, "std": 0.0}}},
        ...      "compatible_per_seed": {"bct_v2": [True]}, "targets": []}
        >>> "| v1 / v1 (no update) | 50.00 ± 0.00 | 60.00 ± 0.00 |" in chain_bct_markdown(s)
        True
    """
    lines = [
        f"### {setting['title']}",
        "",
        "No adapters: every pair compares raw vectors. Queries: the test split; gallery: "
        "train + validation.",
        "",
        "| queries -> gallery | mAP (%) | top-1 (%) |",
        "|---|---|---|",
    ]
    for key, row in setting["rows"].items():
        cells = [_cell(row[m]) for m in ("map", "top1")]
        lines.append(f"| {key} | {cells[0]} | {cells[1]} |")
    per_seed = ", ".join(
        f"{_LABELS.get(v, v)}: {sum(flags)}/{len(flags)}"
        for v, flags in setting["compatible_per_seed"].items()
    )
    lines += [
        "",
        f"Seeds meeting the criterion (v3 -> v1 mAP above v1 / v1): {per_seed}.",
        "",
        f"Mean ± std over {len(setting['seeds'])} seeds; {setting['seconds']:.0f} s.",
    ]
    if setting["targets"]:
        lines += ["", "| target | value | threshold | met |", "|---|---|---|---|"]
        for t in setting["targets"]:
            met = "yes" if t["passed"] else "**no**"
            lines.append(f"| {t['name']} | {t['value']:.3f} | {t['threshold']:.3f} | {met} |")
    return "\n".join(lines) + "\n"
