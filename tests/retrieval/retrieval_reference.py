"""A loop-and-sort reference for retrieval metrics, written from the definitions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _score_key(q: np.ndarray, g: np.ndarray, metric: str) -> float:
    """Smaller key = closer."""
    if metric == "cosine":
        qn = q / math.sqrt(sum(v * v for v in q))
        gn = g / math.sqrt(sum(v * v for v in g))
        return -sum(a * b for a, b in zip(qn, gn, strict=True))
    return sum((a - b) ** 2 for a, b in zip(q, g, strict=True))


def ref_per_query(q, ql, g, gl, *, excluded=None, metric="cosine"):
    """Per query: (first relevant rank or None, AP or None).

    ``excluded[i]``: set of gallery positions query ``i`` must not retrieve.
    """
    q, g = np.asarray(q, dtype=np.float64), np.asarray(g, dtype=np.float64)
    out = []
    for i in range(len(q)):
        skip = excluded[i] if excluded is not None else set()
        candidates = [j for j in range(len(g)) if j not in skip]
        ranking = sorted(candidates, key=lambda j: (_score_key(q[i], g[j], metric), j))
        relevant = [gl[j] == ql[i] for j in ranking]
        n_rel = sum(relevant)
        if n_rel == 0:
            out.append((None, None))
            continue
        first = relevant.index(True) + 1
        hits, total = 0, 0.0
        for rank, rel in enumerate(relevant, start=1):
            if rel:
                hits += 1
                total += hits / rank
        out.append((first, total / n_rel))
    return out


def ref_metrics(q, ql, g, gl, *, excluded=None, metric="cosine", top_k: Sequence[int] = (1, 5)):
    per_query = [r for r in ref_per_query(q, ql, g, gl, excluded=excluded, metric=metric)]
    kept = [r for r in per_query if r[0] is not None]
    out = {}
    for k in top_k:
        out[f"top{k}"] = sum(1 for f, _ in kept if f <= k) / len(kept) if kept else math.nan
    out["map"] = sum(ap for _, ap in kept) / len(kept) if kept else math.nan
    return out


def by_position(n: int) -> list[set[int]]:
    return [{i} for i in range(n)]


def by_id(query_ids, gallery_ids) -> list[set[int]]:
    return [{j for j, gid in enumerate(gallery_ids) if gid == qid} for qid in query_ids]
