"""Render benchmark results as one self-contained HTML page, in the style of the compare report.

The results are the JSON-able dict that a benchmark such as ``python -m benchmarks pct`` writes:

``benchmark``, ``title``, ``graceful_version``, ``created``, ``machine`` (``cpus``, ``torch``,
``platform``) and ``settings``, a list of settings each with ``name``, ``title``,
``description``, ``seeds``, ``seconds``, ``rows`` (one per method: ``method``, ``label``,
``n_models`` and ``error_rate_old``, ``error_rate_new``, ``negative_flip_rate``,
``relative_negative_flip_rate``, each ``{"mean", "std", "values"}`` over the seeds) and the
optional ``targets``, ``epoch_time``, ``sweep`` and ``predictions`` (the folder of saved
predictions). Any value may be ``None``; it is shown as "n/a", never as 0.

The page shares its head (error hook, Content-Security-Policy) and stylesheet with the
compare report (:mod:`graceful.report.html`): it loads nothing from elsewhere, charts are
inline SVG, every user-provided value is escaped, the results are embedded as script-safe
JSON (``#graceful-results``), and the root element carries ``data-script-errors`` and
``data-ready`` for automated checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.pages.charts import tradeoff_chart
from graceful.errors import InputError
from graceful.report.charts import finite_or_none as _number
from graceful.report.html import ERROR_HOOK_SCRIPT, render_page, script_json, write_page

__all__ = ["render_bench_html", "write_bench_html"]

_TEMPLATES = Path(__file__).parent / "templates"


def _clip(value: Any, limit: int = 80) -> str:
    """A one-line ``repr`` of ``value``, shortened for an error message."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NA = "n/a"


def _stat(value: Any) -> tuple[float | None, float | None]:
    """Return ``(mean, std)`` of a ``{"mean", "std"}`` mapping or a bare number."""
    if isinstance(value, Mapping):
        return _number(value.get("mean")), _number(value.get("std"))
    return _number(value), None


def _pct_stat(value: Any) -> str:
    """Format a mean ± std of fractions in %, e.g. ``"3.50 ± 0.20%"``; None is "n/a"."""
    mean, std = _stat(value)
    if mean is None:
        return _NA
    if std is None:
        return f"{mean * 100:.2f}%"
    return f"{mean * 100:.2f} ± {std * 100:.2f}%"


def _ratio_stat(value: Any, unit: str = "", digits: int = 3) -> str:
    """Format a mean ± std of plain ratios, e.g. ``"0.618 ± 0.031"``; None is "n/a"."""
    mean, std = _stat(value)
    if mean is None:
        return _NA
    if std is None:
        return f"{mean:.{digits}f}{unit}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}{unit}"


def _seconds_stat(value: Any) -> str:
    """Format a mean ± std of seconds."""
    mean, std = _stat(value)
    if mean is None:
        return _NA
    if std is None:
        return f"{mean:.3g} s"
    return f"{mean:.3g} ± {std:.2g} s"


def _per_seed(value: Any, percent: bool) -> str:
    """Return a tooltip listing the per-seed values, or "" when there are none."""
    if not isinstance(value, Mapping) or not isinstance(value.get("values"), list):
        return ""
    parts = []
    for item in value["values"]:
        number = _number(item)
        if number is None:
            parts.append(_NA)
        else:
            parts.append(f"{number * 100:.2f}%" if percent else f"{number:.3f}")
    return "per seed: " + ", ".join(parts) if parts else ""


def _duration(value: Any) -> str:
    """Format a wall time in seconds as ``"8 min 32 s"``; None is "n/a"."""
    seconds = _number(value)
    if seconds is None:
        return _NA
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _plain(value: Any) -> str:
    """Format a number with up to 4 significant digits; None is "n/a"."""
    number = _number(value)
    return _NA if number is None else f"{number:.4g}"


def _text(value: Any) -> str:
    """Return ``value`` as text; None is ""."""
    return "" if value is None else str(value)


def _get(container: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """Return ``container[key]`` if present and of ``kind``; None when missing or null."""
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise InputError(
            f"Expected `{where}[{key!r}]` to be a {kind.__name__}, "
            f"but got {type(value).__name__}: {_clip(value)}"
        )
    return value


def _mappings(items: Sequence[Any], where: str) -> list[Mapping[str, Any]]:
    """Check that every item of ``items`` is a mapping."""
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InputError(
                f"Expected `{where}[{index}]` to be a mapping, but got "
                f"{type(item).__name__}: {_clip(item)}"
            )
    return list(items)


def _is_single(row: Mapping[str, Any]) -> bool:
    """Whether a method row is one model (a missing ``n_models`` counts as one)."""
    n_models = _number(row.get("n_models"))
    return n_models is None or n_models <= 1


def _method_rows(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Turn the method rows of a setting into table rows, marking the best single-model NFR."""
    single_nfrs = [
        mean
        for row in rows
        if _is_single(row) and (mean := _stat(row.get("negative_flip_rate"))[0]) is not None
    ]
    best = min(single_nfrs) if single_nfrs else None
    out = []
    for row in rows:
        n_models = _number(row.get("n_models"))
        nfr = _stat(row.get("negative_flip_rate"))[0]
        cells = []
        for key in ("error_rate_old", "error_rate_new", "negative_flip_rate"):
            cells.append(
                {
                    "key": key,
                    "text": _pct_stat(row.get(key)),
                    "title": _per_seed(row.get(key), percent=True),
                    "best": key == "negative_flip_rate"
                    and best is not None
                    and nfr == best
                    and _is_single(row),
                }
            )
        rel = row.get("relative_negative_flip_rate")
        cells.append(
            {
                "key": "relative_negative_flip_rate",
                "text": _ratio_stat(rel),
                "title": _per_seed(rel, percent=False),
                "best": False,
            }
        )
        out.append(
            {
                "method": _text(row.get("method")),
                "label": _text(row.get("label") or row.get("method")),
                "ensemble": (
                    f"ensemble of {n_models:g} models"
                    if n_models is not None and n_models > 1
                    else ""
                ),
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
                "threshold": _plain(target.get("threshold")),
                "detail": _text(target.get("detail")),
            }
        )
    return out


def _epoch_time(epoch: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Return the epoch-time ratio line, or None when the section is missing."""
    if epoch is None:
        return None
    return {
        "ratio": _ratio_stat(epoch.get("ratio"), "×", digits=2),
        "plain": _seconds_stat(epoch.get("plain_s")),
        "cached": _seconds_stat(epoch.get("fd_cached_s")),
    }


def _setting(setting: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Build the template context of one setting."""
    where = f"results['settings'][{index}]"
    rows = _mappings(_get(setting, "rows", list, where) or [], f"{where}['rows']")
    targets = _mappings(_get(setting, "targets", list, where) or [], f"{where}['targets']")
    sweep = _mappings(_get(setting, "sweep", list, where) or [], f"{where}['sweep']")
    seeds = _get(setting, "seeds", list, where) or []
    name = _text(setting.get("name"))
    method_rows = _method_rows(rows)
    methods = {row["method"] for row in method_rows if row["method"]}
    example_method = "fd_lm" if "fd_lm" in methods or not methods else sorted(methods)[0]
    predictions = setting.get("predictions")
    folder = None if predictions is None else str(predictions).rstrip("/\\") or "."
    return {
        "name": name,
        "title": _text(setting.get("title")) or name or f"Setting {index + 1}",
        "description": _text(setting.get("description")),
        "seeds": ", ".join(str(seed) for seed in seeds),
        "n_seeds": len(seeds),
        "seconds": _duration(setting.get("seconds")) if "seconds" in setting else "",
        "rows": method_rows,
        "has_best": any(cell["best"] for row in method_rows for cell in row["cells"]),
        "has_ensemble": any(row["ensemble"] for row in method_rows),
        "targets": _targets(targets),
        "epoch_time": _epoch_time(_get(setting, "epoch_time", Mapping, where)),
        "chart": tradeoff_chart([*rows, *sweep], chart_id=f"tradeoff{index}"),
        "has_sweep": bool(sweep),
        "predictions": folder,
        "example_method": example_method,
    }


def _machine_line(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (label, value) pairs describing the run and the machine."""
    machine = _get(results, "machine", Mapping, "results") or {}
    parts: list[tuple[str, str]] = []
    if results.get("benchmark") is not None:
        parts.append(("benchmark", str(results["benchmark"])))
    if results.get("created") is not None:
        parts.append(("run", str(results["created"])))
    if results.get("graceful_version") is not None:
        parts.append(("graceful", str(results["graceful_version"])))
    for key, label in (("cpus", "CPUs"), ("gpu", "GPU"), ("torch", "torch")):
        if key in machine:
            parts.append((label, _NA if machine[key] is None else str(machine[key])))
    if machine.get("platform") is not None:
        parts.append(("platform", str(machine["platform"])))
    return parts


def _context(results: Mapping[str, Any]) -> dict[str, Any]:
    """Build the template context from benchmark results."""
    settings = _mappings(_get(results, "settings", list, "results") or [], "results['settings']")
    benchmark = _text(results.get("benchmark"))
    title = _text(results.get("title")) or (f"Benchmark {benchmark}" if benchmark else "Benchmark")
    return {
        "hook": ERROR_HOOK_SCRIPT,
        "title": title,
        "version": _text(results.get("graceful_version")),
        "machine": _machine_line(results),
        "settings": [_setting(setting, index) for index, setting in enumerate(settings)],
        "results_json": script_json(results),
    }


def render_bench_html(results: Mapping[str, Any]) -> str:
    """Render benchmark results as one self-contained HTML page.

    Per setting, the page shows its description, a table in the form of the
    positive-congruent training papers (method, old and new error rate, negative flip rate,
    each mean ± std over the seeds in %, and the relative NFR), with the lowest NFR of a
    single model highlighted, the benchmark's targets with pass/fail badges, the epoch-time
    ratio of focal distillation with cached old-model logits, the error-rate/NFR
    trade-off chart (:func:`benchmarks.pages.charts.tradeoff_chart`) and the command that
    opens a pairwise report on the saved predictions. Missing optional sections are left
    out; an undefined value (``None``) is shown as "n/a".

    Args:
        results: the JSON-able results of a benchmark (see the module docs of
            :mod:`benchmarks.pages.bench`).

    Returns:
        The HTML page as a string. It references no external resource.

    Raises:
        InputError: if ``results`` is not a mapping or a section has the wrong type.

    Example:
        >>> page = render_bench_html({
        ...     "title": "PCT <demo>",
        ...     "settings": [{"name": "toy", "rows": [
        ...         {"method": "fd_lm", "label": "FD-LM", "n_models": 1,
        ...          "negative_flip_rate": {"mean": 0.019, "std": 0.001},
        ...          "error_rate_new": None}]}],
        ... })
        >>> "1.90 ± 0.10%" in page and "n/a" in page and "PCT &lt;demo&gt;" in page
        True
    """
    if not isinstance(results, Mapping):
        raise InputError(
            f"Expected argument `results` to be a mapping, but got {type(results).__name__}: "
            f"{_clip(results)}"
        )
    return render_page("bench.html.j2", _context(results), templates=_TEMPLATES)


def write_bench_html(results: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render ``results`` with :func:`render_bench_html` and write it to ``path`` atomically.

    The page is rendered completely before anything is written, and then written to a
    temporary file beside ``path`` that replaces ``path`` only once it is complete: an error
    never leaves a partial or empty file behind.

    Args:
        results: the benchmark results, as for :func:`render_bench_html`.
        path: where to write the page.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        graceful.errors.InputError: if ``results`` is malformed or the folder of ``path``
            does not exist.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "bench.html"
        >>> write_bench_html({"benchmark": "pct"}, target) == target
        True
        >>> target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        True
    """
    return write_page(render_bench_html(results), path)
