r"""Read the evaluation logs teams already have and pair two runs item by item.

Formats (:data:`EVAL_LOG_FORMATS`), detected from the file or folder or named:

* ``"lm-eval"``: lm-evaluation-harness ``--log_samples`` output, a
  ``samples_<task>_<date>.jsonl`` file or the output folder (searched recursively; one run's
  folder; of several dated files of a task the newest is read, with a note). Items are keyed
  by task, ``doc_id`` and ``filter`` (a filter other than ``"none"`` makes the task
  ``<task>/<filter>``); the ``doc_hash``, ``prompt_hash`` and ``target_hash`` of the two runs
  must agree.
* ``"inspect"``: Inspect (inspect-ai) logs, ``.eval`` (zip) or ``.json``, or a folder of
  them (one task per log; the newest log of a task). Items are keyed by task
  (``eval.task``), sample ``id`` and ``epoch``; the ``input`` and ``target`` of the two runs
  must agree. Score values are read as inspect's ``value_to_float`` reads them (``"C"`` 1,
  ``"P"`` 0.5, ``"I"`` and ``"N"`` 0); a sample that ended in an error is excluded.
* ``"helm"``: a HELM run folder (``per_instance_stats.json``, and ``display_predictions.json``
  and ``instances.json`` for the texts) or a suite folder of run folders; items are keyed by
  ``instance_id``, ``perturbation`` and ``train_trial_index``; the task is the run name
  without its ``model=`` argument.
* ``"table"``: CSV, Parquet or JSON Lines, one row per item: an id column, an optional task
  column and metric columns. Never detected: name it (``format="table"``), so that a file
  of today's predictions (``graceful compare``'s default) is never read as one.

:func:`read_eval_log` reads one run into an :class:`EvalRun` (one row per item, every
metric); :func:`load_eval_comparison` pairs two runs into the
:class:`~graceful.io.predictions.ComparisonInputs` that :func:`graceful.release.compare`
takes, with the task as a group: an item is *correct* when its metric is 1 (a 0/1 metric)
or, with ``score_threshold`` :math:`t`, when its score :math:`s \ge t`. What cannot be
compared is excluded and counted, never compared silently: an item of one run only, an item
whose document, prompt or target changed between the runs, an errored Inspect sample, a task
of one run only, a task without the named metric.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from graceful._validation import check_choice, check_optional, check_real
from graceful.errors import InputError

from . import _eval_table, _helm, _inspect_log, _lm_eval
from ._eval_run import HASH_COLUMNS, EvalRun, pick_metric
from .predictions import ComparisonInputs

__all__ = [
    "EVAL_LOG_FORMATS",
    "NOT_IN_EVERY_VERSION",
    "EvalLogInputs",
    "EvalRun",
    "detect_eval_log",
    "load_eval_comparison",
    "read_eval_log",
]

#: The evaluation-log formats, by the name ``format=`` (``--format``) takes.
EVAL_LOG_FORMATS: tuple[str, ...] = ("lm-eval", "inspect", "helm", "table")

EvalLogFormat = Literal["auto", "lm-eval", "inspect", "helm", "table"]

_DESCRIBED = {
    "lm-eval": "an lm-evaluation-harness samples log",
    "inspect": "an Inspect log",
    "helm": "a HELM run folder",
    "table": "a per-item table",
}

#: Default metric of each format when a task has several (the only one otherwise).
_PREFERRED: dict[str, tuple[str, ...]] = {
    "lm-eval": _lm_eval.PREFERRED,
    "inspect": (),
    "helm": _helm.PREFERRED,
    "table": ("correct",),
}

#: Classes of the two-class problem an eval-log comparison becomes.
CLASS_NAMES = ["correct", "incorrect"]

#: Why an item was left out of the comparison (columns of :attr:`EvalLogInputs.tasks`).
REASONS: tuple[str, ...] = ("changed", "errored", "only_old", "only_new")

#: The reason :meth:`EvalLogInputs.restricted` gives by default: an item a chain of versions
#: leaves out because another version's comparison excluded it.
NOT_IN_EVERY_VERSION = "not_in_every_version"


def detect_eval_log(path: str | os.PathLike[str]) -> str | None:
    r"""The format of an evaluation log, or ``None`` for anything else (e.g. predictions).

    Tables are never detected (see :data:`EVAL_LOG_FORMATS`).

    Example:
        >>> import json, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> record = {"doc_id": 0, "doc": {}, "target": "A", "resps": [], "acc": 1.0}
        >>> _ = (d / "samples_arc_2024-05-01T10-00-00.000001.jsonl").write_text(
        ...     json.dumps(record) + "\n")
        >>> detect_eval_log(d), detect_eval_log(d / "predictions.csv")
        ('lm-eval', None)
    """
    p = Path(path)
    if not p.exists():
        return None
    if _inspect_log.detect(p):
        return "inspect"
    if _helm.detect(p):
        return "helm"
    if _lm_eval.detect(p):
        return "lm-eval"
    return None


def read_eval_log(
    path: str | os.PathLike[str],
    *,
    format: EvalLogFormat = "auto",
    id_col: str | None = None,
    task_col: str | None = None,
) -> EvalRun:
    r"""Read one run's evaluation log into a per-item :class:`EvalRun`.

    Args:
        path: the log file or folder.
        format: one of :data:`EVAL_LOG_FORMATS`, or ``"auto"`` (detected; a table must be
            named).
        id_col: the id column of a table (default ``"id"``).
        task_col: the task column of a table (default ``"task"`` where present; without
            one every row is of the task ``"(all)"``).

    Returns:
        The :class:`EvalRun`; :meth:`EvalRun.table` gives the canonical table of one metric.

    Raises:
        InputError: a missing path, a log of another format than named, a file that cannot
            be read as its format (a truncated JSON line, a zip that is not an Inspect log,
            ...), an item key seen twice in a task; one line naming the file.

    Example:
        >>> import json, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> lines = [{"doc_id": i, "doc": {"q": i}, "target": "A", "filter": "none",
        ...           "doc_hash": "d", "prompt_hash": "p", "target_hash": "t",
        ...           "filtered_resps": ["A"], "acc": float(i % 2)} for i in range(3)]
        >>> path = d / "samples_arc_easy_2024-05-01T10-00-00.000001.jsonl"
        >>> _ = path.write_text("".join(json.dumps(r) + "\n" for r in lines))
        >>> run = read_eval_log(path)
        >>> run.format, run.tasks, run.metrics()
        ('lm-eval', ['arc_easy'], ['acc'])
        >>> run.table("acc")["value"].tolist()
        [0.0, 1.0, 0.0]
    """
    fmt = check_choice("format", format, ("auto", *EVAL_LOG_FORMATS))
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file or folder")
    if fmt != "table" and (id_col is not None or task_col is not None):
        option = "id_col" if id_col is not None else "task_col"
        raise InputError(f"{option} applies to format='table' only, not to {path}")
    found = detect_eval_log(p)
    if fmt == "auto":
        if found is None:
            raise InputError(
                f"{path}: not an evaluation log graceful reads (lm-evaluation-harness samples, "
                "an Inspect log, a HELM run folder); for a per-item table pass format='table' "
                "(--format table)"
            )
        fmt = found
    elif found is not None and found != fmt:
        raise InputError(f"{path}: is {_DESCRIBED[found]}, not {_DESCRIBED[fmt]} (format {fmt!r})")
    if fmt == "lm-eval":
        return _lm_eval.read(p)
    if fmt == "inspect":
        return _inspect_log.read(p)
    if fmt == "helm":
        return _helm.read(p)
    if p.is_dir():
        raise InputError(f"{path}: a folder, but a per-item table is one file")
    return _eval_table.read(p, id_col=id_col, task_col=task_col)


@dataclass(frozen=True)
class EvalLogInputs:
    """Two runs' evaluation logs paired item by item, ready for :func:`graceful.release.compare`.

    Attributes:
        inputs: the two-class :class:`~graceful.io.predictions.ComparisonInputs`: ids
            ``"<task>:<key>"``, target ``"correct"`` throughout, each model's prediction
            ``"correct"`` or ``"incorrect"``, the group ``"task"``.
        old: the old run as read.
        new: the new run as read.
        tasks: a ``pd.DataFrame`` indexed by the compared tasks (the new run's order):
            ``metric``, ``binary`` (the metric takes the values 0 and 1 only), ``n_old`` and
            ``n_new`` (items read), ``n_compared`` and the counts of the items left out by
            reason: ``changed`` (a hash, or the prompt or target, differs), ``errored`` (an
            errored Inspect sample), ``only_old``, ``only_new``.
        excluded: a ``pd.DataFrame`` of every item left out of a compared task: ``task``,
            ``key``, ``reason``.
        tasks_only_old: tasks of the old run only (not compared).
        tasks_only_new: tasks of the new run only (not compared).
        tasks_without_metric: tasks of both runs left out because one run lacks the metric.
        score_threshold: an item is correct when its score is at least this; ``None``:
            every compared metric is 0/1 and an item is correct when it is 1.
        old_values: ``(N,)`` float64 metric values of the old run, aligned with ``inputs``.
        new_values: the same for the new run.
    """

    inputs: ComparisonInputs
    old: EvalRun
    new: EvalRun
    tasks: pd.DataFrame
    excluded: pd.DataFrame
    tasks_only_old: tuple[str, ...]
    tasks_only_new: tuple[str, ...]
    tasks_without_metric: tuple[str, ...]
    score_threshold: float | None
    old_values: np.ndarray[Any, np.dtype[np.float64]]
    new_values: np.ndarray[Any, np.dtype[np.float64]]

    @property
    def metric(self) -> str | None:
        """The metric compared, when it is the same in every task; else ``None``."""
        names = set(self.tasks["metric"])
        return names.pop() if len(names) == 1 else None

    @property
    def rule(self) -> str:
        """When an item counts as correct, in words."""
        name = self.metric or "the metric"
        if self.score_threshold is None:
            return f"correct when {name} = 1"
        return f"correct when {name} >= {self.score_threshold:g}"

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why items were left out: :data:`REASONS`, then any reason :meth:`restricted` added."""
        extra = tuple(c for c in self.tasks.columns if c == NOT_IN_EVERY_VERSION)
        return (*REASONS, *extra)

    def item_texts(self, rows: Sequence[int] | np.ndarray[Any, Any] | None = None) -> pd.DataFrame:
        """The texts of compared items as each run logged them.

        Args:
            rows: positions among the compared items (rows of :attr:`inputs`); ``None``: all.

        Returns:
            A ``pd.DataFrame`` with one row per requested item, in order: ``id`` (as in
            :attr:`inputs`), ``task``, ``key``, ``prompt`` and ``target`` (the new run's;
            an item whose prompt or target changed is never compared), ``old_response``,
            ``new_response`` (``None`` where a log holds none), ``old_value`` and
            ``new_value`` (the metric).

        Example:
            >>> import tempfile, pathlib, pandas as pd
            >>> d = pathlib.Path(tempfile.mkdtemp())
            >>> for name, ok, said in (("old", [1, 1], ["4", "b"]), ("new", [1, 0], ["4", "c"])):
            ...     pd.DataFrame({"id": [1, 2], "correct": ok, "prompt": ["2+2?", "a?"],
            ...                   "target": ["4", "b"], "response": said}).to_csv(
            ...         d / f"{name}.csv", index=False)
            >>> pair = load_eval_comparison(d / "old.csv", d / "new.csv", format="table")
            >>> pair.item_texts([1])[["id", "prompt", "old_response", "new_response"]].values
            array([['(all):2', 'a?', 'b', 'c']], dtype=object)
        """
        n = len(self.inputs.ids)
        index = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise InputError(
                f"Expected argument `rows` to hold positions in [0, {n}), but got "
                f"{index.min() if index.min() < 0 else index.max()}"
            )
        ids = self.inputs.ids[index]
        task = self.inputs.groups["task"][index]
        keys = np.array([i[len(t) + 1 :] for i, t in zip(ids, task, strict=True)], dtype=object)
        wanted = pd.MultiIndex.from_arrays([task, keys])
        found = {}
        for side, run in (("old", self.old), ("new", self.new)):
            where = pd.MultiIndex.from_arrays([run.items["task"], run.items["key"]])
            found[side] = run.items.iloc[where.get_indexer(wanted)].reset_index(drop=True)
        return pd.DataFrame(
            {
                "id": ids,
                "task": task,
                "key": keys,
                "prompt": found["new"]["prompt"].to_numpy(dtype=object),
                "target": found["new"]["target"].to_numpy(dtype=object),
                "old_response": found["old"]["response"].to_numpy(dtype=object),
                "new_response": found["new"]["response"].to_numpy(dtype=object),
                "old_value": self.old_values[index],
                "new_value": self.new_values[index],
            }
        )

    def restricted(
        self, rows: Sequence[int] | np.ndarray[Any, Any], *, reason: str = NOT_IN_EVERY_VERSION
    ) -> EvalLogInputs:
        """The pairing over some of its compared items, in the order of ``rows``.

        The items left out are counted per task under ``reason`` (a column of
        :attr:`tasks`, a row of :attr:`excluded`, a key of ``summary()["excluded"]``): a
        chain of versions (:func:`graceful.release.compare_chain`) keeps only the items
        every version's comparison kept.

        Args:
            rows: distinct positions among the compared items (rows of :attr:`inputs`).
            reason: why the others are left out; :data:`NOT_IN_EVERY_VERSION` only.

        Returns:
            A new :class:`EvalLogInputs`.

        Example:
            >>> import tempfile, pathlib, pandas as pd
            >>> d = pathlib.Path(tempfile.mkdtemp())
            >>> for name, ok in (("old", [1, 1, 0]), ("new", [1, 0, 1])):
            ...     pd.DataFrame({"id": [1, 2, 3], "correct": ok}).to_csv(
            ...         d / f"{name}.csv", index=False)
            >>> pair = load_eval_comparison(d / "old.csv", d / "new.csv", format="table")
            >>> part = pair.restricted([2, 0])
            >>> part.inputs.ids.tolist(), part.summary()["excluded"]["not_in_every_version"]
            (['(all):3', '(all):1'], 1)
        """
        check_choice("reason", reason, (NOT_IN_EVERY_VERSION,))
        n = len(self.inputs.ids)
        index = np.asarray(rows, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise InputError(f"Expected argument `rows` to hold positions in [0, {n})")
        if len(np.unique(index)) != len(index):
            raise InputError("Expected argument `rows` to hold distinct positions")
        dropped = np.ones(n, dtype=bool)
        dropped[index] = False
        task = self.inputs.groups["task"]
        tasks = self.tasks.copy()
        tasks["n_compared"] = [int((task[index] == t).sum()) for t in tasks.index]
        tasks[reason] = [int((task[dropped] == t).sum()) for t in tasks.index]
        ids = self.inputs.ids[dropped]
        left_out = pd.DataFrame(
            {
                "task": task[dropped],
                "key": [i[len(t) + 1 :] for i, t in zip(ids, task[dropped], strict=True)],
                "reason": reason,
            }
        )
        inputs = replace(
            self.inputs,
            ids=self.inputs.ids[index],
            target=self.inputs.target[index],
            old_topk=self.inputs.old_topk[index],
            new_topk=self.inputs.new_topk[index],
            groups={name: values[index] for name, values in self.inputs.groups.items()},
        )
        return replace(
            self,
            inputs=inputs,
            tasks=tasks,
            excluded=pd.concat([self.excluded, left_out], ignore_index=True),
            old_values=self.old_values[index],
            new_values=self.new_values[index],
        )

    def score_changes(self) -> pd.DataFrame:
        r"""How much the metric moved on the compared items, overall and per task.

        With :math:`d_i = s^{new}_i - s^{old}_i`: ``decreased`` :math:`= |\{i: d_i < 0\}|`,
        ``total_decrease`` :math:`= -\sum_{d_i<0} d_i`, ``mean_decrease`` = total /
        count (NaN when nothing decreased), and the same for increases; ``mean_old`` and
        ``mean_new`` are the mean scores. For a 0/1 metric the counts are the negative and
        positive flips.

        Returns:
            A ``pd.DataFrame`` indexed by ``"(overall)"`` then each task, with the columns
            ``n, mean_old, mean_new, decreased, total_decrease, mean_decrease, increased,
            total_increase, mean_increase``.
        """
        task = self.inputs.groups["task"]
        rows = {"(overall)": _changes(self.old_values, self.new_values)}
        for name in self.tasks.index:
            mask = task == name
            rows[str(name)] = _changes(self.old_values[mask], self.new_values[mask])
        table = pd.DataFrame.from_dict(rows, orient="index")
        return table.astype({"n": np.int64, "decreased": np.int64, "increased": np.int64})

    def summary(self) -> dict[str, Any]:
        """The JSON-able record of the pairing that ``graceful compare`` writes.

        Returns:
            A dict: ``format``, ``metric`` (``None`` when tasks differ), ``rule``,
            ``score_threshold``, ``tasks`` (one dict per compared task, with
            :attr:`tasks`' columns), ``excluded`` (counts by reason, and ``total``),
            ``tasks_only_old``, ``tasks_only_new``, ``tasks_without_metric``,
            ``score_changes`` (``overall`` and ``by_task``, see :meth:`score_changes`) and
            ``notes`` (what each reader decided, e.g. which of several files it read). The
            ``excluded`` counts are by :attr:`reasons`.
        """
        changes = self.score_changes()
        counts = {r: int(self.tasks[r].sum()) for r in self.reasons}
        by_task = [
            {"task": str(t), **row}
            for t, row in zip(changes.index[1:], changes.iloc[1:].to_dict("records"), strict=True)
        ]
        return {
            "format": self.new.format,
            "metric": self.metric,
            "rule": self.rule,
            "score_threshold": self.score_threshold,
            "tasks": _plain(self.tasks.reset_index().to_dict("records")),
            "excluded": {**counts, "total": sum(counts.values())},
            "tasks_only_old": list(self.tasks_only_old),
            "tasks_only_new": list(self.tasks_only_new),
            "tasks_without_metric": list(self.tasks_without_metric),
            "score_changes": {
                "overall": _plain(changes.iloc[:1].to_dict("records")[0]),
                "by_task": _plain(by_task),
            },
            "notes": [*self.old.notes, *self.new.notes],
        }


def _plain(value: Any) -> Any:
    """A JSON-able copy: numpy scalars as Python numbers, NaN as ``None``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _changes(
    old: np.ndarray[Any, np.dtype[np.float64]], new: np.ndarray[Any, np.dtype[np.float64]]
) -> dict[str, float]:
    d = new - old
    down, up = d[d < 0], d[d > 0]
    n = len(d)
    return {
        "n": n,
        "mean_old": float(old.mean()) if n else math.nan,
        "mean_new": float(new.mean()) if n else math.nan,
        "decreased": len(down),
        "total_decrease": float(-down.sum()),
        "mean_decrease": float(-down.mean()) if len(down) else math.nan,
        "increased": len(up),
        "total_increase": float(up.sum()),
        "mean_increase": float(up.mean()) if len(up) else math.nan,
    }


def _metric_column(run: EvalRun, metrics: dict[str, str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Each item's value of its task's metric (NaN for tasks not compared)."""
    out = np.full(len(run.items), np.nan)
    task = run.items["task"].to_numpy()
    for name, metric in metrics.items():
        if metric in run.values.columns:
            mask = task == name
            out[mask] = run.values[metric].to_numpy()[mask]
    return out


def _choose_metrics(
    old: EvalRun, new: EvalRun, common: Sequence[str], metric: str | None
) -> tuple[dict[str, str], list[str]]:
    """The metric of each common task, and the tasks left out for lack of ``metric``."""
    chosen: dict[str, str] = {}
    lacking: list[str] = []
    for task in common:
        found_old, found_new = old.metrics(task), new.metrics(task)
        both = sorted(set(found_old) & set(found_new))
        if metric is not None:
            if metric in both:
                chosen[task] = metric
            else:
                lacking.append(task)
            continue
        if not both:
            raise InputError(
                f"task {task!r}: no metric in both {old.path} ({', '.join(found_old) or 'none'}) "
                f"and {new.path} ({', '.join(found_new) or 'none'})"
            )
        chosen[task] = pick_metric(both, _PREFERRED[new.format], f"task {task!r} of {new.path}")
    if metric is not None and not chosen:
        found = sorted({m for t in common for m in (*old.metrics(t), *new.metrics(t))})
        raise InputError(
            f"no task of {old.path} and {new.path} has the metric {metric!r} in both runs "
            f"(metrics found: {', '.join(found) or 'none'})"
        )
    return chosen, lacking


def _differs(a: pd.Series, b: pd.Series) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(both hold a value, the values differ) per row."""
    both = (a.notna() & b.notna()).to_numpy()
    differ = both & (a.astype(str).to_numpy() != b.astype(str).to_numpy())
    return both, differ


def _list(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_eval_comparison(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    format: EvalLogFormat = "auto",
    metric: str | None = None,
    score_threshold: float | None = None,
    id_col: str | None = None,
    task_col: str | None = None,
) -> EvalLogInputs:
    r"""Read two runs' evaluation logs and pair their items for a comparison.

    Tasks are matched by name; a task of one run only is reported and left out (an error
    when no task is common). Within a task, items are matched by key; an item of one run
    only, one whose ``doc_hash``, ``prompt_hash`` or ``target_hash`` differs (for formats
    without hashes: whose prompt or target text differs), and an errored Inspect sample
    are excluded and counted per task. Each exclusion is also a :class:`UserWarning`.

    Args:
        old: the old (deployed) model's log, file or folder.
        new: the new model's log; its task and item order is the result's.
        format: one of :data:`EVAL_LOG_FORMATS` or ``"auto"`` (each run detected; both must
            be of one format).
        metric: the metric to compare, in every task; a common task whose runs do not both
            have it is reported and left out. ``None``: per task, the only metric both runs
            have, else the format's usual one (lm-eval ``acc`` then ``exact_match``, HELM
            ``exact_match`` then ``quasi_exact_match``, a table's ``correct``), else an
            error listing the metrics found.
        score_threshold: an item is correct when its score :math:`s \ge` this. Needed
            when a compared metric takes values other than 0 and 1 (ROUGE, F1, Inspect's
            partial credit ``"P"``); with it, every task is thresholded.
        id_col: a table's id column (``format="table"`` only).
        task_col: a table's task column (``format="table"`` only).

    Returns:
        The :class:`EvalLogInputs`.

    Raises:
        InputError: each problem is one line naming the file: a log of another format than
            named, a truncated JSON line (with its number), a zip that is not an Inspect
            log, no task in common, a compared item without a number for the metric (the
            first such record), a metric that is not 0/1 without ``score_threshold``.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"id": [1, 2, 3, 4], "correct": [1, 1, 0, 0]}).to_csv(
        ...     d / "old.csv", index=False)
        >>> pd.DataFrame({"id": [1, 2, 3, 4], "correct": [1, 0, 1, 1]}).to_csv(
        ...     d / "new.csv", index=False)
        >>> pair = load_eval_comparison(d / "old.csv", d / "new.csv", format="table")
        >>> pair.inputs.old_topk[:, 0].tolist(), pair.inputs.new_topk[:, 0].tolist()
        ([0, 0, 1, 1], [0, 1, 0, 0])
        >>> pair.rule
        'correct when correct = 1'
    """
    fmt = check_choice("format", format, ("auto", *EVAL_LOG_FORMATS))
    threshold = check_optional(check_real, "score_threshold", score_threshold)
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise InputError(f"Expected argument `metric` to be a non-empty str, but got {metric!r}")
    run_old = read_eval_log(old, format=fmt, id_col=id_col, task_col=task_col)  # type: ignore[arg-type]
    run_new = read_eval_log(new, format=fmt, id_col=id_col, task_col=task_col)  # type: ignore[arg-type]
    if run_old.format != run_new.format:
        raise InputError(
            f"{old} is {_DESCRIBED[run_old.format]} but {new} is {_DESCRIBED[run_new.format]}; "
            "compare two runs of one format"
        )
    for note in (*run_old.notes, *run_new.notes):
        warnings.warn(note, UserWarning, stacklevel=2)

    old_tasks, new_tasks = run_old.tasks, run_new.tasks
    common = [t for t in new_tasks if t in set(old_tasks)]
    only_old = tuple(t for t in old_tasks if t not in set(new_tasks))
    only_new = tuple(t for t in new_tasks if t not in set(old_tasks))
    if not common:
        raise InputError(
            f"{old} and {new} have no task in common ({old}: {_list(old_tasks)}; "
            f"{new}: {_list(new_tasks)})"
        )
    for run, tasks in ((run_old, only_old), (run_new, only_new)):
        if tasks:
            n = int(run.items["task"].isin(tasks).sum())
            warnings.warn(
                f"{len(tasks)} task(s) only in {run.path}, not compared ({n} items): "
                f"{_list(tasks)}",
                UserWarning,
                stacklevel=2,
            )
    metrics, lacking = _choose_metrics(run_old, run_new, common, metric)
    if lacking:
        warnings.warn(
            f"{len(lacking)} task(s) without the metric {metric!r} in both runs, not compared: "
            f"{_list(lacking)}",
            UserWarning,
            stacklevel=2,
        )
    return _pair(run_old, run_new, metrics, threshold, only_old, only_new, tuple(lacking))


def _pair(
    old: EvalRun,
    new: EvalRun,
    metrics: dict[str, str],
    threshold: float | None,
    only_old_tasks: tuple[str, ...],
    only_new_tasks: tuple[str, ...],
    lacking: tuple[str, ...],
) -> EvalLogInputs:
    kept = list(metrics)
    o_mask = old.items["task"].isin(kept).to_numpy()
    n_mask = new.items["task"].isin(kept).to_numpy()
    o_items, n_items = old.items[o_mask], new.items[n_mask]
    o_vals = _metric_column(old, metrics)[o_mask]
    n_vals = _metric_column(new, metrics)[n_mask]
    o_index = pd.MultiIndex.from_arrays([o_items["task"], o_items["key"]])
    n_index = pd.MultiIndex.from_arrays([n_items["task"], n_items["key"]])
    pos = o_index.get_indexer(n_index)
    matched = pos >= 0
    only_new = ~matched
    only_old = ~o_index.isin(n_index)

    # Matched rows: the new run's order, and the old run's row for each.
    m_new = n_items[matched].reset_index(drop=True)
    m_old = o_items.iloc[pos[matched]].reset_index(drop=True)
    v_new, v_old = n_vals[matched], o_vals[pos[matched]]
    hashed = np.zeros(len(m_new), dtype=bool)
    changed = np.zeros(len(m_new), dtype=bool)
    for column in HASH_COLUMNS:
        both, differ = _differs(m_new[column], m_old[column])
        hashed |= both
        changed |= differ
    for column in ("prompt", "target"):
        both, differ = _differs(m_new[column], m_old[column])
        changed |= differ & ~hashed
    errored = (m_new["errored"].to_numpy(bool) | m_old["errored"].to_numpy(bool)) & ~changed
    compared = ~changed & ~errored

    # Every compared item must hold a finite number for its task's metric, in both runs.
    for values, items in ((v_old, m_old), (v_new, m_new)):
        bad = compared & ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            task = str(items["task"].iat[row])
            what = "no numeric value" if np.isnan(values[row]) else f"the value {values[row]}"
            raise InputError(
                f"{items['record'].iat[row]}: {what} for the metric {metrics[task]!r} (task "
                f"{task!r}); every compared item of a task must carry a finite number for it"
            )

    task_of = m_new["task"].to_numpy(dtype=object)
    rows = []
    for task in kept:
        in_task = task_of == task
        sel = compared & in_task
        values = np.concatenate([v_old[sel], v_new[sel]])
        binary = bool(np.isin(values, (0.0, 1.0)).all())
        if not binary and threshold is None:
            odd = values[~np.isin(values, (0.0, 1.0))][0]
            raise InputError(
                f"task {task!r}: the metric {metrics[task]!r} takes values other than 0 and 1 "
                f"(e.g. {odd:g} in {new.path if odd in v_new[sel] else old.path}); pass "
                "score_threshold (--score-threshold) to count an item correct when its score "
                "is at least the threshold"
            )
        rows.append(
            {
                "task": task,
                "metric": metrics[task],
                "binary": binary,
                "n_old": int((old.items["task"] == task).sum()),
                "n_new": int((new.items["task"] == task).sum()),
                "n_compared": int(sel.sum()),
                "changed": int((changed & in_task).sum()),
                "errored": int((errored & in_task).sum()),
                "only_old": int((only_old & (o_items["task"] == task).to_numpy()).sum()),
                "only_new": int((only_new & (n_items["task"] == task).to_numpy()).sum()),
            }
        )
    tasks = pd.DataFrame(rows).set_index("task")
    excluded = pd.concat(
        [
            pd.DataFrame(
                {"task": m_new["task"][changed], "key": m_new["key"][changed], "reason": "changed"}
            ),
            pd.DataFrame(
                {"task": m_new["task"][errored], "key": m_new["key"][errored], "reason": "errored"}
            ),
            pd.DataFrame(
                {
                    "task": o_items["task"][only_old],
                    "key": o_items["key"][only_old],
                    "reason": "only_old",
                }
            ),
            pd.DataFrame(
                {
                    "task": n_items["task"][only_new],
                    "key": n_items["key"][only_new],
                    "reason": "only_new",
                }
            ),
        ],
        ignore_index=True,
    )
    _warn_excluded(tasks, old.path, new.path)
    n_compared = int(compared.sum())
    if n_compared == 0:
        raise InputError(
            f"{old.path} and {new.path}: no item left to compare "
            f"({_exclusion_text(tasks, old.path, new.path)})"
        )

    keys = m_new["key"].to_numpy(dtype=object)[compared]
    task_names = task_of[compared]
    v_old, v_new = v_old[compared], v_new[compared]
    if threshold is None:
        right_old, right_new = v_old == 1.0, v_new == 1.0
    else:
        right_old, right_new = v_old >= threshold, v_new >= threshold
    ids = np.array([f"{t}:{k}" for t, k in zip(task_names, keys, strict=True)], dtype=object)
    inputs = ComparisonInputs(
        ids=ids,
        id_source="task:key",
        target=np.zeros(n_compared, dtype=np.int64),
        old_topk=np.where(right_old, 0, 1).astype(np.int64)[:, None],
        new_topk=np.where(right_new, 0, 1).astype(np.int64)[:, None],
        old_confidence=None,
        new_confidence=None,
        class_names=list(CLASS_NAMES),
        old_class_names=list(CLASS_NAMES),
        class_map=None,
        groups={"task": np.asarray(task_names, dtype=object)},
        n_rows_old=len(old.items),
        n_rows_new=len(new.items),
    )
    return EvalLogInputs(
        inputs=inputs,
        old=old,
        new=new,
        tasks=tasks,
        excluded=excluded,
        tasks_only_old=only_old_tasks,
        tasks_only_new=only_new_tasks,
        tasks_without_metric=lacking,
        score_threshold=threshold,
        old_values=v_old,
        new_values=v_new,
    )


def _exclusion_text(tasks: pd.DataFrame, old: str, new: str) -> str:
    words = {
        "changed": "changed between the runs (document, prompt or target)",
        "errored": "errored",
        "only_old": f"only in {old}",
        "only_new": f"only in {new}",
    }
    parts = []
    for reason in REASONS:
        per_task = tasks[reason][tasks[reason] > 0]
        if len(per_task):
            where = ", ".join(f"{t} {n}" for t, n in list(per_task.items())[:5])
            if len(per_task) > 5:
                where += f" and {len(per_task) - 5} more tasks"
            parts.append(f"{int(per_task.sum())} {words[reason]} ({where})")
    return "; ".join(parts)


def _warn_excluded(tasks: pd.DataFrame, old: str, new: str) -> None:
    total = int(tasks[list(REASONS)].to_numpy().sum())
    if total:
        warnings.warn(
            f"excluded {total} item(s) from the comparison: {_exclusion_text(tasks, old, new)}",
            UserWarning,
            stacklevel=4,
        )
