"""``python -m benchmarks clusters`` and ``python -m benchmarks chain``: old structures, new models.

**clusters**: the gallery's k-means clusters are made with the old model; after the update
new items arrive embedded by the new model. Per setting (those of ``adapters``), seed and
``k`` it fits spherical k-means centroids on the old gallery vectors and compares, on the
held-out items (the test split, "new arrivals") and on the gallery itself, the old model's
own assignment (the reference) with

* **new model through the adapter, old centroids**: a Procrustes query adapter fitted on
  a tenth of the gallery (:func:`graceful.retrieval.fit_query_adapter`) maps the new
  vectors into the old space, :func:`graceful.retrieval.assign_clusters` assigns them;
* **new model, re-clustered**: k-means from scratch on the new gallery vectors (what a
  re-clustering gives; every cluster id changes);
* **old model, k-means from another seed**: the noise floor of k-means itself.

Reported: ARI and NMI against the reference (they forgive relabelling), the share of items
keeping their cluster id, and purity against the class labels.

**chain**: three versions of an Animal-MNIST CNN (widths 8 -> 16 -> 32, each its own seed,
4 epochs), a gallery under v1. Each update records a Procrustes adapter fitted on a tenth
of the gallery embedded by both of its versions (v2 -> v1, then v3 -> v2, each on its own
draw). v3 queries reach v1 items through the composed chain
(:func:`graceful.retrieval.compose_adapters`, as :meth:`graceful.gallery.Gallery.chain_adapter`
builds it), against a direct v3 -> v1 adapter (which needs the v1 model at the v3 update)
and the single links.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graceful.data import load_digits
from graceful.retrieval import (
    assign_clusters,
    cluster_agreement,
    cluster_purity,
    compose_adapters,
    fit_centroids,
    fit_query_adapter,
    is_compatible,
    retrieval_metrics,
)

from ._common import results_header, setting_named, stat, write_json_and_markdown
from .adapters import ADAPTER_SETTINGS, animal_mnist, cnn_versions

__all__ = ["chain_markdown", "clusters_markdown", "run_chain", "run_clusters"]

CLUSTER_KS = (10, 50)
PAIRED_FRACTION = 0.1


def _put(raw: dict[str, dict[str, list[float]]], key: str, values: dict[str, float]) -> None:
    for metric, value in values.items():
        raw.setdefault(key, {}).setdefault(metric, []).append(float(value))


def _scores(reference: np.ndarray, assigned: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {**cluster_agreement(reference, assigned), "purity": cluster_purity(assigned, labels)}


def run_clusters(
    names: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path | None = None,
    stem: str = "clusters",
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Old clusters serving new vectors, per setting; writes ``<stem>.json`` and ``.md``."""
    specs = [setting_named(ADAPTER_SETTINGS, n) for n in names]
    results = results_header("clusters", "Clusters that survive the update", command)
    for spec in specs:
        start = time.perf_counter()
        raw: dict[str, dict[str, list[float]]] = {}
        for seed in seeds:
            e = spec.embed(seed)
            n = len(e.gallery_old)
            pick = np.random.default_rng(seed).permutation(n)[: max(2, round(PAIRED_FRACTION * n))]
            adapter = fit_query_adapter(e.gallery_new[pick], e.gallery_old[pick], seed=seed)
            parts = {
                "arrivals": (e.query_old, e.query_new, e.query_labels),
                "gallery": (e.gallery_old, e.gallery_new, e.gallery_labels),
            }
            for k in CLUSTER_KS:
                old_c = fit_centroids(e.gallery_old, k, seed=seed)
                rerun_c = fit_centroids(e.gallery_old, k, seed=seed + 10_000)
                new_c = fit_centroids(e.gallery_new, k, seed=seed)
                for part, (x_old, x_new, labels) in parts.items():
                    ref = assign_clusters(x_old, old_c)
                    rows = {
                        "old model (reference)": ref,
                        "new model through the adapter, old centroids": assign_clusters(
                            x_new, old_c, adapter=adapter
                        ),
                        "new model, re-clustered": assign_clusters(x_new, new_c),
                        "old model, k-means from another seed": assign_clusters(x_old, rerun_c),
                    }
                    for label, assigned in rows.items():
                        _put(raw, f"{part} | k={k} | {label}", _scores(ref, assigned, labels))
                last = raw[f"arrivals | k={k} | new model through the adapter, old centroids"]
                log(
                    f"[clusters {spec.name}] seed {seed} k={k}: arrivals through the adapter "
                    f"ARI {last['ari'][-1]:.3f}, same id {last['same_id'][-1]:.3f}"
                )
        rows_stat = {key: {m: stat(v) for m, v in metrics.items()} for key, metrics in raw.items()}
        targets = []
        for k in CLUSTER_KS:
            adapted = rows_stat[f"arrivals | k={k} | new model through the adapter, old centroids"]
            floor = rows_stat[f"arrivals | k={k} | old model, k-means from another seed"]
            value, threshold = adapted["ari"]["mean"], floor["ari"]["mean"]
            targets.append(
                {
                    "name": f"k={k}: new arrivals through the adapter agree with the old "
                    "clustering (ARI) at least as well as k-means rerun on the old vectors",
                    "value": value,
                    "threshold": threshold,
                    "passed": bool(value >= threshold),
                }
            )
        results["settings"].append(
            {
                "name": spec.name,
                "title": spec.title,
                "seeds": list(seeds),
                "ks": list(CLUSTER_KS),
                "paired_fraction": PAIRED_FRACTION,
                "seconds": time.perf_counter() - start,
                "rows": rows_stat,
                "raw": raw,
                "targets": targets,
            }
        )
    if out_dir is not None:
        write_json_and_markdown(
            results, out_dir, stem, [clusters_markdown(s) for s in results["settings"]]
        )
    return results


def _cell(s: dict[str, Any] | None, scale: float = 1.0, digits: int = 3) -> str:
    if not s or s.get("mean") is None:
        return "n/a"
    std = s.get("std")
    text = f"{scale * s['mean']:.{digits}f}"
    return text if std is None else f"{text} ± {scale * std:.{digits}f}"


def _targets_table(targets: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["", "| target | value | threshold | met |", "|---|---|---|---|"]
    for t in targets:
        met = "yes" if t["passed"] else "**no**"
        lines.append(f"| {t['name']} | {t['value']:.3f} | {t['threshold']:.3f} | {met} |")
    return lines


def clusters_markdown(setting: dict[str, Any]) -> str:
    """One setting's table: ARI, NMI, same id, purity per (items, k, assignment)."""
    lines = [
        f"### {setting['title']}",
        "",
        "Centroids: spherical k-means on the old gallery vectors. Reference: the old model's "
        "assignment of the same items. Adapter: Procrustes on "
        f"{100 * setting['paired_fraction']:.0f} % of the gallery.",
        "",
        "| items | k | assignment | ARI | NMI | same id | purity |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, row in setting["rows"].items():
        part, k, label = key.split(" | ")
        lines.append(
            f"| {part} | {k.removeprefix('k=')} | {label} | {_cell(row['ari'])} | "
            f"{_cell(row['nmi'])} | {_cell(row['same_id'])} | {_cell(row['purity'])} |"
        )
    lines += ["", f"Mean ± std over {len(setting['seeds'])} seeds; {setting['seconds']:.0f} s."]
    lines += _targets_table(setting["targets"])
    return "\n".join(lines) + "\n"


CHAIN_SETTINGS: dict[str, tuple[str, Callable[[], Any], tuple[int, int, int], int]] = {
    "image": (
        "Animal-MNIST: CNN width 8 (v1) -> 16 (v2) -> 32 (v3), gallery under v1",
        animal_mnist,
        (8, 16, 32),
        4,
    ),
    "digits": (
        "Digits smoke test: CNN widths 2 -> 3 -> 4, one epoch (not a result)",
        load_digits,
        (2, 3, 4),
        1,
    ),
}
"""Chain setting -> (title, data loader, the three versions' CNN widths, epochs)."""


def _map_top1(q: np.ndarray, ql: np.ndarray, g: np.ndarray, gl: np.ndarray) -> dict[str, float]:
    out = retrieval_metrics(q, ql, g, gl, leave_one_out=False, top_k=1)
    return {"map": float(out["map"]), "top1": float(out["top1"])}


def run_chain(
    names: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path | None = None,
    stem: str = "chain",
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """v1 -> v2 -> v3 with adapters: v3 queries against v1 items; ``<stem>.json`` / ``.md``."""
    results = results_header("chain", "Chains of versions", command)
    for name in names:
        title, load, widths, epochs = setting_named(CHAIN_SETTINGS, name)
        setting = _chain_setting(name, title, load, widths, epochs, seeds, log)
        results["settings"].append(setting)
    if out_dir is not None:
        write_json_and_markdown(
            results, out_dir, stem, [chain_markdown(s) for s in results["settings"]]
        )
    return results


def _chain_setting(
    name: str,
    title: str,
    load: Callable[[], Any],
    widths: tuple[int, int, int],
    epochs: int,
    seeds: Sequence[int],
    log: Callable[[str], None],
) -> dict[str, Any]:
    start = time.perf_counter()
    raw: dict[str, dict[str, list[float]]] = {}
    compatible: list[bool] = []
    for seed in seeds:
        vectors, g_labels, q_labels = cnn_versions(load, widths, epochs, seed)
        (g1, q1), (g2, q2), (g3, q3) = vectors
        n = len(g1)
        size = max(2, round(PAIRED_FRACTION * n))
        rng = np.random.default_rng(seed)
        draw = [rng.permutation(n)[:size] for _ in range(3)]  # one draw per update
        a21 = fit_query_adapter(g2[draw[0]], g1[draw[0]], seed=seed)
        a32 = fit_query_adapter(g3[draw[1]], g2[draw[1]], seed=seed)
        a31 = fit_query_adapter(g3[draw[2]], g1[draw[2]], seed=seed)
        chain = compose_adapters(a32, a21)
        rows = {
            "v1 / v1 (no update)": _map_top1(q1, q_labels, g1, g_labels),
            "v2 / v2": _map_top1(q2, q_labels, g2, g_labels),
            "v3 / v3 (full re-embed)": _map_top1(q3, q_labels, g3, g_labels),
            "v2 -> v1 (adapter)": _map_top1(a21(q2), q_labels, g1, g_labels),
            "v3 -> v2 (adapter)": _map_top1(a32(q3), q_labels, g2, g_labels),
            "v3 -> v1 (chain v3 -> v2 -> v1)": _map_top1(chain(q3), q_labels, g1, g_labels),
            "v3 -> v1 (direct adapter)": _map_top1(a31(q3), q_labels, g1, g_labels),
        }
        for key, values in rows.items():
            _put(raw, key, values)
        chained, base = rows["v3 -> v1 (chain v3 -> v2 -> v1)"], rows["v1 / v1 (no update)"]
        compatible.append(is_compatible(chained["map"], base["map"]))
        log(
            f"[chain {name}] seed {seed}: v3->v1 chain mAP {chained['map']:.4f} vs v1/v1 "
            f"{base['map']:.4f}, direct {rows['v3 -> v1 (direct adapter)']['map']:.4f}"
        )
    rows_stat = {key: {m: stat(v) for m, v in metrics.items()} for key, metrics in raw.items()}
    return {
        "name": name,
        "title": title,
        "seeds": list(seeds),
        "widths": list(widths),
        "paired_fraction": PAIRED_FRACTION,
        "seconds": time.perf_counter() - start,
        "rows": rows_stat,
        "raw": raw,
        "compatible_per_seed": compatible,
        "targets": [
            {
                "name": "v3 -> v1 through the chain meets the compatibility criterion "
                "(mAP above v1 / v1) in every seed",
                "value": float(np.mean(compatible)),
                "threshold": 1.0,
                "passed": bool(all(compatible)),
            }
        ],
    }


def chain_markdown(setting: dict[str, Any]) -> str:
    """The chain's table: mAP and top-1 per (queries -> gallery) pair, and the target."""
    lines = [
        f"### {setting['title']}",
        "",
        "Each adapter: Procrustes fitted on its own draw of "
        f"{100 * setting['paired_fraction']:.0f} % of the gallery.",
        "",
        "| queries -> gallery | mAP (%) | top-1 (%) |",
        "|---|---|---|",
    ]
    for key, row in setting["rows"].items():
        lines.append(f"| {key} | {_cell(row['map'], 100, 2)} | {_cell(row['top1'], 100, 2)} |")
    lines += ["", f"Mean ± std over {len(setting['seeds'])} seeds; {setting['seconds']:.0f} s."]
    lines += _targets_table(setting["targets"])
    return "\n".join(lines) + "\n"
