"""The one implementation of the two-model metrics: count state, update and compute.

Every sample falls in one cell of the 2x2 table of (old right?, new right?):

=================  ===============  ================
cell               old model        new model
=================  ===============  ================
both wrong         wrong            wrong
positive flip      wrong            right
negative flip      right            wrong
both correct       right            right
=================  ===============  ================

The state is a float64 vector of sums over those cells (weighted, unweighted and of
squared weights) plus the excluded samples, so states from batches, processes or files
add up exactly (``dist_reduce_fx="sum"``). Every metric is a function of the state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from graceful.errors import InputError, UndefinedMetricWarning

if TYPE_CHECKING:
    import torch

    from ._inputs import Prepared

__all__ = [
    "CELL_BOTH_CORRECT",
    "CELL_BOTH_WRONG",
    "CELL_EXCLUDED",
    "CELL_NEGATIVE_FLIP",
    "CELL_POSITIVE_FLIP",
    "METRICS",
    "STATE_SIZE",
    "FlipCounts",
    "MetricSpec",
    "cells_from_prepared",
    "compute_all",
    "compute_metric",
    "counts_from_cells",
    "flip_state",
]

CELL_BOTH_WRONG = 0
CELL_POSITIVE_FLIP = 1
CELL_NEGATIVE_FLIP = 2
CELL_BOTH_CORRECT = 3
CELL_EXCLUDED = 4
STATE_SIZE = 14


def cells_from_prepared(prepared: Prepared) -> torch.Tensor:
    """Cell index per sample: ``2 * old_right + new_right``, or 4 when excluded.

    Example:
        >>> from graceful.metrics._inputs import prepare
        >>> cells_from_prepared(prepare([0, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1])).tolist()
        [3, 2, 1, 0]
    """
    import torch  # the metrics on arrays of cells (the command line) never load torch

    # bool -> uint8 views are free; uint8 arithmetic touches 1 byte per sample.
    cells = prepared.correct_old.view(torch.uint8) * 2 + prepared.correct_new.view(torch.uint8)
    if prepared.included is not None:
        cells = torch.where(prepared.included, cells, CELL_EXCLUDED)
    return cells


# The state as a linear function of per-batch sums, so that an update is a few reductions
# and one small matrix product, with no bincount (which reads its input's maximum back to
# size its output on CUDA). Columns: old right, new right, both right, included.
_CELLS_FROM_SUMS = (
    (-1.0, -1.0, 1.0, 1.0),  # both wrong = included - old right - new right + both right
    (0.0, 1.0, -1.0, 0.0),  # positive flips = new right - both right
    (1.0, 0.0, -1.0, 0.0),  # negative flips = old right - both right
    (0.0, 0.0, 1.0, 0.0),  # both correct
)
# Where each entry of the state stands in the (3, 5) table [weights, counts, squared
# weights] x [the four cells, excluded], read row-major.
_STATE_FROM_TABLE = (0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 4, 9)


@dataclass(frozen=True)
class _Constants:
    """The constant tensors of :func:`flip_state` on one device (made once per device)."""

    from_sums: torch.Tensor  # (14, 4): [old right, new right, both right, included] -> state
    from_three_sums: torch.Tensor  # (14, 3): the same without the included column
    per_sample: torch.Tensor  # (14,): the state of one excluded sample (times n)
    per_included_sample: torch.Tensor  # (14,): what one sample adds when all are included
    table_order: torch.Tensor  # (14,): state entries in the flattened (3, 5) weighted table


_CONSTANTS: dict[torch.device, _Constants] = {}


def _constants(device: torch.device) -> _Constants:
    found = _CONSTANTS.get(device)
    if found is None:
        import torch

        cells = torch.tensor(_CELLS_FROM_SUMS, dtype=torch.float64)
        excluded = torch.tensor([[0.0, 0.0, 0.0, -1.0]] * 2, dtype=torch.float64)
        from_sums = torch.cat([cells, cells, cells, excluded])
        per_sample = torch.zeros(STATE_SIZE, dtype=torch.float64)
        per_sample[12:] = 1.0  # every sample is excluded, less the included ones
        found = _Constants(
            from_sums=from_sums.to(device),
            from_three_sums=from_sums[:, :3].contiguous().to(device),
            per_sample=per_sample.to(device),
            per_included_sample=(per_sample + from_sums[:, 3]).to(device),
            table_order=torch.tensor(_STATE_FROM_TABLE, device=device),
        )
        _CONSTANTS[device] = found
    return found


def flip_state(prepared: Prepared) -> torch.Tensor:
    """Sum a batch into the float64 count state of length :data:`STATE_SIZE`.

    Layout: ``[0:4]`` weighted sums per cell, ``[4:8]`` sample counts per cell,
    ``[8:12]`` sums of squared weights per cell, ``[12]`` excluded weight, ``[13]``
    excluded samples. Nothing is read back to the host: the state stays on the device.

    Example:
        >>> from graceful.metrics._inputs import prepare
        >>> flip_state(prepare([0, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]))[:4].tolist()
        [1.0, 0.0, 1.0, 2.0]
    """
    import torch

    old, new, included = prepared.correct_old, prepared.correct_new, prepared.included
    n = old.shape[0]
    constants = _constants(old.device)
    if prepared.weight is not None:
        # Weighted sums per cell straight from the cells, never differences of sums (which
        # could leave a rounding residue in an empty cell); scatter_add_ into a fixed size,
        # unlike bincount, needs no look at the data to size its output.
        cells = cells_from_prepared(prepared).long()
        w = prepared.weight
        table = [w.new_zeros(5).scatter_add_(0, cells, v) for v in (w, torch.ones_like(w), w * w)]
        return torch.cat(table)[constants.table_order]
    # Unweighted: three (four) counts and one small product give the whole state.
    if included is not None:
        old, new = old & included, new & included
    counts = [old.count_nonzero(), new.count_nonzero(), (old & new).count_nonzero()]
    if included is None:
        sums = torch.stack(counts).double()
        return torch.addmv(constants.per_included_sample, constants.from_three_sums, sums, beta=n)
    sums = torch.stack([*counts, included.count_nonzero()]).double()
    return torch.addmv(constants.per_sample, constants.from_sums, sums, beta=n)


def counts_from_cells(cells: np.ndarray, weight: np.ndarray | None = None) -> FlipCounts:
    """The :class:`FlipCounts` of per-sample cells (NumPy; no torch).

    ``cells`` holds each sample's cell (0 both wrong, 1 positive flip, 2 negative flip,
    3 both correct, 4 excluded), as :func:`cells_from_prepared` gives them; ``weight`` is
    an optional ``(N,)`` weight per sample. The same table as :func:`flip_state` of the
    inputs the cells come from.

    Example:
        >>> c = counts_from_cells(np.array([3, 2, 1, 0, 4, 3]))
        >>> c.both_correct, c.negative_flips, c.n_excluded
        (2.0, 1.0, 1)
    """
    codes = np.asarray(cells).astype(np.intp, copy=False).ravel()
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) > CELL_EXCLUDED):
        raise InputError(
            f"Expected argument `cells` to hold cell indices 0..{CELL_EXCLUDED}, but got values "
            f"from {int(codes.min())} to {int(codes.max())}"
        )
    n = np.bincount(codes, minlength=5).astype(np.float64)
    if weight is None:
        w = sq = n
    else:
        weight = np.asarray(weight, dtype=np.float64).ravel()
        if weight.shape != codes.shape:
            raise InputError(
                f"Expected argument `weight` to have {codes.size} values like `cells`, but got "
                f"{weight.size}"
            )
        w = np.bincount(codes, weights=weight, minlength=5).astype(np.float64)
        sq = np.bincount(codes, weights=weight * weight, minlength=5).astype(np.float64)
    table = np.concatenate([w, n, sq])  # (3, 5) [weights, counts, squares] x cells, row-major
    return FlipCounts.from_state(table[list(_STATE_FROM_TABLE)])


@dataclass(frozen=True)
class FlipCounts:
    """The 2x2 table of old/new correctness, weighted, plus excluded samples.

    Attributes hold weighted sums (plain counts when there are no weights); ``n_*`` hold
    sample counts, and ``sq_*`` sums of squared weights (for effective sample sizes).

    Example:
        >>> c = FlipCounts.from_state(np.array([1., 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 0, 0]))
        >>> c.negative_flips, c.total, c.old_correct, c.new_wrong
        (3.0, 10.0, 7.0, 4.0)
    """

    both_wrong: float
    positive_flips: float
    negative_flips: float
    both_correct: float
    n_both_wrong: int
    n_positive_flips: int
    n_negative_flips: int
    n_both_correct: int
    sq_both_wrong: float
    sq_positive_flips: float
    sq_negative_flips: float
    sq_both_correct: float
    excluded: float = 0.0
    n_excluded: int = 0

    @classmethod
    def from_state(cls, state: torch.Tensor | np.ndarray) -> FlipCounts:
        """Build from a count-state vector (see :func:`flip_state`); fields follow its layout."""
        values = [float(v) for v in (state.tolist() if hasattr(state, "tolist") else state)]
        if len(values) != STATE_SIZE:
            raise InputError(
                f"Expected a count state of length {STATE_SIZE}, but got {len(values)}"
            )
        counts = [round(v) for v in (*values[4:8], values[13])]
        in_order: list[Any] = [*values[0:4], *counts[:4], *values[8:13], counts[4]]
        return cls(**dict(zip((f.name for f in fields(cls)), in_order, strict=True)))

    def to_state(self) -> torch.Tensor:
        """The float64 count-state vector (inverse of :meth:`from_state`)."""
        import torch

        return torch.tensor([float(v) for v in astuple(self)], dtype=torch.float64)

    def __add__(self, other: FlipCounts) -> FlipCounts:
        """Merge two tables (e.g. two batches or two shards)."""
        return FlipCounts.from_state(np.add(astuple(self), astuple(other)))

    @property
    def total(self) -> float:
        """Weight of the compared (not excluded) samples."""
        return self.both_wrong + self.positive_flips + self.negative_flips + self.both_correct

    @property
    def n_total(self) -> int:
        """Number of compared samples."""
        return (
            self.n_both_wrong + self.n_positive_flips + self.n_negative_flips + self.n_both_correct
        )

    @property
    def old_correct(self) -> float:
        """Weight of samples the old model gets right."""
        return self.negative_flips + self.both_correct

    @property
    def old_wrong(self) -> float:
        """Weight of samples the old model gets wrong."""
        return self.positive_flips + self.both_wrong

    @property
    def new_correct(self) -> float:
        """Weight of samples the new model gets right."""
        return self.positive_flips + self.both_correct

    @property
    def new_wrong(self) -> float:
        """Weight of samples the new model gets wrong."""
        return self.negative_flips + self.both_wrong


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is computed from :class:`FlipCounts`, and how to read it.

    ``cells`` lists the cells of the numerator and of the denominator, which is what the
    confidence intervals need; ``relative_negative_flip_rate`` is not a simple ratio and
    has ``cells=None``.
    """

    name: str
    formula: str
    description: str
    higher_is_better: bool
    value: Callable[[FlipCounts], tuple[float, float]]
    cells: tuple[tuple[int, ...], tuple[int, ...]] | None


def _cells(counts: FlipCounts, cells: tuple[int, ...]) -> float:
    by_cell = (counts.both_wrong, counts.positive_flips, counts.negative_flips, counts.both_correct)
    return float(sum(by_cell[c] for c in cells))


def _ratio_spec(
    name: str,
    formula: str,
    description: str,
    higher_is_better: bool,
    num: tuple[int, ...],
    den: tuple[int, ...],
) -> MetricSpec:
    return MetricSpec(
        name=name,
        formula=formula,
        description=description,
        higher_is_better=higher_is_better,
        value=lambda c: (_cells(c, num), _cells(c, den)),
        cells=(num, den),
    )


_ALL = (CELL_BOTH_WRONG, CELL_POSITIVE_FLIP, CELL_NEGATIVE_FLIP, CELL_BOTH_CORRECT)
_BW, _PF, _NF, _BC = _ALL


def _relative_nfr(c: FlipCounts) -> tuple[float, float]:
    # NFR / ((1 - ER_old) * ER_new) = (nf / N) / ((old_correct / N) * (new_wrong / N))
    return c.negative_flips * c.total, c.old_correct * c.new_wrong


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        _ratio_spec(
            "error_rate_old", "old wrong / N", "errors of the old model", False, (_BW, _PF), _ALL
        ),
        _ratio_spec(
            "error_rate_new", "new wrong / N", "errors of the new model", False, (_BW, _NF), _ALL
        ),
        _ratio_spec(
            "negative_flip_rate",
            "old right and new wrong / N",
            "regressions: samples the update breaks",
            False,
            (_NF,),
            _ALL,
        ),
        _ratio_spec(
            "positive_flip_rate",
            "old wrong and new right / N",
            "samples the update fixes",
            True,
            (_PF,),
            _ALL,
        ),
        _ratio_spec(
            "negative_flip_impact",
            "negative flips / new wrong",
            "share of the new model's errors that are new",
            False,
            (_NF,),
            (_NF, _BW),
        ),
        _ratio_spec(
            "positive_flip_impact",
            "positive flips / old wrong",
            "share of the old model's errors that the update fixes",
            True,
            (_PF,),
            (_PF, _BW),
        ),
        MetricSpec(
            name="relative_negative_flip_rate",
            formula="NFR / ((1 - ER_old) * ER_new)",
            description="NFR relative to independent errors (1 = no better than chance)",
            higher_is_better=False,
            value=_relative_nfr,
            cells=None,
        ),
        _ratio_spec(
            "backward_trust_compatibility",
            "both right / old right",
            "share of the old model's right answers the new one keeps",
            True,
            (_BC,),
            (_BC, _NF),
        ),
        _ratio_spec(
            "backward_error_compatibility",
            "both wrong / new wrong",
            "share of the new model's errors the old one made too",
            True,
            (_BW,),
            (_BW, _NF),
        ),
    )
}


def compute_metric(counts: FlipCounts, name: str, *, warn: bool = True) -> float:
    """Value of metric ``name``; NaN with an :class:`UndefinedMetricWarning` if undefined.

    Example:
        >>> c = FlipCounts.from_state(np.array([1., 2, 3, 4] * 3 + [0, 0]))
        >>> compute_metric(c, "negative_flip_rate")
        0.3
    """
    try:
        spec = METRICS[name]
    except KeyError:
        raise InputError(
            f"Expected argument `name` to be one of {sorted(METRICS)}, but got {name!r}"
        ) from None
    num, den = spec.value(counts)
    if den == 0:
        if warn:
            warnings.warn(
                f"{name} is undefined ({spec.formula} has a zero denominator); returning NaN",
                UndefinedMetricWarning,
                stacklevel=3,
            )
        return math.nan
    return num / den


def compute_all(counts: FlipCounts, *, warn: bool = True) -> dict[str, float]:
    """Every metric of :data:`METRICS`, in a fixed order.

    Example:
        >>> c = FlipCounts.from_state(np.array([1., 2, 3, 4] * 3 + [0, 0]))
        >>> round(compute_all(c)["backward_trust_compatibility"], 4)
        0.5714
    """
    return {name: compute_metric(counts, name, warn=warn) for name in METRICS}
