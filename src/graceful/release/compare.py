"""Compare two model versions on the same labelled samples, as a release decision needs.

:func:`compare` turns aligned predictions into a :class:`Comparison`: the metrics with
intervals, McNemar's test, the relative-NFR bootstrap, the per-class and per-group
:class:`~graceful.metrics.FlipFrame`, and the gate's verdict. :meth:`Comparison.summary`
is the JSON-able dict that ``graceful compare`` writes and the HTML report renders.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

import graceful
from graceful._validation import check_int, check_optional, check_seed
from graceful.errors import InputError
from graceful.metrics import (
    METRICS,
    FlipFrame,
    Interval,
    McNemarResult,
    bootstrap_cells,
    mcnemar_test,
    metric_intervals,
    wilson_interval,
)
from graceful.metrics._counts import CELL_EXCLUDED, CELL_NEGATIVE_FLIP, CELL_POSITIVE_FLIP

from .gate import Gate, GateResult

if TYPE_CHECKING:
    from graceful.io.eval_logs import EvalLogInputs
    from graceful.io.predictions import ComparisonInputs

__all__ = ["Comparison", "compare", "compare_eval_logs", "compare_files"]


def _clean(value: Any) -> Any:
    """JSON-able copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: Longest text (prompt, target, response) a summary keeps of a flipped item; a longer one
#: keeps its first and last ``TEXT_CHARS // 2`` characters around a note of what was cut.
TEXT_CHARS = 4000

_TEXT_COLUMNS = frozenset({"id", "task", "key", "prompt", "target", "old_response", "new_response"})


def _capped(value: Any, limit: int = TEXT_CHARS) -> str | None:
    r"""``value`` as text of at most about ``limit`` characters (``None`` stays ``None``).

    Example:
        >>> _capped("x" * 10, 4)
        'xx\n[… 6 characters left out …]\nxx'
        >>> _capped(None), _capped(3)
        (None, '3')
    """
    if value is None:
        return None
    text = str(value)
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - 2 * half:,} characters left out …]\n{text[-half:]}"


def _table_rows(table: pd.DataFrame, **extra: str) -> list[dict[str, Any]]:
    rows = []
    for key, row in table.iterrows():
        group = key[-1] if isinstance(key, tuple) else key
        record: dict[str, Any] = {**extra, "group": str(group)}
        if isinstance(key, tuple) and len(key) > 1:
            record["column"] = str(key[0])
        record.update({col: row[col] for col in table.columns})
        record["n"] = int(record["n"])
        rows.append(record)
    return rows


def _most_confident(index: np.ndarray, confidence: np.ndarray | None, n: int) -> np.ndarray:
    """The ``n`` entries of ``index`` with the highest confidence, highest first (stable).

    Only the kept rows are sorted, so listing 500 of millions of flips stays cheap.
    """
    if confidence is None:
        return index[:n]
    if 0 < n < len(index):
        keys = -confidence[index]
        cut = np.partition(keys, n - 1)[n - 1]
        better = keys < cut
        # ties at the cut-off: keep the earliest, as a stable full sort would
        tied = np.flatnonzero(keys == cut)[: n - int(better.sum())]
        keep = better
        keep[tied] = True
        index = index[keep]
    order = np.argsort(-confidence[index], kind="stable")
    return index[order][:n]


@dataclass(frozen=True)
class Comparison:
    """Everything known about an update on one evaluation set.

    Attributes:
        inputs: the aligned predictions (:class:`~graceful.io.predictions.ComparisonInputs`).
        frame: per-class and per-group breakdown.
        intervals: metric name -> :class:`~graceful.metrics.Interval` (the relative NFR's
            from the paired bootstrap).
        mcnemar: McNemar's exact test on the flips.
        gate: the gate's verdict, or ``None`` when no bar was set.
        confidence: level of the intervals.
        interval_method: ``"wilson"`` or ``"exact"``.
        top_k: a model is right when the target is among its ``top_k`` classes.
        eval_logs: for a comparison of evaluation logs (:func:`compare_eval_logs`), the
            pairing: tasks, exclusions, the correctness rule and the score changes;
            ``None`` otherwise.
    """

    inputs: ComparisonInputs
    frame: FlipFrame
    intervals: dict[str, Interval]
    mcnemar: McNemarResult
    gate: GateResult | None
    confidence: float
    interval_method: str
    top_k: int
    eval_logs: EvalLogInputs | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """Metric name -> value."""
        return {name: iv.value for name, iv in self.intervals.items()}

    @property
    def passed(self) -> bool:
        """The gate's verdict; True when no gate was set."""
        return self.gate is None or self.gate.passed

    def _flipped_rows(self, max_rows: int | None) -> tuple[np.ndarray, int]:
        """Rows of :meth:`flipped_examples` (negative flips first) and how many are negative."""
        cells = self.frame.cells()
        neg = np.flatnonzero(cells == CELL_NEGATIVE_FLIP)
        pos = np.flatnonzero(cells == CELL_POSITIVE_FLIP)
        n_neg, n_pos = len(neg), len(pos)
        if max_rows is not None:
            half = max_rows // 2
            n_neg = min(len(neg), max(half, max_rows - len(pos)))
            n_pos = min(len(pos), max_rows - n_neg)
        conf_new = self.inputs.new_confidence
        rows = np.concatenate(
            [_most_confident(neg, conf_new, n_neg), _most_confident(pos, conf_new, n_pos)]
        )
        return rows, n_neg

    def by_task(self) -> pd.DataFrame:
        r"""Per-task flips of a comparison of evaluation logs, with intervals.

        For each compared task: ``metric``, ``n`` (items compared), ``excluded`` (items of
        the task left out, every reason together), ``error_rate_old``,
        ``error_rate_new``, the ``negative_flip_rate`` :math:`NF/n` and the
        ``positive_flip_rate`` :math:`PF/n`, each with its Wilson interval at
        :attr:`confidence` (``*_low``, ``*_high``, as in every per-group table), and the
        ``negative_flips`` and ``positive_flips`` counts.

        Returns:
            A ``pd.DataFrame`` indexed by task (the new run's order; a task with no item
            left to compare is left out).

        Raises:
            InputError: the comparison is not one of evaluation logs.

        Example:
            >>> import tempfile, pathlib, pandas as pd
            >>> d = pathlib.Path(tempfile.mkdtemp())
            >>> for name, ok in (("old", [1, 1, 0, 1]), ("new", [0, 1, 1, 1])):
            ...     pd.DataFrame({"id": [1, 2, 3, 4], "task": ["a", "a", "b", "b"],
            ...                   "correct": ok}).to_csv(d / f"{name}.csv", index=False)
            >>> table = compare_eval_logs(d / "old.csv", d / "new.csv", format="table").by_task()
            >>> table["negative_flips"].to_dict(), table["positive_flip_rate"].to_dict()
            ({'a': 1, 'b': 0}, {'a': 0.0, 'b': 0.5})
        """
        if self.eval_logs is None:
            raise InputError(
                "by_task: this comparison is not one of evaluation logs (compare_eval_logs); "
                "use frame.by(column) for a group column"
            )
        frame = self.frame.by("task")
        tasks = self.eval_logs.tasks
        order = [t for t in tasks.index if t in frame.index]
        frame = frame.loc[order]
        pf_low, pf_high = zip(
            *(
                wilson_interval(k, n, confidence=self.confidence)
                for k, n in zip(frame["positive_flips"], frame["n"], strict=True)
            ),
            strict=True,
        )
        table = pd.DataFrame(
            {
                "metric": tasks.loc[order, "metric"].to_numpy(dtype=object),
                "n": frame["n"].to_numpy(),
                "excluded": tasks.loc[order, list(self.eval_logs.reasons)]
                .sum(axis=1)
                .to_numpy(dtype=np.int64),
                "error_rate_old": frame["error_rate_old"].to_numpy(),
                "error_rate_new": frame["error_rate_new"].to_numpy(),
                "negative_flip_rate": frame["negative_flip_rate"].to_numpy(),
                "negative_flip_rate_low": frame["negative_flip_rate_low"].to_numpy(),
                "negative_flip_rate_high": frame["negative_flip_rate_high"].to_numpy(),
                "positive_flip_rate": frame["positive_flip_rate"].to_numpy(),
                "positive_flip_rate_low": np.asarray(pf_low, dtype=np.float64),
                "positive_flip_rate_high": np.asarray(pf_high, dtype=np.float64),
                "negative_flips": frame["negative_flips"].to_numpy(dtype=np.int64),
                "positive_flips": frame["positive_flips"].to_numpy(dtype=np.int64),
            },
            index=pd.Index(order, name="task"),
        )
        return table

    def flipped_items(self, max_rows: int | None = None) -> pd.DataFrame:
        """The flipped items of a comparison of evaluation logs, with their texts.

        The rows of :meth:`flipped_examples` (negative flips first, the same cap), each
        with the texts :meth:`graceful.io.eval_logs.EvalLogInputs.item_texts` gives: ``id,
        task, key, prompt, target, old_response, new_response, old_value, new_value``, then
        ``kind`` (``"negative"`` or ``"positive"``).

        Raises:
            InputError: the comparison is not one of evaluation logs.
        """
        check_optional(check_int, "max_rows", max_rows, low=0)
        if self.eval_logs is None:
            raise InputError(
                "flipped_items: this comparison is not one of evaluation logs "
                "(compare_eval_logs); see flipped_examples"
            )
        rows, n_neg = self._flipped_rows(max_rows)
        table = self.eval_logs.item_texts(rows)
        table["kind"] = ["negative"] * n_neg + ["positive"] * (len(rows) - n_neg)
        return table

    def flipped_examples(self, max_rows: int | None = None) -> pd.DataFrame:
        """Negative flips (most confident new prediction first), then positive flips.

        Args:
            max_rows: cap on the rows; when capped, the budget is split between negative
                and positive flips, and a kind with fewer flips leaves its share to the other.

        Returns:
            A ``pd.DataFrame`` with columns ``id, label, old_pred, new_pred,
            old_confidence, new_confidence, kind``.
        """
        check_optional(check_int, "max_rows", max_rows, low=0)
        rows, n_neg = self._flipped_rows(max_rows)
        neg, pos = rows[:n_neg], rows[n_neg:]
        inputs = self.inputs
        names = np.asarray([*inputs.class_names, "(none)"], dtype=object)
        old_names = np.asarray(inputs.old_class_names, dtype=object)

        def confidence(values: np.ndarray | None) -> np.ndarray:
            if values is None:
                return np.full(len(rows), np.nan)
            return np.asarray(values[rows], dtype=np.float64)

        return pd.DataFrame(
            {
                "id": inputs.ids[rows],
                "label": names[inputs.target[rows]],
                "old_pred": old_names[inputs.old_topk[rows, 0]],
                "new_pred": names[inputs.new_topk[rows, 0]],
                "old_confidence": confidence(inputs.old_confidence),
                "new_confidence": confidence(inputs.new_confidence),
                "kind": ["negative"] * len(neg) + ["positive"] * len(pos),
            }
        )

    def summary(
        self,
        *,
        max_examples: int = 500,
        paths: Mapping[str, str | None] | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        """The JSON-able summary that ``graceful compare`` writes and the report renders.

        Args:
            max_examples: cap on the flipped-example rows.
            paths: ``{"old": ..., "new": ..., "labels": ...}`` for the record.
            title: page title; defaults to ``"<old> -> <new>"``.

        Returns:
            A dict of plain Python values (NaN written as ``None``).
        """
        counts = self.frame.counts
        paths = dict(paths or {})
        metrics: dict[str, Any] = {}
        for name, spec in METRICS.items():
            iv = self.intervals[name]
            num, den = spec.value(counts)
            metrics[name] = {
                "value": iv.value,
                "low": iv.low,
                "high": iv.high,
                "numerator": num,
                "denominator": den,
                "formula": spec.formula,
                "description": spec.description,
                "direction": "higher" if spec.higher_is_better else "lower",
            }
        flips = self.flipped_examples(max_examples)
        matrix = self.frame.flip_matrix
        old_name = os.path.basename(str(paths.get("old") or "old"))
        new_name = os.path.basename(str(paths.get("new") or "new"))
        summary = {
            "graceful_version": graceful.__version__,
            "title": title or f"{old_name} -> {new_name}",
            "inputs": {
                "old": paths.get("old"),
                "new": paths.get("new"),
                "labels": paths.get("labels"),
                "id_source": self.inputs.id_source,
                "n_rows": len(self.inputs.target),
                "n_compared": counts.n_total,
                "n_excluded": counts.n_excluded,
                "top_k": self.top_k,
                "weighted": False,
                # how each file's score columns were read: "logits", "probs", or None
                # for hard predictions (scores="auto" decides per file)
                "scores": {"old": self.inputs.old_scores, "new": self.inputs.new_scores},
                # "predictions", or the evaluation-log format of compare_eval_logs
                "format": "predictions" if self.eval_logs is None else self.eval_logs.new.format,
            },
            "confidence_level": self.confidence,
            "interval_method": self.interval_method,
            "metrics": metrics,
            "counts": {
                "both_correct": counts.n_both_correct,
                "negative_flips": counts.n_negative_flips,
                "positive_flips": counts.n_positive_flips,
                "both_wrong": counts.n_both_wrong,
                "excluded": counts.n_excluded,
            },
            "mcnemar": {
                "negative_flips": self.mcnemar.negative_flips,
                "positive_flips": self.mcnemar.positive_flips,
                "p_value": self.mcnemar.p_value,
                "alpha": self.mcnemar.alpha,
                "verdict": self.mcnemar.verdict,
            },
            "class_names": list(self.inputs.class_names),
            "by_class": _table_rows(self.frame.by_class),
            "by_group": {g: _table_rows(self.frame.by(g)) for g in self.frame.group_names},
            "most_affected": _table_rows(self.frame.most_affected(10)),
            "flip_matrix": {
                "rows": [str(r) for r in matrix.index],
                "columns": [str(c) for c in matrix.columns],
                "counts": matrix.to_numpy().tolist(),
            },
            "flipped_examples": {
                "total_negative": counts.n_negative_flips,
                "total_positive": counts.n_positive_flips,
                "shown": len(flips),
                "rows": [
                    {
                        k: (str(v) if k in ("id", "label", "old_pred", "new_pred") else v)
                        for k, v in row.items()
                    }
                    for row in flips.to_dict(orient="records")
                ],
            },
            "gate": None if self.gate is None else self.gate.as_dict(),
        }
        if self.eval_logs is not None:
            logs = self.eval_logs.summary()
            tasks = self.by_task()
            logs["by_task"] = [
                {"task": str(task), **row}
                for task, row in zip(tasks.index, tasks.to_dict("records"), strict=True)
            ]
            items = self.flipped_items(max_examples)
            logs["flipped_items"] = {
                "total_negative": counts.n_negative_flips,
                "total_positive": counts.n_positive_flips,
                "shown": len(items),
                "text_chars": TEXT_CHARS,
                "rows": [
                    {k: (_capped(v) if k in _TEXT_COLUMNS else v) for k, v in row.items()}
                    for row in items.to_dict(orient="records")
                ],
            }
            summary["eval_logs"] = logs
        return dict(_clean(summary))


def _frame(inputs: ComparisonInputs, *, top_k: int, confidence: float) -> FlipFrame:
    """The :class:`FlipFrame` of aligned inputs, computed in NumPy (torch is not loaded).

    ``old_topk`` / ``new_topk`` are ranked label lists, best first; a model is right when
    the target is among its first ``top_k``. With a class map the old classes are mapped
    into the new label space (-1: no counterpart) and a sample whose true class no old
    class maps to is excluded, as :class:`FlipFrame` on the same inputs does.
    """
    top_k = check_int("top_k", top_k, low=1)
    held = min(inputs.old_topk.shape[1], inputs.new_topk.shape[1])
    if top_k > held:
        raise InputError(
            f"Expected argument `top_k` to be at most the {held} ranked predictions the inputs "
            f"hold, but got {top_k}"
        )
    target = np.asarray(inputs.target, dtype=np.int64)
    old = np.asarray(inputs.old_topk[:, :top_k], dtype=np.int64)
    new = np.asarray(inputs.new_topk[:, :top_k], dtype=np.int64)
    n_classes = len(inputs.class_names)
    included = None
    if inputs.class_map is not None:
        lut = np.asarray(inputs.class_map, dtype=np.int64)
        inside = (old >= 0) & (old < lut.size)
        old = np.where(inside, lut[np.clip(old, 0, max(lut.size - 1, 0))], -1)
        reachable = np.zeros(max(n_classes, int(lut.max(initial=-1)) + 1), dtype=bool)
        reachable[lut[lut >= 0]] = True
        included = reachable[target]
    right_old = (old == target[:, None]).any(axis=1)
    right_new = (new == target[:, None]).any(axis=1)
    cells = right_old.view(np.uint8) * np.uint8(2) + right_new.view(np.uint8)
    if included is not None:
        cells[~included] = CELL_EXCLUDED
    return FlipFrame.from_cells(
        cells,
        target,
        old[:, 0],
        new[:, 0],
        groups=inputs.groups or None,
        class_names=inputs.class_names,
        num_classes=n_classes,
        confidence=confidence,
    )


def compare(
    inputs: ComparisonInputs,
    *,
    top_k: int = 1,
    confidence: float = 0.95,
    interval_method: Literal["wilson", "exact"] = "wilson",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    random_state: int = 0,
    gate: Gate | None = None,
) -> Comparison:
    """Compare aligned predictions of an old and a new model.

    Args:
        inputs: aligned predictions, e.g. from
            :func:`graceful.io.predictions.load_comparison`.
        top_k: a model is right when the target is among its ``top_k`` classes (at most
            the number of ranked predictions held in ``inputs``).
        confidence: level of every interval.
        interval_method: ``"wilson"`` or ``"exact"`` for the rates.
        alpha: significance level of McNemar's test.
        n_resamples: bootstrap resamples for the relative NFR interval.
        random_state: bootstrap seed (same seed, same interval).
        gate: release bars, or ``None``.

    Returns:
        A :class:`Comparison`.
    """
    random_state = check_seed("random_state", random_state)
    frame = _frame(inputs, top_k=top_k, confidence=confidence)
    intervals = metric_intervals(frame.counts, method=interval_method, confidence=confidence)
    intervals["relative_negative_flip_rate"] = bootstrap_cells(
        frame.cells(), n_resamples=n_resamples, confidence=confidence, random_state=random_state
    )
    intervals = {name: intervals[name] for name in METRICS}
    result = mcnemar_test(frame.counts, alpha=alpha)
    verdict = None
    if gate is not None and gate.configured:
        verdict = gate.evaluate(
            {name: iv.value for name, iv in intervals.items()},
            mcnemar=result,
        )
    return Comparison(
        inputs=inputs,
        frame=frame,
        intervals=intervals,
        mcnemar=result,
        gate=verdict,
        confidence=confidence,
        interval_method=interval_method,
        top_k=top_k,
    )


def compare_files(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    id_col: str | None = None,
    label_col: str = "label",
    pred_col: str | None = None,
    score_prefix: str | None = None,
    scores: Literal["auto", "logits", "probs"] = "auto",
    class_map: Mapping[str, str] | None = None,
    group_cols: Sequence[str] = (),
    top_k: int = 1,
    **options: Any,
) -> Comparison:
    """Read two prediction files (and optionally a labels file) and compare them.

    The file options (and ``top_k``) are those of
    :func:`graceful.io.predictions.load_comparison`; ``options`` are the keyword arguments
    of :func:`compare` (``confidence``, ``interval_method``, ``alpha``, ``n_resamples``,
    ``random_state``, ``gate``). This is what ``graceful compare`` runs.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"id": [1, 2, 3, 4], "label": [0, 1, 1, 0],
        ...               "pred": [0, 1, 0, 0]}).to_csv(d / "old.csv", index=False)
        >>> pd.DataFrame({"id": [4, 3, 2, 1], "pred": [0, 1, 0, 1]}).to_csv(
        ...     d / "new.csv", index=False)
        >>> result = compare_files(d / "old.csv", d / "new.csv")
        >>> result.metrics["negative_flip_rate"], result.metrics["positive_flip_rate"]
        (0.5, 0.25)
    """
    check_int("top_k", top_k, low=1)
    from graceful.io.predictions import load_comparison

    inputs = load_comparison(
        old,
        new,
        labels=labels,
        id_col=id_col,
        label_col=label_col,
        pred_col=pred_col,
        score_prefix=score_prefix,
        scores=scores,
        class_map=class_map,
        group_cols=group_cols,
        top_k=top_k,
    )
    return compare(inputs, top_k=top_k, **options)


def compare_eval_logs(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    metric: str | None = None,
    format: Literal["auto", "lm-eval", "inspect", "helm", "table"] = "auto",
    score_threshold: float | None = None,
    id_col: str | None = None,
    task_col: str | None = None,
    **options: Any,
) -> Comparison:
    """Compare two runs' evaluation logs (lm-evaluation-harness, Inspect, HELM, tables).

    Each item is correct or not in each run (see
    :func:`graceful.io.eval_logs.load_eval_comparison`, whose arguments these are), and the
    two runs are compared as two models on a two-class problem whose target is
    ``"correct"``: the negative flip rate is the share of compared items right in the old
    run and wrong in the new one. Tasks are the group ``"task"`` (``by_group["task"]`` of
    the summary: one row per task); :attr:`Comparison.eval_logs` holds the pairing
    (exclusions, the rule, the score changes). ``options`` are the keyword arguments of
    :func:`compare` (``confidence``, ``interval_method``, ``alpha``, ``n_resamples``,
    ``random_state``, ``gate``). This is what ``graceful compare`` runs on evaluation logs.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"id": [1, 2, 3, 4], "task": ["a", "a", "b", "b"],
        ...               "f1": [0.9, 0.8, 0.2, 0.7]}).to_csv(d / "old.csv", index=False)
        >>> pd.DataFrame({"id": [1, 2, 3, 4], "task": ["a", "a", "b", "b"],
        ...               "f1": [0.9, 0.3, 0.6, 0.7]}).to_csv(d / "new.csv", index=False)
        >>> result = compare_eval_logs(d / "old.csv", d / "new.csv", format="table",
        ...                            score_threshold=0.5)
        >>> result.metrics["negative_flip_rate"], result.metrics["positive_flip_rate"]
        (0.25, 0.25)
        >>> result.frame.by("task")["negative_flip_rate"].tolist()
        [0.5, 0.0]
        >>> float(result.eval_logs.score_changes().loc["(overall)", "total_decrease"])
        0.5
    """
    from graceful.io.eval_logs import load_eval_comparison

    pair = load_eval_comparison(
        old,
        new,
        format=format,
        metric=metric,
        score_threshold=score_threshold,
        id_col=id_col,
        task_col=task_col,
    )
    result = compare(pair.inputs, **options)
    return replace(result, eval_logs=pair)
