"""The benchmark pages' own chart, drawn in the report's style (graceful.report.charts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from graceful.report.charts import (
    GRID,
    INK,
    PALETTE,
    chart_style,
    figure_svg,
    finite_or_none,
    mean_std,
    short_label,
)

__all__ = ["tradeoff_chart"]


def tradeoff_chart(
    points: Sequence[Mapping[str, Any]], *, chart_id: str = "tradeoff"
) -> str | None:
    r"""Draw the error-rate / negative-flip-rate trade-off of methods and parameter sweeps.

    The new model's error rate is on x and the negative flip rate on y, both in %. A point
    without a ``parameter`` key is a method: a labelled marker with mean ± std error bars in
    both directions. A point with ``parameter`` is one setting of a sweep: the points of each
    (``method``, ``parameter``) pair are joined by a line in order of ``value``, and each is
    annotated with its ``value``. Points whose mean is undefined (``None``) are left out.

    Args:
        points: mappings with ``error_rate_new`` and ``negative_flip_rate``, each either
            ``{"mean": ..., "std": ...}`` (fractions) or a bare fraction; methods have
            ``label`` (or ``method``), sweep points ``parameter``, ``value`` and ``method``
            (matched to a method point's ``method`` for the line's name).
        chart_id: a short identifier, unique within the page, used to prefix SVG ids.

    Returns:
        An ``<svg>`` element as a string, or None when no point has both means defined.

    Example:
        >>> svg = tradeoff_chart([
        ...     {"method": "no_treatment", "label": "No treatment",
        ...      "error_rate_new": {"mean": 0.062, "std": 0.003},
        ...      "negative_flip_rate": {"mean": 0.035, "std": 0.002}},
        ...     {"method": "fd_lm", "label": "FD-LM",
        ...      "error_rate_new": {"mean": 0.065, "std": 0.004},
        ...      "negative_flip_rate": {"mean": 0.019, "std": 0.001}},
        ...     {"parameter": "beta", "value": 5.0, "method": "fd_lm",
        ...      "error_rate_new": 0.066, "negative_flip_rate": 0.017},
        ...     {"parameter": "beta", "value": 1.0, "method": "fd_lm",
        ...      "error_rate_new": 0.063, "negative_flip_rate": 0.024},
        ... ])
        >>> svg.startswith("<svg") and "FD-LM" in svg and "beta" in svg
        True
        >>> tradeoff_chart([{"label": "x", "error_rate_new": None}]) is None
        True
    """
    methods: list[tuple[str, float, float, float, float, str]] = []
    sweeps: dict[tuple[str, str], list[tuple[float | None, Any, float, float]]] = {}
    names: dict[str, str] = {}
    colours: dict[str, str] = {}
    for point in points:
        x, x_std = mean_std(point.get("error_rate_new"))
        y, y_std = mean_std(point.get("negative_flip_rate"))
        if "parameter" in point:
            if x is not None and y is not None:
                key = (str(point.get("method") or ""), str(point.get("parameter")))
                raw = point.get("value")
                sweeps.setdefault(key, []).append((finite_or_none(raw), raw, x, y))
            continue
        label = str(point.get("label") or point.get("method") or "")
        colour = PALETTE[len(methods) % len(PALETTE)]
        if point.get("method") is not None:
            names[str(point["method"])] = label
            colours[str(point["method"])] = colour
        if x is not None and y is not None:
            methods.append((label, x, y, x_std, y_std, colour))
    if not methods and not sweeps:
        return None

    with chart_style(chart_id):
        fig = Figure(figsize=(7.2, 4.4), layout="constrained")
        ax = fig.add_subplot()
        for index, ((method, parameter), items) in enumerate(sweeps.items()):
            items.sort(key=lambda item: (item[0] is None, item[0] or 0.0))
            # A sweep takes its method's colour; a sweep of an unknown method a spare one.
            spare = PALETTE[(len(PALETTE) - 1 - index) % len(PALETTE)]
            colour = colours.get(method, spare)
            name = names.get(method, method)
            ax.plot(
                [item[2] for item in items],
                [item[3] for item in items],
                color=colour,
                linestyle=(0, (4, 2)),
                linewidth=1.0,
                marker="o",
                markersize=3.5,
                markerfacecolor="white",
                alpha=0.9,
                zorder=2,
                label=f"{short_label(name, 20)}: {short_label(parameter, 16)} sweep"
                if name
                else parameter,
            )
            for number, raw, x, y in items:
                text = f"{number:g}" if number is not None else str(raw)
                ax.annotate(
                    short_label(text, 12),
                    (x, y),
                    xytext=(4, -9),
                    textcoords="offset points",
                    fontsize=7,
                    color=colour,
                )
        for label, x, y, x_std, y_std, colour in methods:
            ax.errorbar(
                x,
                y,
                xerr=x_std,
                yerr=y_std,
                fmt="o",
                color=colour,
                ecolor=colour,
                elinewidth=0.9,
                capsize=2.5,
                markersize=5,
                zorder=3,
            )
            ax.annotate(
                short_label(label),
                (x, y),
                xytext=(6, 5),
                textcoords="offset points",
                fontsize=8,
                color=INK,
                zorder=4,
            )
        ax.margins(x=0.12, y=0.12)
        percent = FuncFormatter(lambda v, _pos: f"{v * 100:.3g}%")
        ax.xaxis.set_major_formatter(percent)
        ax.yaxis.set_major_formatter(percent)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.set_xlabel("error rate of the new model (lower is better)")
        ax.set_ylabel("negative flip rate (lower is better)")
        ax.grid(color=GRID, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
        if sweeps:
            ax.legend(loc="best", fontsize=7.5, frameon=False)
        return figure_svg(fig, chart_id)
