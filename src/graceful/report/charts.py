"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG strings.

The figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot figures: they
are drawn by matplotlib's non-interactive SVG canvas, touch no global figure registry and
need no backend switch or ``plt.close`` (nothing is left open in the caller's process, and
a notebook's backend is left alone). Text stays text (``svg.fonttype = 'none'``) and is never
parsed as mathtext, so a class called ``$x$`` is drawn as written. The XML prolog, DOCTYPE and
metadata are removed and every ``id`` is prefixed, so several charts can sit in one page.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from graceful._validation import check_instance, check_int
from graceful.errors import InputError

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


def finite_or_none(value: Any) -> float | None:
    """Return ``value`` as a float, or None when it is missing or not finite.

    Example:
        >>> finite_or_none("0.5"), finite_or_none(None), finite_or_none(float("nan"))
        (0.5, None, None)
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def short_label(text: str, limit: int = 28) -> str:
    """Shorten a label for an axis, keeping its start and end.

    Example:
        >>> short_label("a" * 40, 12)
        'aa…aaaaaaaaa'
    """
    return text if len(text) <= limit else text[: limit - 10] + "…" + text[-9:]


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


def nfr_bar_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    chart_id: str = "nfr",
    xlabel: str = "negative flip rate",
    max_bars: int = 30,
) -> str | None:
    r"""Draw each group's negative flip rate as a horizontal bar with its interval.

    Bars keep the order of ``rows`` unless there are more than ``max_bars``, in which case
    the ``max_bars`` groups with the highest negative flip rate are drawn, highest first.
    A group whose rate is undefined (``None``) is drawn as an empty row labelled
    "undefined".

    Args:
        rows: per-group rows with keys ``group``, ``negative_flip_rate`` and optionally
            ``negative_flip_rate_low`` / ``negative_flip_rate_high`` (fractions).
        chart_id: a short identifier, unique within the page, used to prefix SVG ids.
        xlabel: the label of the value axis.
        max_bars: the most bars to draw.

    Returns:
        An ``<svg>`` element as a string, or None when ``rows`` is empty.

    Raises:
        InputError: if ``max_bars`` is not a positive int.

    Example:
        >>> svg = nfr_bar_chart([
        ...     {"group": "cat", "negative_flip_rate": 0.02,
        ...      "negative_flip_rate_low": 0.01, "negative_flip_rate_high": 0.04},
        ...     {"group": "dog", "negative_flip_rate": None},
        ... ])
        >>> svg.startswith("<svg") and "cat" in svg and "undefined" in svg
        True
        >>> nfr_bar_chart([]) is None
        True
    """
    check_int("max_bars", max_bars, low=1)
    if not rows:
        return None
    items = list(rows)
    if len(items) > max_bars:
        items.sort(key=lambda r: -(finite_or_none(r.get("negative_flip_rate")) or -1.0))
        items = items[:max_bars]
    labels = [short_label(str(r.get("group", ""))) for r in items]
    values = [finite_or_none(r.get("negative_flip_rate")) for r in items]
    lows = [finite_or_none(r.get("negative_flip_rate_low")) for r in items]
    highs = [finite_or_none(r.get("negative_flip_rate_high")) for r in items]
    top = max([v for v in values + highs if v is not None] + [0.0])
    top = top if top > 0 else 0.01

    with chart_style(chart_id):
        height = 0.9 + 0.26 * len(items)
        fig = Figure(figsize=(7.2, height), layout="constrained")
        ax = fig.add_subplot()
        positions = list(range(len(items)))
        ax.barh(
            positions,
            [v if v is not None else 0.0 for v in values],
            height=0.62,
            color=_REGRESS_LIGHT,
            edgecolor=_REGRESS,
            linewidth=0.6,
            zorder=2,
        )
        for pos, value, low, high in zip(positions, values, lows, highs, strict=True):
            if value is None:
                ax.text(top * 0.01, pos, "undefined", va="center", fontsize=8, color=MUTED)
                continue
            if low is not None and high is not None:
                ax.errorbar(
                    value,
                    pos,
                    xerr=[[max(value - low, 0.0)], [max(high - value, 0.0)]],
                    fmt="none",
                    ecolor=INK,
                    elinewidth=0.9,
                    capsize=2.5,
                    zorder=3,
                )
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.08)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x * 100:.3g}%"))
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", color=GRID, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="y", length=0, labelcolor=INK)
        return figure_svg(fig, chart_id)


def flip_matrix_heatmap(
    rows: Sequence[Any],
    columns: Sequence[Any],
    counts: Sequence[Sequence[Any]],
    *,
    chart_id: str = "flips",
    max_labels: int = 20,
) -> str | None:
    """Draw the old-prediction → new-prediction counts of negative flips as a heatmap.

    When there are more than ``max_labels`` rows or columns, only those with the largest
    totals are drawn (the page says so next to the chart).

    Args:
        rows: old predictions (one per matrix row).
        columns: new predictions (one per matrix column).
        counts: ``len(rows)`` lists of ``len(columns)`` counts.
        chart_id: a short identifier, unique within the page, used to prefix SVG ids.
        max_labels: the most rows and the most columns to draw.

    Returns:
        An ``<svg>`` element as a string, or None when there are no negative flips.

    Raises:
        InputError: if ``counts`` does not have the shape of ``rows`` by ``columns``, or
            ``max_labels`` is not a positive int.

    Example:
        >>> svg = flip_matrix_heatmap(["1", "8"], ["8", "9"], [[0, 3], [2, 0]])
        >>> svg.startswith("<svg") and "old prediction" in svg
        True
        >>> flip_matrix_heatmap([], [], []) is None
        True
    """
    check_int("max_labels", max_labels, low=1)
    if len(counts) != len(rows) or any(len(line) != len(columns) for line in counts):
        shape = [len(line) for line in counts]
        raise InputError(
            f"Expected argument `counts` to have {len(rows)} rows of {len(columns)} counts, "
            f"but got rows of lengths {shape!r}"
        )
    matrix = [[finite_or_none(c) or 0.0 for c in line] for line in counts]
    if not matrix or not any(c > 0 for line in matrix for c in line):
        return None
    row_order = sorted(range(len(rows)), key=lambda i: -sum(matrix[i]))[:max_labels]
    col_order = sorted(range(len(columns)), key=lambda j: -sum(m[j] for m in matrix))
    col_order = col_order[:max_labels]
    row_order.sort()
    col_order.sort()
    grid = [[matrix[i][j] for j in col_order] for i in row_order]
    peak = max(max(line) for line in grid) or 1.0

    with chart_style(chart_id):
        width = 1.6 + 0.42 * len(col_order)
        height = 1.3 + 0.36 * len(row_order)
        fig = Figure(figsize=(max(width, 3.4), max(height, 2.2)), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(grid, cmap="Reds", vmin=0, vmax=peak, aspect="auto")
        for r, line in enumerate(grid):
            for c, value in enumerate(line):
                if value <= 0:
                    continue
                text = f"{value:g}" if value == int(value) else f"{value:.3g}"
                colour = "white" if value > peak * 0.55 else INK
                ax.text(c, r, text, ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(range(len(col_order)), [short_label(str(columns[j]), 16) for j in col_order])
        ax.set_yticks(range(len(row_order)), [short_label(str(rows[i]), 20) for i in row_order])
        longest = max(len(str(columns[j])) for j in col_order)
        rotate = len(col_order) * min(longest, 16) > 40
        ax.tick_params(axis="x", length=0)
        if rotate:
            for label in ax.get_xticklabels():
                label.set(rotation=45, ha="right", rotation_mode="anchor")
        ax.tick_params(axis="y", length=0)
        ax.set_xlabel("new prediction")
        ax.set_ylabel("old prediction")
        ax.spines[:].set_visible(False)
        ax.set_xticks([x - 0.5 for x in range(len(col_order) + 1)], minor=True)
        ax.set_yticks([y - 0.5 for y in range(len(row_order) + 1)], minor=True)
        ax.grid(which="minor", color="white", linewidth=1.2)
        ax.tick_params(which="minor", length=0)
        colorbar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
        colorbar.outline.set_visible(False)
        colorbar.ax.tick_params(labelsize=7)
        colorbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        return figure_svg(fig, chart_id)


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
