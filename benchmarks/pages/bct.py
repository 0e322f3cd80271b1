"""Render the results of ``python -m benchmarks bct`` as one self-contained HTML page.

The results are the JSON-able dict that :func:`benchmarks.bct.run_bct` writes:

``benchmark``, ``title``, ``graceful_version``, ``created``, ``command``, ``machine``
(``cpus``, ``torch``, ``platform``, ``threads``) and ``settings``, a list of settings each
with ``name``, ``title``, ``description``, ``seeds``, ``seconds``, ``rows`` (one per
method, in table order: ``method``, ``label``, ``<pair>_<measure>`` for the pairs
``old_old``, ``new_old``, ``new_new``, ``newstar_newstar`` and the measures ``top1``,
``top5``, ``map``, each ``{"mean", "std", "values"}`` over the seeds, ``compatible_top1``
and ``compatible_map`` (one bool per seed) and ``gain_top1``, ``gain_map``), ``backfill``
(per order, ``random`` and ``uncertainty``: ``fraction``, one ``{"mean", "std", "values"}``
per fraction under ``top1``, ``top5`` and ``map``, and ``auc`` per measure) and
``targets`` (``name``, ``value``, ``passed``, ``detail``). Any value may be ``None``; it is
shown as "n/a", never as 0.

The page has the look of the positive-congruent training benchmark page
(:mod:`benchmarks.pages.bench`) and shares its head (error hook, Content-Security-Policy)
and stylesheet: it loads nothing from elsewhere, charts are inline SVG, every
user-provided value is escaped, the results are embedded as script-safe JSON
(``#graceful-results``), and the root element carries ``data-script-errors`` and
``data-ready`` for automated checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.pages.bench import (
    _TEMPLATES,
    _clip,
    _duration,
    _get,
    _machine_line,
    _mappings,
    _pct_stat,
    _per_seed,
    _plain,
    _ratio_stat,
    _text,
)
from graceful.errors import InputError
from graceful.report.charts import curve_chart
from graceful.report.html import ERROR_HOOK_SCRIPT, render_page, script_json, write_page

__all__ = ["ORDER_LABELS", "render_bct_html", "write_bct_html"]

_NA = "n/a"

_PAIRS = ("old_old", "new_old", "new_new", "newstar_newstar")
"""The retrieval pairs of a method row, in column order."""

_MEASURES = (("top1", "top-1"), ("map", "mAP"))
"""The measures that get a table: key and display name."""

ORDER_LABELS = {
    "random": "random order",
    "uncertainty": "most uncertain first",
    "uncertainty_balanced": "most uncertain first, per old-predicted class",
}
"""Backfilling orders in display order -> the name of their chart series."""

_AUC_MEASURES = (("top1", "top-1"), ("top5", "top-5"), ("map", "mAP"))
"""The measures whose area under the backfilling curve is tabulated."""


def _criterion(row: Mapping[str, Any], measure: str, where: str) -> dict[str, Any]:
    """Return the criterion cell: ``k/n`` seeds that met it, with a per-seed tooltip."""
    key = f"compatible_{measure}"
    flags = _get(row, key, list, where)
    if not flags:
        return {"key": key, "text": _NA, "title": "", "tone": ""}
    met = sum(flag is True for flag in flags)
    marks = ", ".join(_NA if flag is None else "met" if flag else "not met" for flag in flags)
    tone = " good" if met == len(flags) else ""
    return {"key": key, "text": f"{met}/{len(flags)}", "title": f"per seed: {marks}", "tone": tone}


def _method_rows(rows: list[Mapping[str, Any]], measure: str, where: str) -> list[dict[str, Any]]:
    """Turn the method rows of a setting into the table rows of one measure."""
    out = []
    for index, row in enumerate(rows):
        cells = []
        for pair in _PAIRS:
            value = row.get(f"{pair}_{measure}")
            cells.append(
                {
                    "key": pair,
                    "text": _pct_stat(value),
                    "title": _per_seed(value, percent=True),
                    "tone": "",
                }
            )
        cells.append(_criterion(row, measure, f"{where}[{index}]"))
        gain = row.get(f"gain_{measure}")
        cells.append(
            {
                "key": f"gain_{measure}",
                "text": _ratio_stat(gain, digits=2),
                "title": _per_seed(gain, percent=False),
                "tone": "",
            }
        )
        out.append(
            {
                "method": _text(row.get("method")),
                "label": _text(row.get("label") or row.get("method")),
                "cells": cells,
            }
        )
    return out


def _targets(targets: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Turn a setting's targets into display rows with a pass/fail/n/a status."""
    out = []
    for target in targets:
        passed = target.get("passed")
        status = "n/a" if passed is None else "pass" if passed else "fail"
        out.append(
            {
                "name": _text(target.get("name")),
                "status": status,
                "value": _plain(target.get("value")),
                "detail": _text(target.get("detail")),
            }
        )
    return out


def _backfill(
    backfill: Mapping[str, Any], index: int, where: str
) -> tuple[str | None, list[dict[str, Any]]]:
    """Return the backfilling chart (top-1 against fraction) and the AUC rows per order."""
    orders = [name for name in ORDER_LABELS if name in backfill]
    orders += sorted(str(name) for name in backfill if name not in ORDER_LABELS)
    series = []
    aucs = []
    for order in orders:
        curve = _get(backfill, order, Mapping, where)
        if curve is None:
            continue
        here = f"{where}[{order!r}]"
        fractions = _get(curve, "fraction", list, here) or []
        top1 = _get(curve, "top1", list, here) or []
        if len(top1) != len(fractions):
            raise InputError(
                f"Expected `{here}['top1']` to have one value per fraction ({len(fractions)}), "
                f"but got {len(top1)}"
            )
        series.append({"label": ORDER_LABELS.get(order, order), "x": fractions, "y": top1})
        auc = _get(curve, "auc", Mapping, here) or {}
        aucs.append(
            {
                "order": order,
                "label": ORDER_LABELS.get(order, order),
                "cells": [
                    {
                        "key": f"auc_{measure}",
                        "text": _pct_stat(auc.get(measure)),
                        "title": _per_seed(auc.get(measure), percent=True),
                    }
                    for measure, _name in _AUC_MEASURES
                ],
            }
        )
    chart = curve_chart(
        series,
        x_label="fraction of the gallery re-embedded by the new model",
        y_label="top-1 retrieval accuracy",
        chart_id=f"backfill{index}",
    )
    return chart, aucs


def _setting(setting: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Build the template context of one setting."""
    where = f"results['settings'][{index}]"
    rows = _mappings(_get(setting, "rows", list, where) or [], f"{where}['rows']")
    targets = _mappings(_get(setting, "targets", list, where) or [], f"{where}['targets']")
    seeds = _get(setting, "seeds", list, where) or []
    backfill = _get(setting, "backfill", Mapping, where) or {}
    chart, aucs = _backfill(backfill, index, f"{where}['backfill']")
    name = _text(setting.get("name"))
    return {
        "name": name,
        "title": _text(setting.get("title")) or name or f"Setting {index + 1}",
        "description": _text(setting.get("description")),
        "seeds": ", ".join(str(seed) for seed in seeds),
        "n_seeds": len(seeds),
        "seconds": _duration(setting.get("seconds")) if "seconds" in setting else "",
        "tables": [
            {
                "measure": measure,
                "name": measure_name,
                "rows": _method_rows(rows, measure, f"{where}['rows']"),
            }
            for measure, measure_name in _MEASURES
        ]
        if rows
        else [],
        "targets": _targets(targets),
        "chart": chart,
        "aucs": aucs,
    }


def _machine(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (label, value) pairs describing the run and the machine, threads included."""
    parts = _machine_line(results)
    machine = _get(results, "machine", Mapping, "results") or {}
    if "threads" in machine:
        value = _NA if machine["threads"] is None else str(machine["threads"])
        parts.append(("torch threads", value))
    return parts


def _context(results: Mapping[str, Any]) -> dict[str, Any]:
    """Build the template context from the results of ``python -m benchmarks bct``."""
    settings = _mappings(_get(results, "settings", list, "results") or [], "results['settings']")
    benchmark = _text(results.get("benchmark"))
    title = _text(results.get("title")) or (f"Benchmark {benchmark}" if benchmark else "Benchmark")
    return {
        "hook": ERROR_HOOK_SCRIPT,
        "title": title,
        "version": _text(results.get("graceful_version")),
        "machine": _machine(results),
        "command": _text(results.get("command")),
        "settings": [_setting(setting, index) for index, setting in enumerate(settings)],
        "results_json": script_json(results),
    }


def render_bct_html(results: Mapping[str, Any]) -> str:
    """Render the results of ``python -m benchmarks bct`` as one self-contained HTML page.

    Per setting, the page shows its description, seeds and wall time; a table per measure
    (top-1 and mAP) in the form of the BCT paper: for each method, the retrieval metric of
    old queries on the old gallery M(old, old), new queries on the old gallery
    M(new, old), new on new M(new, new) and the new model trained alone M(new*, new*),
    each mean ± std over the seeds in % with the per-seed values in a tooltip, then in how
    many seeds the compatibility criterion M(new, old) > M(old, old) held and the update
    gain (M(new, old) − M(old, old)) / (M(new*, new*) − M(old, old)); the benchmark's
    targets with pass/fail badges; the backfilling chart (top-1 against the fraction of the
    gallery re-embedded, one line per order with a ± std band, drawn by
    :func:`graceful.report.charts.curve_chart`) and the areas under those curves. The
    header shows the run, the machine and the command. Missing optional sections are left
    out; an undefined value (``None``) is shown as "n/a".

    Args:
        results: the JSON-able results of ``python -m benchmarks bct`` (see the module docs of
            :mod:`benchmarks.pages.bct`).

    Returns:
        The HTML page as a string. It references no external resource.

    Raises:
        InputError: if ``results`` is not a mapping or a section has the wrong type.

    Example:
        >>> page = render_bct_html({
        ...     "title": "BCT <demo>",
        ...     "settings": [{"name": "toy", "seeds": [0, 1], "rows": [
        ...         {"method": "bct", "label": "BCT",
        ...          "new_old_top1": {"mean": 0.6512, "std": 0.0104},
        ...          "old_old_top1": None,
        ...          "compatible_top1": [True, False],
        ...          "gain_top1": {"mean": 0.4, "std": 0.05}}]}],
        ... })
        >>> "65.12 ± 1.04%" in page and "1/2" in page and "0.40 ± 0.05" in page
        True
        >>> "n/a" in page and "BCT &lt;demo&gt;" in page
        True
    """
    if not isinstance(results, Mapping):
        raise InputError(
            f"Expected argument `results` to be a mapping, but got {type(results).__name__}: "
            f"{_clip(results)}"
        )
    return render_page("bct.html.j2", _context(results), templates=_TEMPLATES)


def write_bct_html(results: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render ``results`` with :func:`render_bct_html` and write it to ``path`` atomically.

    The page is rendered completely before anything is written, and then written to a
    temporary file beside ``path`` that replaces ``path`` only once it is complete: an error
    never leaves a partial or empty file behind.

    Args:
        results: the results of ``python -m benchmarks bct``, as for :func:`render_bct_html`.
        path: where to write the page.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        graceful.errors.InputError: if ``results`` is malformed or the folder of ``path``
            does not exist.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "bct.html"
        >>> write_bct_html({"benchmark": "bct"}, target) == target
        True
        >>> target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        True
    """
    return write_page(render_bct_html(results), path)
