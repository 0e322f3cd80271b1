"""Disaggregated flip analysis: where does an update break things?

:class:`FlipFrame` is computed once from per-sample inputs and exposed read-only, in the
spirit of fairlearn's ``MetricFrame``: ``overall``, ``by_class``, ``by_group``,
``flip_matrix``, ``most_affected``, ``group_max`` and ``difference``. Every table is a
new pandas object, so changing it never changes the frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from graceful._validation import check_choice, check_int, check_real
from graceful.errors import InputError

from ._counts import (
    CELL_BOTH_WRONG,
    CELL_EXCLUDED,
    CELL_NEGATIVE_FLIP,
    CELL_POSITIVE_FLIP,
    FlipCounts,
    cells_from_prepared,
    compute_all,
    counts_from_cells,
    flip_state,
)
from .stats import wilson_interval

if TYPE_CHECKING:
    from ._inputs import ArrayLike, ClassMap

__all__ = ["GROUP_COLUMNS", "FlipFrame"]

GROUP_COLUMNS = (
    "n",
    "weight",
    "error_rate_old",
    "error_rate_new",
    "negative_flip_rate",
    "negative_flip_rate_low",
    "negative_flip_rate_high",
    "positive_flip_rate",
    "negative_flips",
    "positive_flips",
)
"""Columns of every per-class / per-group table."""


def _group_table(
    codes: np.ndarray,
    names: Sequence[str],
    cells: np.ndarray,
    weight: np.ndarray | None,
    confidence: float,
) -> pd.DataFrame:
    """Per-group counts and rates from per-sample group codes and cells (excluded dropped)."""
    keep = cells != CELL_EXCLUDED
    codes, cells = codes[keep], cells[keep]
    k = len(names)
    flat = codes.astype(np.int64) * 4 + cells
    raw: np.ndarray = np.bincount(flat, minlength=4 * k).reshape(k, 4).astype(np.float64)
    weighted, squared = raw, raw
    if weight is not None:
        w = weight[keep]
        weighted = np.bincount(flat, weights=w, minlength=4 * k).reshape(k, 4)
        squared = np.bincount(flat, weights=w * w, minlength=4 * k).reshape(k, 4)
    total = weighted.sum(axis=1)
    n = raw.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(total > 0, total, np.nan)
        err_old = (weighted[:, CELL_BOTH_WRONG] + weighted[:, CELL_POSITIVE_FLIP]) / safe
        err_new = (weighted[:, CELL_BOTH_WRONG] + weighted[:, CELL_NEGATIVE_FLIP]) / safe
        nfr = weighted[:, CELL_NEGATIVE_FLIP] / safe
        pfr = weighted[:, CELL_POSITIVE_FLIP] / safe
        sq_total = squared.sum(axis=1)
        n_eff = np.where(sq_total > 0, total * total / np.where(sq_total > 0, sq_total, 1), 0)
    lows, highs = [], []
    for p, m in zip(nfr, n_eff, strict=True):
        lo, hi = wilson_interval(p * m, m, confidence=confidence) if m > 0 else (math.nan,) * 2
        lows.append(lo)
        highs.append(hi)
    table = pd.DataFrame(
        {
            "n": n.astype(np.int64),
            "weight": total,
            "error_rate_old": err_old,
            "error_rate_new": err_new,
            "negative_flip_rate": nfr,
            "negative_flip_rate_low": lows,
            "negative_flip_rate_high": highs,
            "positive_flip_rate": pfr,
            "negative_flips": weighted[:, CELL_NEGATIVE_FLIP],
            "positive_flips": weighted[:, CELL_POSITIVE_FLIP],
        },
        index=pd.Index([str(x) for x in names], name="group"),
    )
    return table[table["n"] > 0]


class FlipFrame:
    """Negative and positive flips overall, per true class, and per user-named group.

    Args:
        target: true classes (new label space), as for :func:`graceful.metrics.flip_counts`.
        preds_old: old model's labels ``(N,)``, scores ``(N, C)``, or ranked labels
            ``(N, k)`` with ``ranked=True``.
        preds_new: new model's predictions, in one of the same forms.
        groups: extra per-sample columns to break results down by: a mapping of name ->
            array, or a pandas DataFrame (one column per grouping).
        class_names: names of the new model's classes, for display (default: indices).
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`graceful.metrics.flip_counts`.
        num_classes: new model's number of classes, for label predictions.
        ranked: 2-D integer predictions are ranked label lists, best first.
        confidence: level of the Wilson intervals in the tables.

    Example:
        >>> frame = FlipFrame([0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 1],
        ...                   groups={"device": ["a", "b", "a", "b", "b"]})
        >>> float(frame.overall["negative_flip_rate"])
        0.4
        >>> frame.by_class["negative_flip_rate"].tolist()
        [0.5, 0.3333333333333333]
        >>> frame.by_group.loc["device", "negative_flip_rate"].tolist()
        [0.0, 0.6666666666666666]
        >>> frame.flip_matrix.to_dict()
        {'0': {'0': 0.0, '1': 1.0}, '1': {'0': 1.0, '1': 0.0}}
    """

    def __init__(
        self,
        target: ArrayLike,
        preds_old: ArrayLike,
        preds_new: ArrayLike,
        *,
        groups: Mapping[str, ArrayLike] | pd.DataFrame | None = None,
        class_names: Sequence[str] | None = None,
        top_k: int = 1,
        sample_weight: ArrayLike | None = None,
        class_map: ClassMap | None = None,
        num_classes: int | None = None,
        ranked: bool = False,
        confidence: float = 0.95,
    ) -> None:
        from ._inputs import prepare  # torch: only this constructor needs it

        prepared = prepare(
            target,
            preds_old,
            preds_new,
            top_k=top_k,
            sample_weight=sample_weight,
            class_map=class_map,
            num_classes=num_classes,
            ranked=ranked,
        )
        self._setup(
            FlipCounts.from_state(flip_state(prepared)),
            cells=cells_from_prepared(prepared).cpu().numpy(),
            weight=None if prepared.weight is None else prepared.weight.cpu().numpy(),
            target=prepared.target.cpu().numpy(),
            top1_old=prepared.top1_old().cpu().numpy(),
            top1_new=prepared.top1_new().cpu().numpy(),
            groups=groups,
            class_names=class_names,
            num_classes=num_classes,
            confidence=confidence,
        )

    @classmethod
    def from_cells(
        cls,
        cells: np.ndarray,
        target: np.ndarray,
        top1_old: np.ndarray,
        top1_new: np.ndarray,
        *,
        groups: Mapping[str, ArrayLike] | pd.DataFrame | None = None,
        class_names: Sequence[str] | None = None,
        sample_weight: np.ndarray | None = None,
        num_classes: int | None = None,
        confidence: float = 0.95,
    ) -> FlipFrame:
        """A frame from per-sample cells already computed (NumPy only; torch is not loaded).

        For callers that know each sample's correctness under both models, such as
        :func:`graceful.release.compare` on aligned files: the same frame as the
        constructor gives for the inputs the cells come from.

        Args:
            cells: ``(N,)`` cell per sample: 0 both wrong, 1 positive flip, 2 negative
                flip, 3 both correct, 4 excluded (:meth:`cells` of a frame).
            target: ``(N,)`` true class indices (``>= 0``).
            top1_old: ``(N,)`` old top-1 prediction in the new label space, ``-1`` where the
                old class has no counterpart.
            top1_new: ``(N,)`` new top-1 prediction (``>= 0``).
            groups: extra per-sample columns to break results down by, as for the
                constructor.
            class_names: names of the new model's classes (default: indices).
            sample_weight: optional ``(N,)`` non-negative finite weight per sample.
            num_classes: new model's number of classes (for the default names).
            confidence: level of the Wilson intervals in the tables.

        Raises:
            InputError: an array of the wrong shape, type or range (named).

        Example:
            >>> frame = FlipFrame.from_cells(np.array([3, 2, 1, 2]), np.array([0, 0, 1, 1]),
            ...                              np.array([0, 0, 0, 1]), np.array([0, 1, 1, 0]))
            >>> float(frame.overall["negative_flip_rate"]), frame.by_class["n"].tolist()
            (0.5, [2, 2])
        """
        arrays = {}
        n = None
        for name, values, low in (
            ("cells", cells, 0),
            ("target", target, 0),
            ("top1_old", top1_old, -1),
            ("top1_new", top1_new, 0),
        ):
            arr = np.asarray(values)
            if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
                raise InputError(
                    f"Expected argument `{name}` to be a 1-D integer array, but got "
                    f"{arr.dtype} of shape {tuple(arr.shape)}"
                )
            if n is None:
                n = arr.size
            elif arr.size != n:
                raise InputError(
                    f"Expected argument `{name}` to have {n} values like `cells`, but got "
                    f"{arr.size}"
                )
            if arr.size and int(arr.min()) < low:
                raise InputError(
                    f"Expected argument `{name}` to hold values >= {low}, but got {int(arr.min())}"
                )
            arrays[name] = arr.astype(np.int64, copy=False)
        if arrays["cells"].size and int(arrays["cells"].max()) > CELL_EXCLUDED:
            raise InputError(
                f"Expected argument `cells` to hold cell indices 0..{CELL_EXCLUDED}, but got "
                f"{int(arrays['cells'].max())}"
            )
        if n == 0:
            raise InputError("Expected argument `cells` to hold at least one sample, but got 0")
        weight = None
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=np.float64)
            if weight.shape != (n,):
                raise InputError(
                    f"Expected argument `sample_weight` to have shape ({n},), but got "
                    f"{tuple(weight.shape)}"
                )
            if not np.all(np.isfinite(weight)) or bool((weight < 0).any()):
                raise InputError(
                    "Expected argument `sample_weight` to hold finite non-negative weights"
                )
        frame = cls.__new__(cls)
        frame._setup(
            counts_from_cells(arrays["cells"], weight),
            cells=arrays["cells"].astype(np.uint8),
            weight=weight,
            target=arrays["target"],
            top1_old=arrays["top1_old"],
            top1_new=arrays["top1_new"],
            groups=groups,
            class_names=class_names,
            num_classes=num_classes,
            confidence=confidence,
        )
        return frame

    def _setup(
        self,
        counts: FlipCounts,
        *,
        cells: np.ndarray,
        weight: np.ndarray | None,
        target: np.ndarray,
        top1_old: np.ndarray,
        top1_new: np.ndarray,
        groups: Mapping[str, ArrayLike] | pd.DataFrame | None,
        class_names: Sequence[str] | None,
        num_classes: int | None,
        confidence: float,
    ) -> None:
        self._counts = counts
        self._cells = cells
        self._weight = weight
        self._target = target
        self._top1_old = top1_old
        self._top1_new = top1_new
        self._confidence = check_real(
            "confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True
        )
        n = len(self._cells)

        seen = max(int(self._target.max()), int(self._top1_new.max()), int(self._top1_old.max()), 0)
        if class_names is None:
            size = num_classes if num_classes is not None else seen + 1
            self._class_names = [str(i) for i in range(max(size, seen + 1))]
        else:
            self._class_names = [str(c) for c in class_names]
            if len(self._class_names) <= seen:
                raise InputError(
                    f"Expected argument `class_names` to name at least {seen + 1} classes,"
                    f" but got {len(self._class_names)}"
                )

        self._tables: dict[str | None, pd.DataFrame] = {}
        self._groups: dict[str, tuple[np.ndarray, list[str]]] = {}
        if groups is not None:
            items = (
                [(str(c), groups[c]) for c in groups.columns]
                if isinstance(groups, pd.DataFrame)
                else [(str(k), v) for k, v in groups.items()]
            )
            for name, values in items:
                arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
                if arr.ndim != 1 or len(arr) != n:
                    raise InputError(
                        f"Expected group `{name}` to have {n} values like `target`, but got"
                        f" shape {tuple(arr.shape)}"
                    )
                codes, uniques = pd.factorize(arr, sort=True, use_na_sentinel=False)
                self._groups[name] = (codes.astype(np.int64), [str(u) for u in uniques])

    # -- read-only views -------------------------------------------------------------------

    @property
    def counts(self) -> FlipCounts:
        """The overall 2x2 table (:class:`FlipCounts`)."""
        return self._counts

    @property
    def overall(self) -> pd.Series:
        """Every metric over all compared samples (``pd.Series``, name -> float)."""
        return pd.Series(compute_all(self._counts, warn=False), name="overall")

    @property
    def class_names(self) -> list[str]:
        """Display names of the new model's classes."""
        return list(self._class_names)

    @property
    def group_names(self) -> list[str]:
        """Names of the user-given groupings."""
        return list(self._groups)

    @property
    def by_class(self) -> pd.DataFrame:
        """Per true class: counts, error rates, NFR with Wilson interval, PFR.

        A ``pd.DataFrame`` indexed by class name with the columns of
        :data:`GROUP_COLUMNS`; classes with no compared sample are left out.
        """
        return self._cached_table(None).copy()

    def _cached_table(self, column: str | None) -> pd.DataFrame:
        """Each table is computed once (the frame never changes); callers get copies.

        ``None`` is the per-class table (a user grouping may well be named "class").
        """
        if column not in self._tables:
            if column is None:
                codes, names = self._target, self._class_names
            else:
                codes, names = self._groups[column]
            self._tables[column] = _group_table(
                codes, names, self._cells, self._weight, self._confidence
            )
        return self._tables[column]

    def by(self, column: str) -> pd.DataFrame:
        """The per-group table of one grouping (same columns as :attr:`by_class`)."""
        if column not in self._groups:
            raise InputError(
                f"Expected a group column among {self.group_names}, but got {column!r}"
            )
        return self._cached_table(column).copy()

    @property
    def by_group(self) -> pd.DataFrame:
        """All groupings stacked: a ``pd.DataFrame`` indexed by (grouping, group).

        Each grouping is broken down on its own (marginally), not crossed with others.
        Empty when no groups were given.
        """
        if not self._groups:
            index = pd.MultiIndex.from_arrays([[], []], names=["column", "group"])
            return pd.DataFrame(columns=list(GROUP_COLUMNS), index=index)
        return pd.concat({name: self.by(name) for name in self._groups}, names=["column"])

    @property
    def flip_matrix(self) -> pd.DataFrame:
        """Among negative flips: old top-1 prediction (rows) -> new top-1 (columns).

        A ``pd.DataFrame`` of (weighted) counts restricted to the classes that occur; the
        row ``"(none)"`` collects old predictions of classes the new model does not have.
        """
        mask = self._cells == CELL_NEGATIVE_FLIP
        names = [*self._class_names, "(none)"]
        old = np.where(self._top1_old[mask] < 0, len(self._class_names), self._top1_old[mask])
        new = self._top1_new[mask]
        w = None if self._weight is None else self._weight[mask]
        size = len(names)
        grid = np.bincount(old * size + new, weights=w, minlength=size * size).reshape(size, size)
        rows = np.flatnonzero(grid.sum(axis=1))
        cols = np.flatnonzero(grid.sum(axis=0))
        return pd.DataFrame(
            grid[np.ix_(rows, cols)].astype(np.float64),
            index=pd.Index([names[i] for i in rows], name="old_prediction"),
            columns=pd.Index([names[i] for i in cols], name="new_prediction"),
        )

    def most_affected(self, n: int = 5, *, min_samples: int = 1) -> pd.DataFrame:
        """The groups (true classes and every user grouping) hit hardest by regressions.

        Ranked by the lower Wilson bound of the NFR, so a group needs both a high NFR and
        enough samples to make it credible; ties broken by the NFR itself.

        Args:
            n: how many groups to return.
            min_samples: leave out groups with fewer samples.

        Returns:
            A ``pd.DataFrame`` indexed by (column, group), ``column`` being ``"class"`` for
            true classes.
        """
        n = check_int("n", n, low=1)
        min_samples = check_int("min_samples", min_samples, low=0)
        tables = {"class": self.by_class, **{name: self.by(name) for name in self._groups}}
        stacked = pd.concat(tables, names=["column"])
        stacked = stacked[(stacked["n"] >= min_samples) & (stacked["negative_flips"] > 0)]
        ranked = stacked.sort_values(
            ["negative_flip_rate_low", "negative_flip_rate"], ascending=False, kind="stable"
        )
        return ranked.head(n)

    def group_max(self, metric: str = "negative_flip_rate", column: str = "class") -> float:
        """Largest value of ``metric`` over the groups of ``column`` (``"class"`` or a grouping)."""
        return float(self._table(column)[self._check_metric(metric)].max())

    def difference(self, metric: str = "negative_flip_rate", column: str = "class") -> float:
        """Largest minus smallest value of ``metric`` over the groups of ``column``."""
        values = self._table(column)[self._check_metric(metric)]
        return float(values.max() - values.min())

    def cells(self) -> np.ndarray:
        """Per-sample cell index as a new array.

        0 both wrong, 1 positive flip, 2 negative flip, 3 both correct, 4 excluded.
        """
        return self._cells.copy()

    def _table(self, column: str) -> pd.DataFrame:
        return self.by_class if column == "class" else self.by(column)

    @staticmethod
    def _check_metric(metric: str) -> str:
        allowed = ("error_rate_old", "error_rate_new", "negative_flip_rate", "positive_flip_rate")
        return check_choice("metric", metric, allowed)

    def __repr__(self) -> str:
        c = self._counts
        return (
            f"FlipFrame(n={c.n_total}, negative_flips={c.n_negative_flips},"
            f" positive_flips={c.n_positive_flips}, groups={self.group_names})"
        )
