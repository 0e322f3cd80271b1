"""Render the story of ``graceful demo`` (:func:`graceful.demo.run_demo`) as one HTML page.

The story dict has ``title``, ``graceful_version``, ``config``, ``data``, ``updates``
(``naive`` and ``graceful``: ``metrics`` name -> value, ``mcnemar``, ``report``),
``retrieval`` (``"query->gallery"`` -> ``top1``/``top5``/``map``), ``compatibility``,
``refused``, ``searches`` (query id, label, 8x8 ``pixels``, ``before`` and ``after`` hits),
``pixels`` (hit id -> 8x8), ``backfill`` (``status``, ``done``, ``total``,
``top1_mixed_gallery``, ``curve``) and ``timings``. The page has the look and the
guarantees of the other reports: no external resource, inline SVG, escaped values, the
story embedded as script-safe JSON (``#graceful-results``), and ``data-ready`` /
``data-script-errors`` on the root element for automated checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from graceful._validation import check_instance
from graceful.report.charts import curve_chart, nfr_bar_chart
from graceful.report.html import ERROR_HOOK_SCRIPT, _format, render_page, script_json, write_page

__all__ = ["render_demo_html", "write_demo_html"]

_NA = "n/a"
_MODELS = ("old", "naive", "graceful")
_DATA_KEYS = ("train", "new_train", "old_train", "val", "test")
_CONFIG_KEYS = ("old_width", "new_width", "embedding_dim")
_UPDATE_METRICS = (
    ("error_rate_old", "error, old"),
    ("error_rate_new", "error, new"),
    ("negative_flip_rate", "NFR"),
    ("positive_flip_rate", "PFR"),
    ("relative_negative_flip_rate", "relative NFR"),
    ("backward_trust_compatibility", "BTC"),
)


_pct = partial(_format, spec=".2%", missing=_NA)
_ratio = partial(_format, spec=".3f", missing=_NA)


def digit_svg(pixels: Sequence[Sequence[float]], *, size: int = 44, tone: str = "") -> str:
    """An 8x8 grey image as an inline SVG (dark ink on white).

    Example:
        >>> digit_svg([[0.0] * 8] * 8).startswith('<svg class="digit"')
        True
    """
    rows = len(pixels)
    cols = len(pixels[0]) if rows else 0
    cell = size / max(rows, cols, 1)
    rects = []
    for r, line in enumerate(pixels):
        for c, value in enumerate(line):
            v = min(max(float(value), 0.0), 1.0)
            if v <= 0.02:
                continue
            grey = round(255 * (1.0 - v))
            rects.append(
                f'<rect x="{c * cell:.1f}" y="{r * cell:.1f}" width="{cell:.1f}"'
                f' height="{cell:.1f}" fill="rgb({grey},{grey},{grey})"/>'
            )
    cls = f"digit {tone}".strip()
    return (
        f'<svg class="{cls}" role="img" width="{size}" height="{size}"'
        f' viewBox="0 0 {size} {size}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>{"".join(rects)}</svg>'
    )


def _update_rows(updates: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in ("naive", "graceful"):
        update = updates.get(name) or {}
        metrics = update.get("metrics") or {}
        cells = []
        for key, _ in _UPDATE_METRICS:
            text = (
                _ratio(metrics.get(key)) if key.startswith("relative") else _pct(metrics.get(key))
            )
            cells.append({"key": key, "text": text})
        mcnemar = update.get("mcnemar") or {}
        verdict = mcnemar.get("verdict") or mcnemar.get("decision") or _NA
        p = mcnemar.get("p_value")
        rows.append(
            {
                "name": name,
                "cells": cells,
                "verdict": str(verdict),
                "p": _NA if not isinstance(p, (int, float)) else f"{p:.2g}",
                "report": update.get("report"),
            }
        )
    return rows


def _retrieval_rows(retrieval: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for query in _MODELS:
        cells = []
        for gallery in _MODELS:
            entry = retrieval.get(f"{query}->{gallery}") or {}
            cells.append({"key": f"{query}->{gallery}", "text": _pct(entry.get("top1"))})
        rows.append({"query": query, "cells": cells})
    return rows


def _hit(hit: Mapping[str, Any], label: int, pixels: Mapping[str, Any]) -> dict[str, Any]:
    right = hit.get("label") == label
    image = pixels.get(str(hit.get("id")))
    return {
        "id": hit.get("id"),
        "label": hit.get("label"),
        "version": hit.get("version"),
        "right": right,
        "svg": digit_svg(image, size=36, tone="right" if right else "wrong") if image else "",
    }


def _searches(story: Mapping[str, Any]) -> list[dict[str, Any]]:
    pixels = story.get("pixels") or {}
    out = []
    for search in story.get("searches") or []:
        label = search.get("label")
        out.append(
            {
                "query": search.get("query"),
                "label": label,
                "svg": digit_svg(search.get("pixels") or [[0.0]], size=44),
                "before": [_hit(h, label, pixels) for h in search.get("before") or []],
                "after": None
                if search.get("after") is None
                else [_hit(h, label, pixels) for h in search["after"]],
            }
        )
    return out


def _charts(story: Mapping[str, Any]) -> dict[str, str | None]:
    updates = story.get("updates") or {}
    bars = []
    for name in ("naive", "graceful"):
        metrics = (updates.get(name) or {}).get("intervals") or {}
        value = ((updates.get(name) or {}).get("metrics") or {}).get("negative_flip_rate")
        bars.append(
            {
                "group": f"{name} update",
                "negative_flip_rate": value,
                "negative_flip_rate_low": metrics.get("low"),
                "negative_flip_rate_high": metrics.get("high"),
            }
        )
    curve = (story.get("backfill") or {}).get("curve") or {}
    series = []
    if curve.get("fraction"):
        series.append(
            {"label": "graceful queries, random order", "x": curve["fraction"], "y": curve["top1"]}
        )
    return {
        "nfr": nfr_bar_chart(bars, chart_id="demo-nfr"),
        "backfill": curve_chart(
            series,
            x_label="fraction of the gallery re-embedded",
            y_label="top-1",
            chart_id="demo-backfill",
        )
        if series
        else None,
    }


def render_demo_html(story: Mapping[str, Any]) -> str:
    """Render the demo's story as one self-contained HTML page.

    Example:
        >>> page = render_demo_html({"title": "demo <1>", "updates": {}, "retrieval": {}})
        >>> page.startswith("<!DOCTYPE html>") and "demo &lt;1&gt;" in page
        True
    """
    check_instance("story", story, Mapping, "a mapping")
    backfill = story.get("backfill") or {}
    timings = story.get("timings") or {}
    context = {
        "hook": ERROR_HOOK_SCRIPT,
        "title": str(story.get("title") or "graceful demo"),
        "version": str(story.get("graceful_version") or ""),
        "data": {k: (story.get("data") or {}).get(k, _NA) for k in _DATA_KEYS},
        "config": {k: (story.get("config") or {}).get(k, _NA) for k in _CONFIG_KEYS},
        "metric_names": [label for _, label in _UPDATE_METRICS],
        "updates": _update_rows(story.get("updates") or {}),
        "retrieval": _retrieval_rows(story.get("retrieval") or {}),
        "models": _MODELS,
        "compatibility": story.get("compatibility") or {},
        "refused": story.get("refused"),
        "searches": _searches(story),
        "backfill": {
            "done": backfill.get("done"),
            "total": backfill.get("total"),
            "status": backfill.get("status") or {},
            "top1": _pct(backfill.get("top1_mixed_gallery")),
        },
        "charts": _charts(story),
        "timings": [(k, f"{v:.1f} s") for k, v in timings.items() if isinstance(v, (int, float))],
        "results_json": script_json(story),
    }
    return render_page("demo.html.j2", context)


def write_demo_html(story: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render the story with :func:`render_demo_html` and write it atomically to ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "demo.html"
        >>> write_demo_html({"title": "demo"}, target) == target
        True
    """
    return write_page(render_demo_html(story), path)
