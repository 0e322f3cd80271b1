"""Render a comparison summary as one self-contained HTML page.

The page has no external references at all: CSS, the SVG charts and the small script that
sorts and filters tables are inline, and a Content-Security-Policy forbids any load from
elsewhere. Every value that came from the user (paths, ids, class and group names) goes
through Jinja2's autoescaping; the summary is also embedded as JSON in a
``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped, so no value can
close the script element.

The page reports script errors on its root element for automated checks: the first thing in
``<head>`` sets ``data-script-errors="0"`` and counts ``error``, ``unhandledrejection`` and
``securitypolicyviolation`` events; the page's own script sets ``data-ready="1"`` when it
has run to the end.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jinja2

from graceful._validation import check_instance
from graceful.errors import InputError
from graceful.io.atomic import atomic_write_text
from graceful.metrics import METRICS
from graceful.report.svg import finite_or_none as _number
from graceful.report.svg import flip_matrix_heatmap, nfr_bar_chart, short_label

__all__ = [
    "ERROR_HOOK_SCRIPT",
    "render_html",
    "render_page",
    "script_json",
    "write_html",
    "write_page",
]

ERROR_HOOK_SCRIPT = (
    "(function(){var d=document.documentElement;d.dataset.scriptErrors='0';"
    "function bump(){d.dataset.scriptErrors=String((parseInt(d.dataset.scriptErrors,10)||0)+1);}"
    "window.addEventListener('error',bump,true);"
    "window.addEventListener('unhandledrejection',bump);"
    "document.addEventListener('securitypolicyviolation',bump);})();"
)
"""The inline script that counts script errors on ``<html data-script-errors>``."""

_LABELS = {
    "error_rate_old": "Error rate, old model",
    "error_rate_new": "Error rate, new model",
    "negative_flip_rate": "Negative flip rate (NFR)",
    "positive_flip_rate": "Positive flip rate (PFR)",
    "negative_flip_impact": "Negative flip impact (NFI)",
    "positive_flip_impact": "Positive flip impact (PFI)",
    "relative_negative_flip_rate": "Relative NFR",
    "backward_trust_compatibility": "Backward trust compatibility (BTC)",
    "backward_error_compatibility": "Backward error compatibility (BEC)",
}
_RATIO_METRICS = frozenset({"relative_negative_flip_rate"})
_CELL_CHARS = 80  # a table cell shows at most this many characters of a user's value
_LINE_CHARS = 200  # a heading or an input path at most this many
EXAMPLES_PAGE_SIZE = 25
"""Flipped examples shown per page; the page's pager shows the others (all stay in the JSON)."""
_VERDICTS = {
    "better": ("significantly better", "good"),
    "worse": ("significantly worse", "bad"),
    "no significant difference": ("no significant difference", "neutral"),
}


def _pct(value: Any) -> str:
    """Format a fraction as a percentage; None becomes "undefined"."""
    number = _number(value)
    if number is None:
        return "undefined"
    percent = number * 100
    if percent != 0 and abs(percent) < 0.01:
        return f"{percent:.2g}%"
    return f"{percent:.2f}%"


def _format(value: Any, spec: str, missing: str = "undefined") -> str:
    """Format a number with ``spec``; a missing or non-finite value becomes ``missing``."""
    number = _number(value)
    return missing if number is None else format(number, spec)


_ratio = partial(_format, spec=".3f")  # a plain ratio
_confidence = partial(_format, spec=".3f", missing="—")  # a model confidence in [0, 1]
_plain = partial(_format, spec=".4g")  # up to 4 significant digits


def _count(value: Any) -> str:
    """Format a (possibly weighted) count with thousands separators."""
    number = _number(value)
    if number is None:
        return "undefined"
    return f"{int(number):,}" if number == int(number) else f"{number:,.2f}"


def _p_value(value: Any) -> str:
    """Format a p-value for the verdict line."""
    number = _number(value)
    if number is None:
        return "p undefined"
    if number == 0 or number >= 1e-3:
        return f"p = {number:.3g}"
    return f"p = {number:.2e}"


_GATE_FORMATS: dict[str, Callable[[Any], str]] = {
    "max_nfr": _pct,
    "min_btc": _pct,
    "max_rel_nfr": _ratio,
}


def _text(value: Any, limit: int = _CELL_CHARS) -> dict[str, str]:
    """A user's value for display, shortened to ``limit`` characters (start and end kept).

    ``text`` is what a cell shows; ``full`` is the whole value when it was shortened (the
    cell's ``title``, which the page's sorting and search read), else "".

    Example:
        >>> shown = _text("a" * 100, 12)
        >>> shown["text"], len(shown["full"])
        ('aa…aaaaaaaaa', 100)
        >>> _text("short")
        {'text': 'short', 'full': ''}
    """
    full = "" if value is None else str(value)
    text = short_label(full, limit)
    return {"text": text, "full": "" if text == full else full}


def _sort_key(value: Any) -> str:
    """Return the ``data-sort`` attribute of a numeric cell ("" sorts undefined last)."""
    number = _number(value)
    return "" if number is None else repr(number)


def _section(summary: Mapping[str, Any], key: str, kind: type) -> Any:
    """Return ``summary[key]`` if present and of ``kind``; None when missing or null."""
    value = summary.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise InputError(
            f"Expected `summary[{key!r}]` to be a {kind.__name__}, "
            f"but got {type(value).__name__}: {_clip(value)}"
        )
    return value


def _clip(value: Any, limit: int = 80) -> str:
    """Return a one-line ``repr`` of ``value``, shortened for an error message."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _metric_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Turn the ``metrics`` section into display rows for the headline table."""
    rows = []
    for key, metric in metrics.items():
        if not isinstance(metric, Mapping):
            raise InputError(
                f"Expected `summary['metrics'][{key!r}]` to be a mapping, but got "
                f"{type(metric).__name__}: {_clip(metric)}"
            )
        label = _LABELS.get(str(key), str(key))
        spec = METRICS.get(str(key))
        formula = metric.get("formula") or (spec.formula if spec else None)
        description = str(metric.get("description") or (spec.description if spec else ""))
        if formula and description:
            description = f"{formula}: {description}"
        fmt = _ratio if key in _RATIO_METRICS else _pct
        low, high = _number(metric.get("low")), _number(metric.get("high"))
        numerator, denominator = metric.get("numerator"), metric.get("denominator")
        direction = metric.get("direction")
        rows.append(
            {
                "key": str(key),
                "label": label,
                "description": description,
                "value": fmt(metric.get("value")),
                "sort": _sort_key(metric.get("value")),
                "undefined": _number(metric.get("value")) is None,
                "interval": "—" if low is None or high is None else f"{fmt(low)} – {fmt(high)}",
                "counts": (
                    ""
                    if key in _RATIO_METRICS or (numerator is None and denominator is None)
                    else f"{_count(numerator)} / {_count(denominator)}"
                ),
                "direction": (
                    "lower is better"
                    if direction == "lower"
                    else "higher is better"
                    if direction == "higher"
                    else ""
                ),
            }
        )
    return rows


def _group_rows(rows: Sequence[Any], where: str) -> list[dict[str, Any]]:
    """Turn per-class or per-group rows into display rows."""
    out = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InputError(
                f"Expected `{where}[{index}]` to be a mapping, but got "
                f"{type(row).__name__}: {_clip(row)}"
            )
        low, high = row.get("negative_flip_rate_low"), row.get("negative_flip_rate_high")
        out.append(
            {
                "column": _text(row.get("column")),
                "group": _text(row.get("group", "")),
                "n": _count(row.get("n")),
                "n_sort": _sort_key(row.get("n")),
                "cells": [
                    (_pct(row.get(name)), _sort_key(row.get(name)))
                    for name in ("error_rate_old", "error_rate_new")
                ],
                "nfr": _pct(row.get("negative_flip_rate")),
                "nfr_sort": _sort_key(row.get("negative_flip_rate")),
                "nfr_interval": (
                    ""
                    if _number(low) is None or _number(high) is None
                    else f"{_pct(low)} – {_pct(high)}"
                ),
                "pfr": _pct(row.get("positive_flip_rate")),
                "pfr_sort": _sort_key(row.get("positive_flip_rate")),
                "negative_flips": _count(row.get("negative_flips")),
                "negative_flips_sort": _sort_key(row.get("negative_flips")),
                "positive_flips": _count(row.get("positive_flips")),
                "positive_flips_sort": _sort_key(row.get("positive_flips")),
            }
        )
    return out


def _inputs_line(inputs: Mapping[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Return (label, value) pairs describing the inputs, each value as :func:`_text`."""
    parts: list[tuple[str, str]] = []
    for key, label in (("old", "old"), ("new", "new"), ("labels", "labels")):
        if inputs.get(key) is not None:
            parts.append((label, str(inputs[key])))
    if inputs.get("id_source") is not None:
        parts.append(("ids from", str(inputs["id_source"])))
    if inputs.get("n_rows") is not None:
        parts.append(("rows", _count(inputs["n_rows"])))
    if inputs.get("n_compared") is not None:
        parts.append(("compared", _count(inputs["n_compared"])))
    if inputs.get("n_excluded") is not None:
        parts.append(("excluded", _count(inputs["n_excluded"])))
    if inputs.get("top_k") is not None:
        parts.append(("correct means", f"label in top-{inputs['top_k']}"))
    if inputs.get("weighted") is not None:
        parts.append(("sample weights", "yes" if inputs["weighted"] else "no"))
    return [(label, _text(value, _LINE_CHARS)) for label, value in parts]


def _verdict(mcnemar: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Return the McNemar verdict sentence and its tone."""
    if mcnemar is None:
        return None
    raw = str(mcnemar.get("verdict", ""))
    text, tone = _VERDICTS.get(raw, (raw or "no verdict", "neutral"))
    negative = _count(mcnemar.get("negative_flips"))
    positive = _count(mcnemar.get("positive_flips"))
    detail = (
        f"{_p_value(mcnemar.get('p_value'))}, exact McNemar on {negative} negative "
        f"vs {positive} positive flips"
    )
    alpha = _number(mcnemar.get("alpha"))
    return {
        "text": f"New model is {text}" if raw in _VERDICTS else text,
        "detail": detail,
        "alpha": "" if alpha is None else f"{alpha:g}",
        "tone": tone,
    }


def _gate_detail(check: Mapping[str, Any]) -> str:
    """The check's statistic, value and bar: its ``detail``.

    ``detail`` is :attr:`graceful.release.GateCheck.detail`. A summary written before checks
    had one gets the value against the threshold, but never the significance check's old
    0/1 flag, which is no statistic.
    """
    detail = check.get("detail")
    if detail:
        return str(detail)
    name = str(check.get("name", ""))
    if name == "no_significant_regression":
        return ""  # its value was a 0/1 flag, not a statistic: the description says it all
    fmt = _GATE_FORMATS.get(name, _plain)
    return f"{fmt(check.get('value'))} against threshold {fmt(check.get('threshold'))}"


def _gate(gate: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return the gate's display rows."""
    if gate is None:
        return None
    checks = []
    for index, check in enumerate(gate.get("checks") or []):
        check_instance(f"summary['gate']['checks'][{index}]", check, Mapping, "a mapping")
        checks.append(
            {
                "name": str(check.get("name", "")),
                "description": str(check.get("description") or ""),
                "detail": _gate_detail(check),
                "passed": bool(check.get("passed")),
                "pair": str(check.get("pair") or ""),
            }
        )
    return {"passed": bool(gate.get("passed")), "checks": checks}


def _jsonable(value: Any) -> Any:
    """Return ``value`` with non-finite floats as None and unknown scalars as str/float."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _jsonable(item())
    return str(value)


def script_json(value: Any) -> str:
    r"""Serialise ``value`` as JSON that is safe inside a ``<script>`` element.

    Example:
        >>> script_json({"id": "</script>"})
        '{"id": "\\u003c/script\\u003e"}'
    """
    text = json.dumps(_jsonable(value), ensure_ascii=False, allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_page(
    template: str,
    context: Mapping[str, Any],
    *,
    templates: str | os.PathLike[str] | None = None,
) -> str:
    """Render a page in the report's style: self-contained, autoescaped, with the error hook.

    ``template`` is looked up in the folder ``templates`` first (when given), then among
    the report's own templates, so any page can ``{% include "_head.html.j2" %}`` (the
    error hook, charset and Content-Security-Policy) and ``"_style.css.j2"``. The context
    gets ``hook``, the error-hook script, unless it has one. Undefined names are errors.

    Args:
        template: the template's file name.
        context: the template's variables.
        templates: a folder of further templates, searched first.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "p.html.j2").write_text("{% include '_head.html.j2' %}{{ x }}")
        >>> page = render_page("p.html.j2", {"x": "<b>", "version": "0"}, templates=folder)
        >>> "Content-Security-Policy" in page and "&lt;b&gt;" in page
        True
    """
    own = importlib.resources.files("graceful.report") / "templates"
    extra = None if templates is None else Path(templates)

    def load(name: str) -> str:
        if extra is not None and (extra / name).is_file():
            return (extra / name).read_text(encoding="utf-8")
        return (own / name).read_text(encoding="utf-8")

    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(template).render(**{"hook": ERROR_HOOK_SCRIPT, **context})


_PREVIEW_CHARS = 120  # a folded text shows this many characters (start and end) until opened


def _fold(value: Any) -> dict[str, Any]:
    r"""A prompt, target or response: the whole text, and a one-line preview when it is long.

    Example:
        >>> _fold("short")["long"], _fold("a\nb")["long"], _fold(None)["full"]
        (False, True, '')
    """
    full = "" if value is None else str(value)
    flat = " ".join(full.split())
    preview = short_label(flat, _PREVIEW_CHARS)
    return {"full": full, "preview": preview, "long": preview != full, "missing": value is None}


def _rate_interval(row: Mapping[str, Any], name: str) -> str:
    low, high = _number(row.get(f"{name}_low")), _number(row.get(f"{name}_high"))
    return "" if low is None or high is None else f"{_pct(low)} – {_pct(high)}"


def _task_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Turn ``summary['eval_logs']['by_task']`` into display rows."""
    out = []
    for index, row in enumerate(rows):
        check_instance(f"summary['eval_logs']['by_task'][{index}]", row, Mapping, "a mapping")
        out.append(
            {
                "task": _text(row.get("task", "")),
                "metric": _text(row.get("metric", "")),
                "n": _count(row.get("n")),
                "n_sort": _sort_key(row.get("n")),
                "excluded": _count(row.get("excluded")),
                "excluded_sort": _sort_key(row.get("excluded")),
                "cells": [
                    (_pct(row.get(name)), _sort_key(row.get(name)))
                    for name in ("error_rate_old", "error_rate_new")
                ],
                "nfr": _pct(row.get("negative_flip_rate")),
                "nfr_sort": _sort_key(row.get("negative_flip_rate")),
                "nfr_interval": _rate_interval(row, "negative_flip_rate"),
                "pfr": _pct(row.get("positive_flip_rate")),
                "pfr_sort": _sort_key(row.get("positive_flip_rate")),
                "pfr_interval": _rate_interval(row, "positive_flip_rate"),
                "negative_flips": _count(row.get("negative_flips")),
                "positive_flips": _count(row.get("positive_flips")),
            }
        )
    return out


def _item_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Turn ``summary['eval_logs']['flipped_items']['rows']`` into display rows."""
    out = []
    for index, row in enumerate(rows):
        check_instance(
            f"summary['eval_logs']['flipped_items']['rows'][{index}]", row, Mapping, "a mapping"
        )
        out.append(
            {
                "task": str(row.get("task", "")),
                "task_text": _text(row.get("task", "")),
                "key": _text(row.get("key", "")),
                "prompt": _fold(row.get("prompt")),
                "target": _fold(row.get("target")),
                "old_response": _fold(row.get("old_response")),
                "new_response": _fold(row.get("new_response")),
                "old_value": _plain(row.get("old_value"), missing="—"),
                "old_value_sort": _sort_key(row.get("old_value")),
                "new_value": _plain(row.get("new_value"), missing="—"),
                "new_value_sort": _sort_key(row.get("new_value")),
                "kind": str(row.get("kind", "")),
            }
        )
    return out


def _chain(versions: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The display of a chain's ``versions`` section: rates, the pair matrix, re-introduced."""
    if versions is None:
        return None
    names = [str(n) for n in versions.get("names") or []]
    again = {}
    for row in versions.get("reintroduced") or []:
        check_instance("summary['versions']['reintroduced'][...]", row, Mapping, "a mapping")
        again[row.get("version")] = row
    rates = []
    for row in versions.get("error_rates") or []:
        check_instance("summary['versions']['error_rates'][...]", row, Mapping, "a mapping")
        back = again.get(row.get("version"))
        rates.append(
            {
                "name": _text(row.get("name", "")),
                "error": _pct(row.get("error_rate")),
                "interval": _rate_interval(row, "error_rate"),
                "errors": _count(row.get("errors")),
                "back": None
                if back is None
                else {
                    "count": _count(back.get("count")),
                    "rate": _pct(back.get("rate")),
                    "interval": _rate_interval(back, "rate"),
                    "share": _pct(back.get("share_of_negative_flips")),
                },
            }
        )
    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for row in versions.get("pairs") or []:
        check_instance("summary['versions']['pairs'][...]", row, Mapping, "a mapping")
        gated = bool(row.get("gated"))
        cells[(int(row.get("old", -1)), int(row.get("new", -1)))] = {
            "nfr": _pct(row.get("negative_flip_rate")),
            "nfr_interval": _rate_interval(row, "negative_flip_rate"),
            "pfr": _pct(row.get("positive_flip_rate")),
            "pfr_interval": _rate_interval(row, "positive_flip_rate"),
            "gate": None if not gated else bool(row.get("gate_passed")),
        }
    matrix = [
        {"name": _text(names[i]), "cells": [cells.get((i, j)) for j in range(1, len(names))]}
        for i in range(len(names) - 1)
    ]
    headline = versions.get("headline") or {}
    old, new = headline.get("old"), headline.get("new")
    return {
        "names": [_text(n) for n in names],
        "columns": [_text(n) for n in names[1:]],
        "n_compared": _count(versions.get("n_compared")),
        "n_excluded": _count(versions.get("n_excluded")),
        "rates": rates,
        "matrix": matrix,
        "headline": (
            f"{names[old]} → {names[new]}"
            if isinstance(old, int) and isinstance(new, int) and 0 <= old < new < len(names)
            else ""
        ),
        "against_first": bool((versions.get("gate") or {}).get("against_first")),
        "gated": versions.get("gate") is not None,
    }


def _context(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Build the template context from a summary."""
    metrics = _section(summary, "metrics", Mapping) or {}
    inputs = _section(summary, "inputs", Mapping) or {}
    counts = _section(summary, "counts", Mapping) or {}
    by_class = _section(summary, "by_class", list) or []
    by_group = _section(summary, "by_group", Mapping) or {}
    most_affected = _section(summary, "most_affected", list) or []
    matrix = _section(summary, "flip_matrix", Mapping) or {}
    examples = _section(summary, "flipped_examples", Mapping) or {}
    level = _number(summary.get("confidence_level"))

    groups = []
    for index, (column, rows) in enumerate(by_group.items()):
        if not isinstance(rows, list):
            raise InputError(
                f"Expected `summary['by_group'][{column!r}]` to be a list, but got "
                f"{type(rows).__name__}: {_clip(rows)}"
            )
        groups.append(
            {
                "column": _text(column, _LINE_CHARS),
                "rows": _group_rows(rows, f"summary['by_group'][{column!r}]"),
                "chart": nfr_bar_chart(rows, chart_id=f"group{index}"),
                "truncated": len(rows) > 30,
            }
        )

    matrix_rows = list(matrix.get("rows") or [])
    matrix_columns = list(matrix.get("columns") or [])
    try:
        heatmap = flip_matrix_heatmap(
            matrix_rows, matrix_columns, list(matrix.get("counts") or []), chart_id="flipmatrix"
        )
    except ValueError as error:
        raise InputError(f"Bad `summary['flip_matrix']`: {error}") from None

    example_rows = []
    for index, row in enumerate(examples.get("rows") or []):
        where = f"summary['flipped_examples']['rows'][{index}]"
        check_instance(where, row, Mapping, "a mapping")
        kind = str(row.get("kind", ""))
        example_rows.append(
            {
                "id": _text(row.get("id", "")),
                "label": _text(row.get("label")),
                "old_pred": _text(row.get("old_pred", "")),
                "new_pred": _text(row.get("new_pred", "")),
                "old_confidence": _confidence(row.get("old_confidence")),
                "old_confidence_sort": _sort_key(row.get("old_confidence")),
                "new_confidence": _confidence(row.get("new_confidence")),
                "new_confidence_sort": _sort_key(row.get("new_confidence")),
                "kind": kind,
            }
        )
    total_negative = _number(examples.get("total_negative"))
    total_positive = _number(examples.get("total_positive"))
    total = (total_negative or 0) + (total_positive or 0)
    shown = _number(examples.get("shown"))
    shown = len(example_rows) if shown is None else shown
    title = str(summary.get("title") or "Model comparison")
    logs = _section(summary, "eval_logs", Mapping) or {}
    items = logs.get("flipped_items") or {}
    check_instance("summary['eval_logs']['flipped_items']", items, Mapping, "a mapping")
    item_rows = _item_rows(items.get("rows") or [])
    if item_rows:  # the texts replace the correct/incorrect columns of an evaluation log
        example_rows = []
    task_rows = _task_rows(logs.get("by_task") or [])

    return {
        "hook": ERROR_HOOK_SCRIPT,
        "title": title,
        "heading": _text(title, _LINE_CHARS),
        "version": str(summary.get("graceful_version") or ""),
        "inputs": _inputs_line(inputs),
        "level": "" if level is None else f"{level * 100:g}%",
        "interval_method": str(summary.get("interval_method") or ""),
        "metrics": _metric_rows(metrics),
        "counts": {k: _count(v) for k, v in counts.items()},
        "verdict": _verdict(_section(summary, "mcnemar", Mapping)),
        "gate": _gate(_section(summary, "gate", Mapping)),
        "by_class": _group_rows(by_class, "summary['by_class']"),
        "class_chart": nfr_bar_chart(by_class, chart_id="byclass"),
        "class_truncated": len(by_class) > 30,
        "groups": groups,
        "most_affected": _group_rows(most_affected, "summary['most_affected']"),
        "heatmap": heatmap,
        "matrix_truncated": len(matrix_rows) > 20 or len(matrix_columns) > 20,
        "examples": example_rows,
        "examples_shown": _count(shown),
        "examples_total": _count(total),
        "examples_capped": total > shown,
        "examples_left_out": _count(total - shown),
        "page_size": EXAMPLES_PAGE_SIZE,
        "tasks": task_rows,
        "rule": str(logs.get("rule") or ""),
        "items": item_rows,
        "item_tasks": sorted({row["task"] for row in item_rows}),
        "text_chars": _count(items.get("text_chars")),
        "chain": _chain(_section(summary, "versions", Mapping)),
        "summary_json": script_json(summary),
    }


def render_html(summary: Mapping[str, Any]) -> str:
    """Render a comparison summary as one self-contained HTML page.

    The page shows the inputs, a verdict banner (the gate, if any, and the exact McNemar
    test), the headline metrics with their intervals, per-class and per-group negative flip
    rates (charts and sortable tables), the most affected groups, the old → new prediction
    matrix of negative flips, and a sortable, filterable table of flipped examples. For
    evaluation logs (``eval_logs``) it adds the per-task flips with their intervals and
    lists the flipped items with prompt, target and both responses (long texts folded in
    ``<details>``, filterable by task); for a chain of versions (``versions``) it opens with
    each version's error rate, the flip rates of every pair and the re-introduced errors,
    the rest describing the last step. Missing
    optional sections (``by_group``, ``most_affected``, ``gate``, ...) are left out; an
    undefined value (``None``) is shown as "undefined", never as 0.

    Args:
        summary: the JSON-able comparison summary (see the module docs of
            :mod:`graceful.report`), with undefined values as ``None``.

    Returns:
        The HTML page as a string. It references no external resource.

    Raises:
        InputError: if ``summary`` is not a mapping or a section has the wrong type.

    Example:
        >>> page = render_html({
        ...     "title": "a <b> c",
        ...     "metrics": {"negative_flip_rate": {"value": 0.0167, "low": 0.011,
        ...                 "high": 0.024, "numerator": 30, "denominator": 1797,
        ...                 "direction": "lower"}},
        ...     "mcnemar": {"negative_flips": 30, "positive_flips": 57, "p_value": 0.005,
        ...                 "alpha": 0.05, "verdict": "better"},
        ... })
        >>> "1.67%" in page and "p = 0.005" in page and "a &lt;b&gt; c" in page
        True
    """
    check_instance("summary", summary, Mapping, "a mapping")
    return render_page("report.html.j2", _context(summary))


def write_html(summary: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render ``summary`` with :func:`render_html` and write it to ``path`` atomically.

    The page is rendered completely before anything is written, and then written to a
    temporary file beside ``path`` that replaces ``path`` only once it is complete: an error
    never leaves a partial or empty file behind.

    Args:
        summary: the comparison summary, as for :func:`render_html`.
        path: where to write the page.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        InputError: if ``summary`` is malformed or the folder of ``path``
            does not exist.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "report.html"
        >>> write_html({"title": "demo"}, target) == target
        True
        >>> target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        True
    """
    return write_page(render_html(summary), path)


def write_page(page: str, path: str | os.PathLike[str]) -> Path:
    """Write a rendered page to ``path`` atomically, into a folder that must exist.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "p.html"
        >>> write_page("<!DOCTYPE html>", target).read_text(encoding="utf-8")
        '<!DOCTYPE html>'
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(
            f"Expected argument `path` to be in an existing folder, but got {str(path)!r}"
        )
    atomic_write_text(target, page)
    return target
