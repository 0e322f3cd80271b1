"""Charts for the HTML pages, drawn with matplotlib and returned as inline SVG strings.

The comparison report's bar chart and heatmap are written without matplotlib
(:mod:`graceful.report.svg`, re-exported here); the curves of the demo and the benchmark
pages are drawn here.

The figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot figures: they
are drawn by matplotlib's non-interactive SVG canvas, touch no global figure registry and
need no backend switch or ``plt.close`` (nothing is left open in the caller's process, and
a notebook's backend is left alone). Text stays text (``svg.fonttype = 'none'``) and is never
parsed as mathtext, so a class called ``$x$`` is drawn as written. The XML prolog, DOCTYPE and
metadata are removed and every ``id`` is prefixed, so several charts can sit in one page.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from graceful._extras import require
from graceful._validation import check_instance
from graceful.errors import InputError
from graceful.report.svg import finite_or_none, flip_matrix_heatmap, nfr_bar_chart, short_label

require("report", "graceful.report.charts", ("matplotlib",))

import matplotlib  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

__all__ = [
    "GRID",
    "INK",
    "MUTED",
    "PALETTE",
    "chart_style",
    "curve_chart",
    "figure_svg",
    "finite_or_none",
    "flip_matrix_heatmap",
    "mean_std",
    "nfr_bar_chart",
    "short_label",
]

_REGRESS = "#c0392b"
_REGRESS_LIGHT = "#e6a199"
INK = "#333333"
MUTED = "#777777"
GRID = "#e5e5e5"
PALETTE = (
    "#3b5b84",
    "#c0392b",
    "#1e7a3c",
    "#b7791f",
    "#7b4f9d",
    "#2a8c8c",
    "#8c564b",
    "#d35f8d",
    "#5f6b7a",
    "#9aa83a",
)

_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": 9.0,
    "axes.edgecolor": "#bbbbbb",
    "axes.labelcolor": INK,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
}


def chart_style(salt: str) -> AbstractContextManager[None]:
    """The rc context of every chart of the report; ``salt`` makes its SVG ids reproducible.

    Draw a :class:`~matplotlib.figure.Figure` inside it and pass it to :func:`figure_svg`
    to add a chart of your own in the report's style.
    """
    rc: Any = {**_RC, "svg.hashsalt": salt}
    return matplotlib.rc_context(rc)


def figure_svg(fig: Figure, prefix: str) -> str:
    """Render ``fig`` to an ``<svg>`` element that can be inlined in HTML.

    Every id is prefixed with ``prefix`` (unique within the page); the XML prolog,
    metadata and namespace declarations are dropped, so the page references no URL.
    """
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    # Inline SVG in HTML needs no namespace declarations; dropping them leaves no URL at all.
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    svg = svg.replace("<svg ", f'<svg role="img" class="chart" data-chart="{prefix}" ', 1)
    return svg.strip()


def mean_std(value: Any) -> tuple[float | None, float]:
    """``(mean, std)`` of a ``{"mean", "std"}`` mapping, or of a bare number (std 0).

    Example:
        >>> mean_std({"mean": 0.5, "std": 0.1}), mean_std(0.2), mean_std(None)
        ((0.5, 0.1), (0.2, 0.0), (None, 0.0))
    """
    if isinstance(value, Mapping):
        return finite_or_none(value.get("mean")), finite_or_none(value.get("std")) or 0.0
    return finite_or_none(value), 0.0


def _values(values: Any, where: str) -> Sequence[Any]:
    """Return ``values`` if it is a sequence other than text; raise InputError otherwise."""
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise InputError(
            f"Expected argument `{where}` to be a sequence, but got {type(values).__name__}"
        )
    return values


def _curve_points(
    item: Mapping[str, Any], index: int
) -> tuple[str, list[tuple[float, float, float]]]:
    """Return a curve's label and its drawable ``(x, mean, std)`` points, checking its shape."""
    check_instance(f"series[{index}]", item, Mapping, "a mapping")
    xs = _values(item.get("x"), f"series[{index}]['x']")
    ys = _values(item.get("y"), f"series[{index}]['y']")
    if len(xs) != len(ys):
        raise InputError(
            f"Expected argument `series[{index}]` to have as many 'y' as 'x' values, "
            f"but got {len(ys)} and {len(xs)}"
        )
    points = []
    for raw_x, raw_y in zip(xs, ys, strict=True):
        x = finite_or_none(raw_x)
        mean, std = mean_std(raw_y)
        if x is not None and mean is not None:
            points.append((x, mean, std))
    points.sort(key=lambda point: point[0])
    return str(item.get("label") or ""), points


def curve_chart(
    series: Sequence[Mapping[str, Any]],
    *,
    x_label: str,
    y_label: str,
    chart_id: str,
    percent: bool = True,
) -> str | None:
    r"""Draw one or more curves, each a mean line with markers and a shaded ± std band.

    Each series is drawn in its own colour, its points joined in order of ``x``; the band
    spans mean - std to mean + std at each point (a point without a std adds no width). A
    point whose ``x`` or mean is undefined (``None`` or not finite) is left out, and the
    line joins its neighbours. A legend names the series when any has a label.

    Args:
        series: mappings with ``label`` (text), ``x`` (numbers) and ``y`` (as many values,
            each ``{"mean": ..., "std": ...}`` or a bare number, ``None`` when undefined).
        x_label: the label of the x axis.
        y_label: the label of the y axis.
        chart_id: a short identifier, unique within the page, used to prefix SVG ids.
        percent: show the y values (fractions) in % on the axis; otherwise as they are.

    Returns:
        An ``<svg>`` element as a string, or None when no series has a drawable point.

    Raises:
        InputError: if a series is not a mapping, its ``x`` or ``y`` is not a sequence, or
            it has not as many ``y`` as ``x`` values.

    Example:
        >>> svg = curve_chart(
        ...     [{"label": "random", "x": [0.0, 0.5, 1.0],
        ...       "y": [{"mean": 0.61, "std": 0.01}, {"mean": 0.70, "std": 0.02}, 0.78]},
        ...      {"label": "uncertainty", "x": [0.0, 0.5, 1.0],
        ...       "y": [0.61, {"mean": None, "std": None}, 0.78]}],
        ...     x_label="fraction re-embedded", y_label="top-1", chart_id="backfill")
        >>> svg.startswith('<svg role="img" class="chart" data-chart="backfill"')
        True
        >>> "uncertainty" in svg and "fraction re-embedded" in svg
        True
        >>> curve_chart([{"label": "x", "x": [0.0], "y": [None]}],
        ...             x_label="x", y_label="y", chart_id="c") is None
        True
    """
    curves = [_curve_points(item, index) for index, item in enumerate(series)]
    if not any(points for _label, points in curves):
        return None

    with chart_style(chart_id):
        fig = Figure(figsize=(7.2, 4.0), layout="constrained")
        ax = fig.add_subplot()
        labelled = False
        for index, (label, points) in enumerate(curves):
            if not points:
                continue
            colour = PALETTE[index % len(PALETTE)]
            xs = [point[0] for point in points]
            means = [point[1] for point in points]
            stds = [point[2] for point in points]
            if any(std > 0 for std in stds):
                ax.fill_between(
                    xs,
                    [mean - std for mean, std in zip(means, stds, strict=True)],
                    [mean + std for mean, std in zip(means, stds, strict=True)],
                    color=colour,
                    alpha=0.18,
                    linewidth=0,
                    zorder=2,
                )
            labelled = labelled or bool(label)
            ax.plot(
                xs,
                means,
                color=colour,
                linewidth=1.4,
                marker="o",
                markersize=3.5,
                zorder=3,
                label=short_label(label, 40) if label else None,
            )
        ax.margins(x=0.03, y=0.12)
        if percent:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v * 100:.3g}%"))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(color=GRID, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
        if labelled:
            ax.legend(loc="best", fontsize=7.5, frameon=False)
        return figure_svg(fig, chart_id)
