r"""Compare a chain of model versions :math:`v_1 \to v_2 \to \dots \to v_V` on the items they share.

:func:`compare_chain` reads (or takes) the consecutive comparisons
:math:`(v_1, v_2), (v_2, v_3), \dots` and returns a :class:`ChainComparison`: a full
:class:`~graceful.release.Comparison` for every pair :math:`i < j` (the flips of each version
against every earlier one), each version's error rate, the errors a version re-introduces,
and the gate over the chain. ``graceful compare v1 v2 v3 ...`` runs it.

Items. Only the items compared in *every* consecutive comparison are compared, so that every
pair is measured on the same items and an item's history is complete: an item of some
versions only, or one that a comparison excludes (for evaluation logs: changed between two
runs, errored, of a task missing from a run), is left out of the whole chain and counted
(:attr:`ChainComparison.n_excluded`).

Re-introduced errors. For version :math:`v_k` with :math:`k \ge 3`, with :math:`c_i(x)` whether
:math:`v_i` is right on item :math:`x`,

.. math::

    R_k = \{x : \neg c_k(x) \wedge c_{k-1}(x) \wedge \exists\, i < k-1: \neg c_i(x)\},

the items :math:`v_k` gets wrong that its predecessor got right and some earlier version
also got wrong: an old error that was fixed and is back. :math:`R_k` is a subset of the
negative flips of :math:`v_{k-1} \to v_k`; the chain reports :math:`|R_k|`, the rate
:math:`|R_k| / n` with its interval, and the share :math:`|R_k| / NF_{k-1,k}` of that step's
negative flips.

The gate. The bars of :class:`~graceful.release.Gate` apply to each consecutive pair
:math:`(v_{k-1}, v_k)`, and with ``gate_against_first=True`` also to every
:math:`(v_1, v_k)`; the chain passes when every gated pair passes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from graceful._validation import check_bool, check_choice, check_instance
from graceful.errors import InputError
from graceful.metrics import exact_interval, wilson_interval

from .compare import Comparison, _clean, compare
from .gate import Gate

if TYPE_CHECKING:
    from graceful.io.eval_logs import EvalLogInputs
    from graceful.io.predictions import ComparisonInputs

__all__ = ["ChainComparison", "compare_chain", "version_kind"]

_FORMATS = ("auto", "predictions", "lm-eval", "inspect", "helm", "table")
_DESCRIBED = {
    "predictions": "a prediction file",
    "lm-eval": "an lm-evaluation-harness samples log",
    "inspect": "an Inspect log",
    "helm": "a HELM run folder",
}


@dataclass(frozen=True)
class ChainComparison:
    r"""Every pair of a chain of versions, on the items common to all of them.

    Versions are numbered from 0 in this object (``pair(0, 1)`` is :math:`v_1 \to v_2` of
    the module docs).

    Attributes:
        names: a short name per version (the file's name, or as given).
        paths: the file or folder of each version (``None`` for inputs given as objects).
        ids: ``(n,)`` the compared items, in the last version's order.
        correct: ``(n, V)`` bool, whether each version is right on each item.
        pairs: ``(i, j) -> Comparison`` for every ``i < j``; a gated pair's
            :attr:`Comparison.gate` holds its verdict.
        gated: the pairs the gate was applied to, consecutive pairs first.
        gate_against_first: whether every version was also gated against the first.
        n_excluded: items read in some version but not compared in the chain (in no
            version, in some versions only, or excluded by a comparison).
        format: ``"predictions"`` or the evaluation-log format.
    """

    names: tuple[str, ...]
    paths: tuple[str | None, ...]
    ids: np.ndarray[Any, Any]
    correct: np.ndarray[Any, np.dtype[np.bool_]]
    pairs: dict[tuple[int, int], Comparison]
    gated: tuple[tuple[int, int], ...]
    gate_against_first: bool
    n_excluded: int
    format: str

    @property
    def n_versions(self) -> int:
        """The number of versions ``V``."""
        return len(self.names)

    @property
    def steps(self) -> tuple[Comparison, ...]:
        """The consecutive comparisons ``(0, 1), (1, 2), ...``."""
        return tuple(self.pairs[(k - 1, k)] for k in range(1, self.n_versions))

    def pair(self, old: int, new: int) -> Comparison:
        """The comparison of version ``old`` with the later version ``new``."""
        if (old, new) not in self.pairs:
            raise InputError(
                f"Expected versions `old` < `new` in [0, {self.n_versions}), but got "
                f"old={old!r}, new={new!r}"
            )
        return self.pairs[(old, new)]

    @property
    def passed(self) -> bool:
        """True when every gated pair passes (and when no gate was set)."""
        return all(self.pairs[p].passed for p in self.gated)

    @property
    def gate_configured(self) -> bool:
        """True when a gate was applied."""
        return bool(self.gated)

    def error_rates(self) -> pd.DataFrame:
        """Each version's error rate on the compared items, with its interval.

        Returns:
            A ``pd.DataFrame`` indexed by version (0..V-1): ``name``, ``n``, ``errors``,
            ``error_rate``, ``error_rate_low``, ``error_rate_high`` (the intervals of the
            comparisons, from ``pair(0, 1)`` for the first version and ``pair(k-1, k)``
            for version ``k``).
        """
        rows = []
        for v in range(self.n_versions):
            side = "old" if v == 0 else "new"
            comparison = self.pairs[(0, 1)] if v == 0 else self.pairs[(v - 1, v)]
            iv = comparison.intervals[f"error_rate_{side}"]
            rows.append(
                {
                    "name": self.names[v],
                    "n": len(self.ids),
                    "errors": int((~self.correct[:, v]).sum()),
                    "error_rate": iv.value,
                    "error_rate_low": iv.low,
                    "error_rate_high": iv.high,
                }
            )
        return pd.DataFrame(rows, index=pd.RangeIndex(self.n_versions, name="version"))

    def flip_table(self) -> pd.DataFrame:
        """The flips of every version against every earlier one, with intervals.

        Returns:
            A ``pd.DataFrame`` with one row per pair ``old < new`` (by ``old``, then
            ``new``): ``old``, ``new``, ``old_name``, ``new_name``, ``consecutive``, ``n``,
            ``negative_flips``, ``negative_flip_rate`` (with ``_low``, ``_high``),
            ``positive_flips``, ``positive_flip_rate`` (with ``_low``, ``_high``),
            ``relative_negative_flip_rate``, ``mcnemar_p_value``, ``gated`` and
            ``gate_passed`` (``None`` for a pair not gated).
        """
        rows = []
        for (i, j), c in sorted(self.pairs.items()):
            counts = c.frame.counts
            nfr, pfr = c.intervals["negative_flip_rate"], c.intervals["positive_flip_rate"]
            rows.append(
                {
                    "old": i,
                    "new": j,
                    "old_name": self.names[i],
                    "new_name": self.names[j],
                    "consecutive": j == i + 1,
                    "n": counts.n_total,
                    "negative_flips": counts.n_negative_flips,
                    "negative_flip_rate": nfr.value,
                    "negative_flip_rate_low": nfr.low,
                    "negative_flip_rate_high": nfr.high,
                    "positive_flips": counts.n_positive_flips,
                    "positive_flip_rate": pfr.value,
                    "positive_flip_rate_low": pfr.low,
                    "positive_flip_rate_high": pfr.high,
                    "relative_negative_flip_rate": c.intervals["relative_negative_flip_rate"].value,
                    "mcnemar_p_value": c.mcnemar.p_value,
                    "gated": (i, j) in self.gated,
                    "gate_passed": c.passed if (i, j) in self.gated else None,
                }
            )
        return pd.DataFrame(rows)

    def matrix(self, metric: str = "negative_flip_rate") -> pd.DataFrame:
        """One metric of every pair as a square table: old versions in rows, new in columns.

        Args:
            metric: a metric of :attr:`Comparison.metrics` (default the NFR).

        Returns:
            A ``(V, V)`` ``pd.DataFrame`` indexed and labelled by :attr:`names`, NaN on and
            below the diagonal.
        """
        out = np.full((self.n_versions, self.n_versions), np.nan)
        for (i, j), c in self.pairs.items():
            if metric not in c.metrics:
                raise InputError(
                    f"Expected argument `metric` to be one of {sorted(c.metrics)}, "
                    f"but got {metric!r}"
                )
            out[i, j] = c.metrics[metric]
        return pd.DataFrame(out, index=list(self.names), columns=list(self.names))

    def reintroduced(self) -> pd.DataFrame:
        r"""The errors each version re-introduces (see the module docs for :math:`R_k`).

        Returns:
            A ``pd.DataFrame`` indexed by version (2..V-1, 0-based): ``name``, ``count``
            :math:`|R_k|`, ``rate`` :math:`|R_k|/n` with ``rate_low`` and ``rate_high``
            (the comparisons' interval method and level), ``negative_flips`` (of the
            step from the previous version) and ``share_of_negative_flips``
            (:math:`|R_k| / NF`, NaN without negative flips).
        """
        c = self.correct
        n = len(self.ids)
        step = self.pairs[(0, 1)]
        bounds = exact_interval if step.interval_method == "exact" else wilson_interval
        rows = []
        for k in range(2, self.n_versions):
            earlier_wrong = (~c[:, : k - 1]).any(axis=1)
            back = ~c[:, k] & c[:, k - 1] & earlier_wrong
            count = int(back.sum())
            nf = int((~c[:, k] & c[:, k - 1]).sum())
            low, high = bounds(count, n, confidence=step.confidence)
            rows.append(
                {
                    "name": self.names[k],
                    "count": count,
                    "rate": count / n,
                    "rate_low": low,
                    "rate_high": high,
                    "negative_flips": nf,
                    "share_of_negative_flips": count / nf if nf else float("nan"),
                }
            )
        columns = [
            "name",
            "count",
            "rate",
            "rate_low",
            "rate_high",
            "negative_flips",
            "share_of_negative_flips",
        ]
        return pd.DataFrame(
            rows, columns=columns, index=pd.RangeIndex(2, self.n_versions, name="version")
        )

    def gate_summary(self) -> dict[str, Any] | None:
        """The chain's verdict as ``summary["gate"]`` holds it, or ``None`` without a gate.

        Returns:
            ``{"passed", "against_first", "pairs": [{"old", "new", "passed"}], "checks"}``
            where ``checks`` is every gated pair's checks (as
            :meth:`~graceful.release.GateResult.as_dict` writes them), each with ``old``,
            ``new`` and ``pair`` (``"<old name> → <new name>"``).
        """
        if not self.gated:
            return None
        checks: list[dict[str, Any]] = []
        pairs = []
        for i, j in self.gated:
            result = self.pairs[(i, j)].gate
            if result is None:  # pragma: no cover - every gated pair holds its verdict
                continue
            pairs.append({"old": i, "new": j, "passed": result.passed})
            label = f"{self.names[i]} → {self.names[j]}"
            checks.extend(
                {**check, "old": i, "new": j, "pair": label} for check in result.as_dict()["checks"]
            )
        return {
            "passed": self.passed,
            "against_first": self.gate_against_first,
            "pairs": pairs,
            "checks": checks,
        }

    def summary(
        self,
        *,
        max_examples: int = 500,
        labels: str | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        """The JSON-able summary ``graceful compare v1 v2 v3 ...`` writes and the report renders.

        The sections of a two-version summary describe the last step, the comparison of
        the last version with its predecessor (its paths in ``inputs``, its flipped
        examples, its per-group and, for evaluation logs, per-task tables); ``gate`` is
        the chain's verdict (:meth:`gate_summary`); ``versions`` is the chain: ``names``,
        ``paths``, ``n_compared``, ``n_excluded``, ``items`` (the rule, in words),
        ``headline`` (the pair the other sections describe), ``error_rates``, ``pairs``
        (:meth:`flip_table`), ``reintroduced`` (:meth:`reintroduced`), ``gate``.

        Args:
            max_examples: cap on the flipped-example rows of the last step.
            labels: the labels file, for the record.
            title: page title; defaults to the names joined by ``" -> "``.
        """
        last = self.n_versions - 1
        summary = self.pairs[(last - 1, last)].summary(
            max_examples=max_examples,
            paths={"old": self.paths[last - 1], "new": self.paths[last], "labels": labels},
            title=title or " -> ".join(self.names),
        )
        gate = self.gate_summary()
        summary["gate"] = gate
        reintroduced = self.reintroduced()
        summary["versions"] = {
            "names": list(self.names),
            "paths": list(self.paths),
            "format": self.format,
            "n_compared": len(self.ids),
            "n_excluded": self.n_excluded,
            "items": "the items compared in every consecutive comparison",
            "headline": {"old": last - 1, "new": last},
            "error_rates": [
                {"version": int(v), **row}
                for v, row in zip(
                    range(self.n_versions), self.error_rates().to_dict("records"), strict=True
                )
            ],
            "pairs": self.flip_table().to_dict("records"),
            "reintroduced": [
                {"version": int(v), **row}
                for v, row in zip(reintroduced.index, reintroduced.to_dict("records"), strict=True)
            ],
            "gate": gate,
        }
        return dict(_clean(summary))


# -- building the chain ------------------------------------------------------------------------


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def _name(path: str) -> str:
    return os.path.basename(os.path.normpath(path)) or path


def _detect(path: str) -> str:
    from graceful.io.eval_logs import detect_eval_log

    return detect_eval_log(path) or "predictions"


def version_kind(
    paths: Sequence[str | os.PathLike[str]],
    format: Literal["auto", "predictions", "lm-eval", "inspect", "helm", "table"] = "auto",
) -> str:
    r"""What a chain's files are: ``"predictions"`` or an evaluation-log format.

    Args:
        paths: the versions' files or folders.
        format: as in :func:`compare_chain`; anything but ``"auto"`` is returned as it is
            (the readers check each file against it).

    Raises:
        InputError: a missing file (naming it and its place in the chain), or, with
            ``"auto"``, versions of different kinds (a prediction file and a log, or logs
            of two formats).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a.csv").write_text("id,pred\n1,0\n")
        >>> version_kind([d / "a.csv", d / "a.csv"])
        'predictions'
        >>> version_kind([d / "a.csv", d / "b.csv"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: version 2 (.../b.csv): no such file or folder
    """
    check_choice("format", format, _FORMATS)
    names = [os.fspath(p) for p in paths]
    for k, path in enumerate(names, start=1):
        if not os.path.exists(path):
            raise InputError(f"version {k} ({path}): no such file or folder")
    if format != "auto":
        return format
    kinds = [_detect(p) for p in names]
    for k, (path, kind) in enumerate(zip(names, kinds, strict=True)):
        if kind != kinds[0]:
            raise InputError(
                f"versions of different kinds: {names[0]} is {_DESCRIBED[kinds[0]]} but "
                f"{path} (version {k + 1}) is {_DESCRIBED[kind]}; every version must be "
                "of one kind"
            )
    return kinds[0]


def _read_pairs(
    paths: Sequence[str], fmt: str, top_k: int, options: dict[str, Any]
) -> tuple[str, list[ComparisonInputs], list[EvalLogInputs] | None]:
    """Read the consecutive pairs of files: prediction files or evaluation logs."""
    fmt = version_kind(paths, fmt)  # type: ignore[arg-type]
    if fmt == "predictions":
        from graceful.io.predictions import load_comparison

        if options.get("class_map") is not None:
            raise InputError(
                "class_map (--class-map) applies to two versions; a chain needs one class space"
            )
        for option in ("metric", "score_threshold", "task_col"):
            if options.get(option) is not None:
                raise InputError(
                    f"{option} applies to evaluation logs, but {paths[0]} ... are read as "
                    "predictions"
                )
            options.pop(option, None)
        pairs = [
            load_comparison(paths[k - 1], paths[k], top_k=top_k, **options)
            for k in range(1, len(paths))
        ]
        return "predictions", pairs, None
    from graceful.io.eval_logs import load_eval_comparison

    if top_k != 1:
        raise InputError("top_k applies to prediction files, not to evaluation logs")
    logs = [
        load_eval_comparison(paths[k - 1], paths[k], format=fmt, **options)  # type: ignore[arg-type]
        for k in range(1, len(paths))
    ]
    return logs[-1].new.format, [p.inputs for p in logs], logs


def _check_metrics(logs: Sequence[EvalLogInputs]) -> None:
    """A version compared with its predecessor and its successor is judged by one rule."""
    for k in range(1, len(logs)):
        before, after = logs[k - 1].tasks["metric"], logs[k].tasks["metric"]
        for task in before.index.intersection(after.index):
            if before[task] != after[task]:
                raise InputError(
                    f"{logs[k].old.path}: task {task!r} is compared on {before[task]!r} against "
                    f"{logs[k - 1].old.path} but on {after[task]!r} against {logs[k].new.path}; "
                    "name the metric (metric=, --metric)"
                )


def _space(
    pairs: Sequence[ComparisonInputs],
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """One class space for every pair: the names, and each pair's old and new code maps."""
    names: list[str] = []
    codes: dict[str, int] = {}

    def encode(labels: Sequence[str]) -> np.ndarray:
        for label in labels:
            if label not in codes:
                codes[label] = len(names)
                names.append(label)
        return np.asarray([codes[x] for x in labels], dtype=np.int64)

    new_maps: list[np.ndarray] = [np.empty(0, np.int64)] * len(pairs)
    for k in reversed(range(len(pairs))):  # the last step's classes come first
        new_maps[k] = encode(pairs[k].class_names)
    old_maps = [encode(p.old_class_names) for p in pairs]
    return names, old_maps, new_maps


def _chain(
    pairs: Sequence[ComparisonInputs],
    logs: Sequence[EvalLogInputs] | None,
    *,
    names: tuple[str, ...],
    paths: tuple[str | None, ...],
    fmt: str,
    gate: Gate | None,
    gate_against_first: bool,
    top_k: int,
    options: dict[str, Any],
) -> ChainComparison:
    for k, p in enumerate(pairs, start=1):
        if p.class_map is not None:
            raise InputError(
                f"comparison {k} ({names[k - 1]} -> {names[k]}) maps old classes to new ones "
                "(class_map); a chain needs one class space"
            )
        if p.top_k < top_k:
            raise InputError(
                f"Expected argument `top_k` to be at most the {p.top_k} ranked predictions of "
                f"comparison {k}, but got {top_k}"
            )
    if logs is not None:
        _check_metrics(logs)
    # The items of every comparison, in the last one's order.
    last = pd.Index(pairs[-1].ids)
    indexers = [pd.Index(p.ids).get_indexer(last) for p in pairs]
    keep = np.logical_and.reduce([ix >= 0 for ix in indexers])
    if not keep.any():
        raise InputError(
            f"no item is compared in every consecutive comparison of {' -> '.join(names)}"
        )
    rows = [ix[keep] for ix in indexers]
    ids = pairs[-1].ids[keep]
    if logs is not None:
        seen: set[Any] = set()
        for log in logs:
            for run in (log.old, log.new):
                tasks, keys = run.items["task"], run.items["key"]
                seen.update(f"{t}:{k}" for t, k in zip(tasks, keys, strict=True))
        n_excluded = len(seen) - len(ids)
    else:
        n_excluded = len(set().union(*(set(p.ids.tolist()) for p in pairs))) - len(ids)

    space, old_maps, new_maps = _space(pairs)
    target = [new_maps[k][p.target[rows[k]]] for k, p in enumerate(pairs)]
    for k in range(1, len(pairs)):
        differ = target[k] != target[0]
        if differ.any():
            at = ids[int(np.flatnonzero(differ)[0])]
            raise InputError(
                f"labels disagree: comparison 1 ({names[0]} -> {names[1]}) and comparison "
                f"{k + 1} ({names[k]} -> {names[k + 1]}) have different labels at id {at!r}"
            )
    # Each version's ranked predictions and confidence: the first from its comparison with
    # the second, every other one from its comparison with its predecessor.
    topk = [old_maps[0][pairs[0].old_topk[rows[0]]]]
    confidence = [None if pairs[0].old_confidence is None else pairs[0].old_confidence[rows[0]]]
    n_rows = [pairs[0].n_rows_old]
    scores = [pairs[0].old_scores]
    for k, p in enumerate(pairs):
        topk.append(new_maps[k][p.new_topk[rows[k]]])
        confidence.append(None if p.new_confidence is None else p.new_confidence[rows[k]])
        n_rows.append(p.n_rows_new)
        scores.append(p.new_scores)
    for k in range(1, len(pairs)):
        # the same version seen from both of its comparisons
        seen_new, seen_old = topk[k], old_maps[k][pairs[k].old_topk[rows[k]]]
        width = min(seen_new.shape[1], seen_old.shape[1], top_k)
        differ = (seen_new[:, :width] != seen_old[:, :width]).any(axis=1)
        if differ.any():
            at = ids[int(np.flatnonzero(differ)[0])]
            raise InputError(
                f"comparisons {k} and {k + 1} do not chain: the new model of {names[k - 1]} -> "
                f"{names[k]} is not the old model of {names[k]} -> {names[k + 1]} (they "
                f"differ at id {at!r})"
            )
    groups = {g: values[rows[-1]] for g, values in pairs[-1].groups.items()}
    correct = np.stack([(t[:, :top_k] == target[0][:, None]).any(axis=1) for t in topk], axis=1)

    steps = range(1, len(names))
    gated: list[tuple[int, int]] = []
    if gate is not None and gate.configured:
        gated = [(k - 1, k) for k in steps]
        if gate_against_first:
            gated += [(0, k) for k in range(2, len(names))]
    from graceful.io.predictions import ComparisonInputs

    comparisons: dict[tuple[int, int], Comparison] = {}
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            inputs = ComparisonInputs(
                ids=ids,
                id_source=pairs[-1].id_source,
                target=target[0],
                old_topk=topk[i],
                new_topk=topk[j],
                old_confidence=confidence[i],
                new_confidence=confidence[j],
                class_names=list(space),
                old_class_names=list(space),
                class_map=None,
                groups=groups,
                n_rows_old=n_rows[i],
                n_rows_new=n_rows[j],
                old_scores=scores[i],
                new_scores=scores[j],
            )
            result = compare(inputs, top_k=top_k, gate=gate if (i, j) in gated else None, **options)
            if logs is not None and j == i + 1:
                result = replace(result, eval_logs=logs[i].restricted(rows[i]))
            comparisons[(i, j)] = result
    return ChainComparison(
        names=names,
        paths=paths,
        ids=ids,
        correct=correct,
        pairs=comparisons,
        gated=tuple(gated),
        gate_against_first=gate_against_first,
        n_excluded=int(n_excluded),
        format=fmt,
    )


def compare_chain(
    versions: Sequence[str | os.PathLike[str]] | Sequence[ComparisonInputs | EvalLogInputs],
    *,
    names: Sequence[str] | None = None,
    format: Literal["auto", "predictions", "lm-eval", "inspect", "helm", "table"] = "auto",
    gate: Gate | None = None,
    gate_against_first: bool = False,
    top_k: int = 1,
    confidence: float = 0.95,
    interval_method: Literal["wilson", "exact"] = "wilson",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    random_state: int = 0,
    **read_options: Any,
) -> ChainComparison:
    r"""Compare a chain of model versions: every pair, the errors re-introduced, one gate.

    Args:
        versions: the versions' files or folders, oldest first (at least two, all prediction
            files or all evaluation logs of one format); or the consecutive comparisons
            ``[(v1, v2), (v2, v3), ...]`` as :class:`~graceful.io.predictions.ComparisonInputs`
            (from :func:`~graceful.io.predictions.load_comparison`) or
            :class:`~graceful.io.eval_logs.EvalLogInputs` (from
            :func:`~graceful.io.eval_logs.load_eval_comparison`), at least one; the new
            model of each must be the old model of the next.
        names: a short name per version (default: the file names, else ``v1``, ``v2``, ...).
        format: for files: ``"predictions"``, an evaluation-log format of
            :data:`graceful.io.eval_logs.EVAL_LOG_FORMATS`, or ``"auto"`` (evaluation logs
            when detected, else prediction files; every version must be of one kind).
        gate: release bars, applied to every consecutive pair.
        gate_against_first: also apply ``gate`` to the first version and each later one.
        top_k: a model is right when the target is among its ``top_k`` classes
            (prediction files only).
        confidence: level of every interval, as in :func:`~graceful.release.compare`.
        interval_method: ``"wilson"`` or ``"exact"`` for the rates (and the re-introduced
            errors' rate).
        alpha: significance level of McNemar's test, for every pair.
        n_resamples: bootstrap resamples for each pair's relative NFR interval.
        random_state: bootstrap seed (the same for every pair).
        read_options: for files, the options of
            :func:`~graceful.io.predictions.load_comparison` (``labels``, ``id_col``,
            ``group_cols``, ...) or of :func:`~graceful.io.eval_logs.load_eval_comparison`
            (``metric``, ``score_threshold``, ``id_col``, ``task_col``); unknown names are
            a ``TypeError``.

    Returns:
        A :class:`ChainComparison`.

    Raises:
        InputError: fewer than two versions, a missing file (naming it and its place),
            versions of different kinds or formats, comparisons that do not chain, labels
            that disagree, no item common to every comparison, and every error of the
            readers.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> label = [0, 1, 0, 1, 0, 1]
        >>> for name, pred in (("v1", [0, 1, 1, 1, 0, 0]), ("v2", [0, 1, 0, 0, 0, 1]),
        ...                    ("v3", [1, 1, 1, 1, 0, 0])):
        ...     pd.DataFrame({"id": range(6), "label": label, "pred": pred}).to_csv(
        ...         d / f"{name}.csv", index=False)
        >>> chain = compare_chain([d / "v1.csv", d / "v2.csv", d / "v3.csv"],
        ...                       gate=Gate(max_nfr=0.2))
        >>> chain.matrix().round(3).values.tolist()
        [[nan, 0.167, 0.167], [nan, nan, 0.5], [nan, nan, nan]]
        >>> chain.reintroduced()[["name", "count", "negative_flips"]].values.tolist()
        [['v3.csv', 2, 3]]
        >>> chain.passed, [p["passed"] for p in chain.gate_summary()["pairs"]]
        (False, [True, False])
    """
    check_choice("format", format, _FORMATS)
    check_bool("gate_against_first", gate_against_first)
    if gate is not None:
        check_instance("gate", gate, Gate, "a Gate")
    if isinstance(versions, (str, os.PathLike)) or not isinstance(versions, Sequence):
        raise InputError(
            f"Expected argument `versions` to be a sequence of files or comparisons, but got "
            f"{type(versions).__name__}"
        )
    items = list(versions)
    options = {
        "confidence": confidence,
        "interval_method": interval_method,
        "alpha": alpha,
        "n_resamples": n_resamples,
        "random_state": random_state,
    }
    from graceful.io.eval_logs import EvalLogInputs
    from graceful.io.predictions import ComparisonInputs

    if items and all(_is_path(v) for v in items):
        if len(items) < 2:
            raise InputError(
                f"Expected argument `versions` to hold at least 2 versions, but got "
                f"{len(items)}: {', '.join(map(str, items))}"
            )
        paths = tuple(os.fspath(v) for v in items)  # type: ignore[arg-type]
        fmt, pairs, logs = _read_pairs(paths, format, top_k, dict(read_options))
        count = len(paths)
        stored: tuple[str | None, ...] = paths
        default = tuple(_name(p) for p in paths)
    elif items and all(isinstance(v, (ComparisonInputs, EvalLogInputs)) for v in items):
        if read_options or format != "auto":
            given = sorted(read_options) + (["format"] if format != "auto" else [])
            raise InputError(
                f"{', '.join(given)}: options for reading files, but `versions` holds "
                "comparisons already read"
            )
        if len({type(v) for v in items}) > 1:
            raise InputError(
                "Expected argument `versions` to hold comparisons of one kind "
                "(ComparisonInputs or EvalLogInputs), but got both"
            )
        logs = [v for v in items if isinstance(v, EvalLogInputs)] or None
        pairs = [
            v.inputs if isinstance(v, EvalLogInputs) else v
            for v in items
            if isinstance(v, (ComparisonInputs, EvalLogInputs))
        ]
        fmt = logs[-1].new.format if logs else "predictions"
        count = len(items) + 1
        stored = (None,) * count
        default = tuple(f"v{k}" for k in range(1, count + 1))
    else:
        kinds = sorted({type(v).__name__ for v in items}) or ["nothing"]
        raise InputError(
            "Expected argument `versions` to hold files (at least 2) or consecutive "
            f"comparisons (ComparisonInputs or EvalLogInputs), but got {', '.join(kinds)}"
        )
    if names is None:
        chosen = default
    else:
        chosen = tuple(str(n) for n in names)
        if len(chosen) != count or len(set(chosen)) != count:
            raise InputError(
                f"Expected argument `names` to give {count} distinct names, one per version, "
                f"but got {list(names)!r}"
            )
    if len(set(chosen)) != count:  # the same file name in two folders: number them
        chosen = tuple(f"v{k} {n}" for k, n in enumerate(chosen, start=1))
    return _chain(
        pairs,
        logs,
        names=chosen,
        paths=stored,
        fmt=fmt,
        gate=gate,
        gate_against_first=gate_against_first,
        top_k=1 if logs is not None else top_k,
        options=options,
    )
