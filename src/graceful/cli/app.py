r"""The ``graceful`` command line: a thin layer over :mod:`graceful.release`.

Exit status: 0 when the update passes (or no gate is set), 1 only when it breaks a gate bar,
2 on every failure (one line on stderr, no traceback, no output file written). ``compare``
stages its files and logs to MLflow, when asked, from the staged folder; the files move into
``--out`` together once every step has succeeded, so a run MLflow refuses (exit 2) leaves
nothing behind either. A library warning (how ``--scores auto`` read a file) is one line on
stderr.

Help texts are rich markup (``rich_markup_mode="rich"``, set explicitly because typer's
default has changed between versions): a literal ``[`` in them is written ``\[``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from graceful.cli._common import errors, plain, read_json
from graceful.cli.gallery import gallery_app
from graceful.errors import InputError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="Replace a deployed model gracefully: measure and gate regressions between versions.",
)


class ScoreKind(str, Enum):
    """How to read score columns."""

    auto = "auto"
    logits = "logits"
    probs = "probs"


class InputFormat(str, Enum):
    """What the two inputs are: prediction files, or one kind of evaluation log."""

    auto = "auto"
    predictions = "predictions"
    lm_eval = "lm-eval"
    inspect = "inspect"
    helm = "helm"
    table = "table"


class IntervalKind(str, Enum):
    """Interval method for rates."""

    wilson = "wilson"
    exact = "exact"


class UpdateRule(str, Enum):
    """Rule deciding a stored label when a new model's prediction arrives."""

    replace_label = "replace"
    max_belief = "max-belief"
    cost_ratio = "cost-ratio"


class ConfusionForm(str, Enum):
    """Form of the estimated confusion matrices."""

    full = "full"
    diagonal = "diagonal"


class PriorKind(str, Enum):
    """Prior over the classes."""

    validation = "validation"
    uniform = "uniform"


def _read_class_map(path: Path) -> dict[str, str]:
    data = read_json(path, "--class-map")
    if not isinstance(data, dict) or not all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in data.values()
    ):
        raise InputError(
            f"--class-map {path}: expected a JSON object mapping old class names to new ones"
        )
    return {str(k): str(v) for k, v in data.items()}


def _print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    table = Table(title=plain(summary["title"]), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{summary['confidence_level']:.0%} interval", justify="right")
    for name, m in summary["metrics"].items():
        ratio = name == "relative_negative_flip_rate"

        def fmt(v: float | None, ratio: bool = ratio) -> str:
            if v is None:
                return "undefined"
            return f"{v:.3f}" if ratio else f"{100 * v:.2f}%"

        interval = "" if m["low"] is None else f"[{fmt(m['low'])}, {fmt(m['high'])}]"
        table.add_row(name, fmt(m["value"]), interval)
    console.print(table)
    mc = summary["mcnemar"]
    console.print(
        f"McNemar exact test: {mc['negative_flips']} negative vs {mc['positive_flips']} positive"
        f" flips, p = {mc['p_value']:.3g} -> {mc['verdict']}"
    )
    gate = summary.get("gate")
    if gate:
        for check in gate["checks"]:
            status = "[green]pass[/green]" if check["passed"] else "[red]FAIL[/red]"
            console.print(f"gate {status}: {check['name']}: {check['detail']}")


def _input_format(format: InputFormat, old: Path, new: Path) -> str:
    """The format to read: ``auto`` is an evaluation log when either input is detected as one."""
    if format is not InputFormat.auto:
        return str(format.value)
    from graceful.io.eval_logs import detect_eval_log

    if detect_eval_log(old) is None and detect_eval_log(new) is None:
        return "predictions"
    return "auto"


def _print_tasks(summary: dict[str, Any]) -> None:
    """Per-task flips, the correctness rule, and how the scores moved."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    logs = summary["eval_logs"]
    level = f"{summary['confidence_level']:.0%}"
    table = Table(title=f"per task ({plain(logs['rule'])})", title_justify="left")
    for column in ("task", "n", "error old", "error new", "NFR", f"NFR {level} interval", "PFR"):
        table.add_column(column, justify="left" if column == "task" else "right")

    def pct(v: float | None) -> str:
        return "undefined" if v is None else f"{100 * v:.2f}%"

    for row in summary["by_group"].get("task", []):
        table.add_row(
            plain(row["group"]),
            str(row["n"]),
            pct(row["error_rate_old"]),
            pct(row["error_rate_new"]),
            pct(row["negative_flip_rate"]),
            f"[{pct(row['negative_flip_rate_low'])}, {pct(row['negative_flip_rate_high'])}]",
            pct(row["positive_flip_rate"]),
        )
    console.print(table)
    change = logs["score_changes"]["overall"]
    if logs["score_threshold"] is not None and change["decreased"]:
        console.print(
            f"score fell on {change['decreased']} of {change['n']} items: total"
            f" {change['total_decrease']:.4g}, mean {change['mean_decrease']:.4g} per item"
        )
    excluded = logs["excluded"]["total"]
    if excluded:
        console.print(f"excluded from the comparison: {excluded} items (see summary.json)")


@app.command()
def compare(
    versions: Annotated[
        list[Path],
        typer.Argument(
            metavar="OLD NEW [NEWER]",
            help="The old model's predictions (.csv/.parquet/.jsonl/.npy/.npz) or evaluation"
            " log (see --format), then the new model's, of the same kind; more versions, oldest"
            " first, compare a chain (every version against every earlier one).",
            show_default=False,
        ),
    ],
    format: Annotated[
        InputFormat,
        typer.Option(
            "--format",
            help="predictions; an evaluation log: lm-eval (samples_*.jsonl or the output"
            " folder), inspect (.eval/.json or a folder), helm (a run or suite folder), table"
            " (per-item correctness or scores); auto: an evaluation log when detected, else"
            " predictions (a table must be named).",
        ),
    ] = InputFormat.auto,
    metric: Annotated[
        str | None,
        typer.Option(
            help=r"Evaluation logs: the per-item metric to compare, e.g. acc \[default: each"
            " task's only metric, else the format's usual one]."
        ),
    ] = None,
    score_threshold: Annotated[
        float | None,
        typer.Option(
            help="Evaluation logs: an item is correct when its score is >= this (needed for"
            " scores that are not 0/1, such as ROUGE or F1)."
        ),
    ] = None,
    task_col: Annotated[
        str | None,
        typer.Option(help=r"--format table: the task column \[default: 'task' if present]."),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Third file holding the labels (and ids).")
    ] = None,
    id_col: Annotated[
        str | None,
        typer.Option(help=r"Id column to join on \[default: 'id' if present, else row position]."),
    ] = None,
    label_col: Annotated[str, typer.Option(help="Label column.")] = "label",
    pred_col: Annotated[
        str | None,
        typer.Option(help=r"Hard-label prediction column \[default: 'pred' if present]."),
    ] = None,
    score_prefix: Annotated[
        str | None,
        typer.Option(
            help=r"Prefix of score columns, e.g. 'logit_' \[default: auto: logit_/prob_/score_]."
        ),
    ] = None,
    scores: Annotated[
        ScoreKind, typer.Option(help="Score columns hold logits or probabilities.")
    ] = ScoreKind.auto,
    class_map: Annotated[
        Path | None, typer.Option(help="JSON object mapping old class names to new class names.")
    ] = None,
    group_col: Annotated[
        list[str] | None, typer.Option(help="Column to break results down by (repeatable).")
    ] = None,
    top_k: Annotated[
        int, typer.Option(help="A model is right when the label is in its top k.")
    ] = 1,
    out: Annotated[
        str,  # not Path: an empty --out "$UNSET" must be refused, not read as "."
        typer.Option(metavar="<path>", help="Folder for summary.json and report.html."),
    ] = "graceful-report",
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    interval: Annotated[
        IntervalKind, typer.Option(help="Interval method for rates.")
    ] = IntervalKind.wilson,
    alpha: Annotated[float, typer.Option(help="Significance level of McNemar's test.")] = 0.05,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the relative NFR.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    max_examples: Annotated[int, typer.Option(help="Flipped examples listed in the report.")] = 500,
    max_nfr: Annotated[
        float | None, typer.Option(help="Gate: fail (exit 1) when the NFR is above this fraction.")
    ] = None,
    max_rel_nfr: Annotated[
        float | None, typer.Option(help="Gate: fail when the relative NFR is above this.")
    ] = None,
    min_btc: Annotated[
        float | None,
        typer.Option(help="Gate: fail when backward trust compatibility is below this."),
    ] = None,
    fail_on_significant_regression: Annotated[
        bool,
        typer.Option(
            help="Gate: fail when McNemar's test finds the new model significantly worse."
        ),
    ] = False,
    gate_against_first: Annotated[
        bool,
        typer.Option(
            help="Three or more versions: hold every version to the gate against the first"
            " one too, not only against its predecessor."
        ),
    ] = False,
    html: Annotated[bool, typer.Option(help="Write the HTML report.")] = True,
    quiet: Annotated[
        bool, typer.Option(help="Print only the report path and the verdict.")
    ] = False,
    mlflow_experiment: Annotated[
        str | None,
        typer.Option(
            help="Also log the metrics, the gate's verdict and the report as a run of this"
            r" MLflow experiment (needs graceful\[mlflow])."
        ),
    ] = None,
    mlflow_tracking_uri: Annotated[
        str | None,
        typer.Option(
            help=r"Also log to MLflow, at this tracking URI \[default: $MLFLOW_TRACKING_URI,"
            " else MLflow's own]."
        ),
    ] = None,
) -> None:
    """Compare two models' predictions: metrics, significance, breakdowns, report and gate.

    With three or more versions: each version's flips against every earlier one, the
    errors a version re-introduces, and the gate over each consecutive pair.
    """
    with errors("compare"):
        arguments = dict(locals())
        paths = arguments.pop("versions")
        if len(paths) < 2:
            raise InputError(
                "expected at least two versions (OLD NEW [NEWER]...), got "
                f"{len(paths)}: {', '.join(map(str, paths))}"
            )
        if len(paths) == 2:
            arguments.pop("gate_against_first")  # one pair: against its predecessor, the first
            _compare(old=paths[0], new=paths[1], **arguments)
        else:
            _compare_chain(versions=paths, **arguments)


def _warn(command: str, caught: list[warnings.WarningMessage]) -> None:
    """Each warning the library gave as one line on stderr."""
    for item in caught:
        typer.echo(f"graceful {command}: warning: {' '.join(str(item.message).split())}", err=True)


def _check_mlflow(experiment: str | None, tracking_uri: str | None) -> None:
    from graceful.release.mlflow import require_mlflow

    require_mlflow()  # before anything is computed or written
    for option, value in (
        ("--mlflow-experiment", experiment),
        ("--mlflow-tracking-uri", tracking_uri),
    ):
        if value is not None and not value.strip():
            raise InputError(f"{option} must not be empty")


def _output_folder(out: str, max_examples: int) -> Path:
    if max_examples < 0:
        raise InputError(f"--max-examples must be >= 0, got {max_examples}")
    if not out.strip():
        raise InputError("--out must not be empty")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    return folder


def _gate(
    max_nfr: float | None,
    max_rel_nfr: float | None,
    min_btc: float | None,
    fail_on_significant_regression: bool,
) -> Any:
    from graceful.release import Gate

    return Gate(
        max_nfr=max_nfr,
        max_rel_nfr=max_rel_nfr,
        min_btc=min_btc,
        fail_on_significant_regression=fail_on_significant_regression,
    )


def _check_kind_options(
    fmt: str,
    inputs: str,
    *,
    metric: str | None,
    score_threshold: float | None,
    task_col: str | None,
    labels: Path | None,
    pred_col: str | None,
    score_prefix: str | None,
    scores: ScoreKind,
    class_map: Path | None,
    group_col: list[str] | None,
    top_k: int,
    label_col: str,
    id_col: str | None,
) -> None:
    """Refuse the options of prediction files with logs, and those of logs with predictions."""
    if fmt == "predictions":
        eval_only: tuple[tuple[str, object], ...] = (
            ("--metric", metric),
            ("--score-threshold", score_threshold),
            ("--task-col", task_col),
        )
        for option, given in eval_only:
            if given is not None:
                raise InputError(
                    f"{option} applies to evaluation logs (--format lm-eval, inspect, helm or"
                    f" table), but {inputs} are read as predictions"
                )
        return
    for option, unset in (
        ("--labels", labels is None),
        ("--pred-col", pred_col is None),
        ("--score-prefix", score_prefix is None),
        ("--scores", scores is ScoreKind.auto),
        ("--class-map", class_map is None),
        ("--group-col", not group_col),
        ("--top-k", top_k == 1),
        ("--label-col", label_col == "label"),
    ):
        if not unset:
            raise InputError(
                f"{option} applies to prediction files, not to evaluation logs"
                " (their tasks are the groups)"
            )
    if id_col is not None and fmt != "table":
        raise InputError("--id-col applies to --format table, not to evaluation logs")


def _compare(
    *,
    old: Path,
    new: Path,
    format: InputFormat,
    metric: str | None,
    score_threshold: float | None,
    task_col: str | None,
    labels: Path | None,
    id_col: str | None,
    label_col: str,
    pred_col: str | None,
    score_prefix: str | None,
    scores: ScoreKind,
    class_map: Path | None,
    group_col: list[str] | None,
    top_k: int,
    out: str,
    confidence: float,
    interval: IntervalKind,
    alpha: float,
    bootstrap: int,
    seed: int,
    max_examples: int,
    max_nfr: float | None,
    max_rel_nfr: float | None,
    min_btc: float | None,
    fail_on_significant_regression: bool,
    html: bool,
    quiet: bool,
    mlflow_experiment: str | None,
    mlflow_tracking_uri: str | None,
) -> None:
    from graceful.io.atomic import atomic_folder
    from graceful.release import compare_eval_logs, compare_files, log_comparison

    log_mlflow = mlflow_experiment is not None or mlflow_tracking_uri is not None
    run_id = None
    if log_mlflow:
        _check_mlflow(mlflow_experiment, mlflow_tracking_uri)
    folder = _output_folder(out, max_examples)
    gate = _gate(max_nfr, max_rel_nfr, min_btc, fail_on_significant_regression)
    fmt = _input_format(format, old, new)
    options: dict[str, Any] = {
        "confidence": confidence,
        "interval_method": interval.value,
        "alpha": alpha,
        "n_resamples": bootstrap,
        "random_state": seed,
        "gate": gate,
    }
    _check_kind_options(
        fmt,
        f"{old} and {new}",
        metric=metric,
        score_threshold=score_threshold,
        task_col=task_col,
        labels=labels,
        pred_col=pred_col,
        score_prefix=score_prefix,
        scores=scores,
        class_map=class_map,
        group_col=group_col,
        top_k=top_k,
        label_col=label_col,
        id_col=id_col,
    )
    with warnings.catch_warnings(record=True) as caught:
        if fmt == "predictions":
            mapping = _read_class_map(class_map) if class_map is not None else None
            result = compare_files(
                old,
                new,
                labels=labels,
                id_col=id_col,
                label_col=label_col,
                pred_col=pred_col,
                score_prefix=score_prefix,
                scores=scores.value,
                class_map=mapping,
                group_cols=tuple(group_col or ()),
                top_k=top_k,
                **options,
            )
        else:
            result = compare_eval_logs(
                old,
                new,
                format=fmt,  # type: ignore[arg-type]
                metric=metric,
                score_threshold=score_threshold,
                id_col=id_col,
                task_col=task_col,
                **options,
            )
        summary = result.summary(
            max_examples=max_examples,
            paths={
                "old": str(old),
                "new": str(new),
                "labels": None if labels is None else str(labels),
            },
        )
    _warn("compare", caught)
    page = None
    if html:
        from graceful.report import render_html

        page = render_html(summary)
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    # Every output is staged first and published together: a failure at any step, the
    # MLflow logging included, leaves --out as it was.
    try:
        with atomic_folder(folder) as stage:
            (stage / "summary.json").write_text(text, encoding="utf-8")
            if page is not None:
                (stage / "report.html").write_text(page, encoding="utf-8")
            if log_mlflow:  # raises InputError only (MLflow's refusals included)
                run_id = log_comparison(
                    summary,
                    run_name=summary["title"],
                    experiment=mlflow_experiment,
                    tracking_uri=mlflow_tracking_uri,
                    report=None if page is None else stage / "report.html",
                )
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write: {exc.strerror or exc}") from None

    if quiet:
        typer.echo(str(folder / ("report.html" if html else "summary.json")))
    else:
        _print_table(summary)
        if summary.get("eval_logs"):
            _print_tasks(summary)
        typer.echo(f"summary: {folder / 'summary.json'}")
        if html:
            typer.echo(f"report:  {folder / 'report.html'}")
        if run_id is not None:
            typer.echo(f"mlflow:  run {run_id}")
    if result.gate is not None:
        typer.echo(
            "gate: PASSED" if result.gate.passed else "gate: FAILED", err=not result.gate.passed
        )
        if not result.gate.passed:
            raise typer.Exit(1)


def _compare_chain(
    *,
    versions: list[Path],
    format: InputFormat,
    metric: str | None,
    score_threshold: float | None,
    task_col: str | None,
    labels: Path | None,
    id_col: str | None,
    label_col: str,
    pred_col: str | None,
    score_prefix: str | None,
    scores: ScoreKind,
    class_map: Path | None,
    group_col: list[str] | None,
    top_k: int,
    out: str,
    confidence: float,
    interval: IntervalKind,
    alpha: float,
    bootstrap: int,
    seed: int,
    max_examples: int,
    max_nfr: float | None,
    max_rel_nfr: float | None,
    min_btc: float | None,
    fail_on_significant_regression: bool,
    gate_against_first: bool,
    html: bool,
    quiet: bool,
    mlflow_experiment: str | None,
    mlflow_tracking_uri: str | None,
) -> None:
    """Three or more versions: :func:`graceful.release.compare_chain`, its summary and report."""
    from graceful.io.atomic import atomic_folder
    from graceful.release import compare_chain
    from graceful.release.chain import version_kind

    for option, value in (
        ("--mlflow-experiment", mlflow_experiment),
        ("--mlflow-tracking-uri", mlflow_tracking_uri),
    ):
        if value is not None:
            raise InputError(f"{option} applies to two versions, not to a chain of {len(versions)}")
    if class_map is not None:
        raise InputError(
            f"--class-map applies to two versions; a chain of {len(versions)} needs one class space"
        )
    folder = _output_folder(out, max_examples)
    gate = _gate(max_nfr, max_rel_nfr, min_btc, fail_on_significant_regression)
    fmt = version_kind(versions, format.value)
    _check_kind_options(
        fmt,
        ", ".join(map(str, versions)),
        metric=metric,
        score_threshold=score_threshold,
        task_col=task_col,
        labels=labels,
        pred_col=pred_col,
        score_prefix=score_prefix,
        scores=scores,
        class_map=class_map,
        group_col=group_col,
        top_k=top_k,
        label_col=label_col,
        id_col=id_col,
    )
    read: dict[str, Any]
    if fmt == "predictions":
        read = {
            "labels": labels,
            "id_col": id_col,
            "label_col": label_col,
            "pred_col": pred_col,
            "score_prefix": score_prefix,
            "scores": scores.value,
            "group_cols": tuple(group_col or ()),
        }
    else:
        read = {
            "metric": metric,
            "score_threshold": score_threshold,
            "id_col": id_col,
            "task_col": task_col,
        }
    with warnings.catch_warnings(record=True) as caught:
        chain = compare_chain(
            versions,
            format=fmt,  # type: ignore[arg-type]
            gate=gate,
            gate_against_first=gate_against_first,
            top_k=top_k,
            confidence=confidence,
            interval_method=interval.value,
            alpha=alpha,
            n_resamples=bootstrap,
            random_state=seed,
            **read,
        )
        summary = chain.summary(
            max_examples=max_examples, labels=None if labels is None else str(labels)
        )
    # the middle versions are read twice (with each neighbour): say each thing once
    once = {str(w.message): w for w in reversed(caught)}
    _warn("compare", [w for w in caught if once[str(w.message)] is w])
    page = None
    if html:
        from graceful.report import render_html

        page = render_html(summary)
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    try:
        with atomic_folder(folder) as stage:
            (stage / "summary.json").write_text(text, encoding="utf-8")
            if page is not None:
                (stage / "report.html").write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    if quiet:
        typer.echo(str(folder / ("report.html" if html else "summary.json")))
    else:
        _print_chain(summary)
        if summary.get("eval_logs"):
            _print_tasks(summary)
        typer.echo(f"summary: {folder / 'summary.json'}")
        if html:
            typer.echo(f"report:  {folder / 'report.html'}")
    if chain.gate_configured:
        passed = chain.passed
        typer.echo("gate: PASSED" if passed else "gate: FAILED", err=not passed)
        if not passed:
            raise typer.Exit(1)


def _print_chain(summary: dict[str, Any]) -> None:
    """Each version's error rate, every pair's flips, the re-introduced errors, the gate."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    chain = summary["versions"]
    level = f"{summary['confidence_level']:.0%}"

    def pct(v: float | None) -> str:
        return "undefined" if v is None else f"{100 * v:.2f}%"

    def interval(row: dict[str, Any], name: str) -> str:
        return f"[{pct(row[name + '_low'])}, {pct(row[name + '_high'])}]"

    again = {row["version"]: row for row in chain["reintroduced"]}
    table = Table(
        title=f"{len(chain['names'])} versions, {chain['n_compared']} items compared in every"
        f" one ({chain['n_excluded']} left out)",
        title_justify="left",
    )
    for column in ("version", "error", f"{level} interval", "re-introduced errors"):
        table.add_column(column, justify="left" if column == "version" else "right")
    for row in chain["error_rates"]:
        back = again.get(row["version"])
        table.add_row(
            plain(row["name"]),
            pct(row["error_rate"]),
            interval(row, "error_rate"),
            "" if back is None else f"{back['count']} ({pct(back['rate'])})",
        )
    console.print(table)
    pairs = Table(title="flips of each version against every earlier one", title_justify="left")
    for column in ("old", "new", "NFR", f"NFR {level} interval", "PFR", f"PFR {level} interval"):
        pairs.add_column(column, justify="left" if column in ("old", "new") else "right")
    for row in chain["pairs"]:
        pairs.add_row(
            plain(row["old_name"]),
            plain(row["new_name"]),
            pct(row["negative_flip_rate"]),
            interval(row, "negative_flip_rate"),
            pct(row["positive_flip_rate"]),
            interval(row, "positive_flip_rate"),
        )
    console.print(pairs)
    gate = summary.get("gate")
    if gate:
        for check in gate["checks"]:
            status = "[green]pass[/green]" if check["passed"] else "[red]FAIL[/red]"
            console.print(
                f"gate {status}: {plain(check['pair'])}: {check['name']}: {check['detail']}"
            )
    headline = chain["headline"]
    console.print(
        f"details of the last step, {plain(chain['names'][headline['old']])} ->"
        f" {plain(chain['names'][headline['new']])}: summary.json and the report"
    )


@app.command("update-predictions")
def update_predictions(
    val: Annotated[
        list[Path],
        typer.Option(
            metavar="<file>",
            help="Labelled validation predictions of one model version (repeat: one per version,"
            " the stored model's first).",
        ),
    ],
    stored: Annotated[
        Path,
        typer.Option(
            metavar="<file>", help="The stored (deployed) model's predictions on the data set."
        ),
    ],
    new: Annotated[
        list[Path],
        typer.Option(
            metavar="<file>",
            help="A new version's predictions on the same samples (repeatable, in order).",
        ),
    ],
    out: Annotated[
        str,  # not Path: an empty --out "$UNSET" must be refused, not read as "."
        typer.Option(metavar="<file>", help="Updated predictions: .parquet, .csv or .jsonl."),
    ],
    rule: Annotated[
        UpdateRule, typer.Option(help="Replace, argmax of the posterior, or the cost-ratio rule.")
    ] = UpdateRule.max_belief,
    cost_ratio: Annotated[
        float | None,
        typer.Option(
            help="|c_NF / c_PF| of --rule cost-ratio: change a label only if p(new)/p(old)"
            " exceeds it (e.g. 10)."
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            metavar="<fraction|count>",
            help="Samples each new version may be run on, the most uncertain first: a fraction"
            r" (0.3) or a count (500) \[default: all].",
        ),
    ] = None,
    form: Annotated[
        ConfusionForm,
        typer.Option(help="Full confusion matrices, or per-class accuracy only (diagonal)."),
    ] = ConfusionForm.full,
    smoothing: Annotated[
        float,
        typer.Option(
            help="Pseudo-observations per class, spread over its confusion row (and the prior)."
        ),
    ] = 1.0,
    prior: Annotated[
        PriorKind, typer.Option(help="Validation class frequencies, or uniform.")
    ] = PriorKind.validation,
    posterior: Annotated[bool, typer.Option(help="Write the posterior_<class> columns.")] = True,
    id_col: Annotated[
        str | None,
        typer.Option(help=r"Id column to join on \[default: 'id' if present, else row position]."),
    ] = None,
    label_col: Annotated[str, typer.Option(help="Label column.")] = "label",
    pred_col: Annotated[
        str | None,
        typer.Option(help=r"Hard-label prediction column \[default: 'pred' if present]."),
    ] = None,
    score_prefix: Annotated[
        str | None,
        typer.Option(
            help=r"Prefix of score columns, e.g. 'logit_' \[default: auto: logit_/prob_/score_]."
        ),
    ] = None,
    scores: Annotated[
        ScoreKind, typer.Option(help="Score columns hold logits or probabilities.")
    ] = ScoreKind.auto,
) -> None:
    """Update stored predictions with new model versions, without retraining.

    A posterior over each sample's label (Träuble et al., NeurIPS 2021);
    a stored label changes only as --rule says. With labels, prints the
    error and flip rates of the update and of replacing every prediction.
    """
    with errors("update-predictions"):
        _update_predictions(**locals())


def _parse_budget(text: str | None) -> int | float | None:
    """``"500"`` -> 500 (a count), ``"0.3"`` -> 0.3 (a fraction); the library checks ranges."""
    if text is None:
        return None
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        return float(value)
    except ValueError:
        raise InputError(
            f"--budget: expected a fraction in [0, 1] (0.3) or a count of samples (500), "
            f"got {text!r}"
        ) from None


def _update_predictions(
    *,
    val: list[Path],
    stored: Path,
    new: list[Path],
    out: str,
    rule: UpdateRule,
    cost_ratio: float | None,
    budget: str | None,
    form: ConfusionForm,
    smoothing: float,
    prior: PriorKind,
    posterior: bool,
    id_col: str | None,
    label_col: str,
    pred_col: str | None,
    score_prefix: str | None,
    scores: ScoreKind,
) -> None:
    from graceful.release import update_prediction_files

    if not out.strip():
        raise InputError("--out must not be empty")
    if Path(out).is_dir():
        raise InputError(f"--out {out}: is a folder, expected a file")
    with warnings.catch_warnings(record=True) as caught:
        result = update_prediction_files(
            val,
            stored,
            new,
            out=out,
            rule=rule.value.replace("-", "_"),  # type: ignore[arg-type]
            cost_ratio=cost_ratio,
            budget=_parse_budget(budget),
            form=form.value,
            smoothing=smoothing,
            prior=prior.value,
            posterior=posterior,
            id_col=id_col,
            label_col=label_col,
            pred_col=pred_col,
            score_prefix=score_prefix,
            scores=scores.value,
        )
    _warn("update-predictions", caught)
    _print_update(result)


def _print_update(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    n = len(result.state.labels)
    runs = ", ".join(str(e) for e in result.evaluated[1:])
    console.print(
        f"{len(result.evaluated)} model versions, {n} samples; re-evaluated per new version: {runs}"
    )
    if result.metrics is None:
        changed = int(result.table["changed"].sum())
        console.print(f"changed {changed} of {n} stored labels (no labels: no error rates)")
    else:
        table = Table(title="against the stored predictions", title_justify="left")
        for column in ("", "error", "NFR", "PFR", "changed"):
            table.add_column(column, justify="left" if not column else "right")
        for name, row in result.metrics.iterrows():
            table.add_row(
                plain(name),
                f"{100 * row['error_rate']:.2f}%",
                f"{100 * row['negative_flip_rate']:.2f}%",
                f"{100 * row['positive_flip_rate']:.2f}%",
                str(int(row["changed"])),
            )
        console.print(table)
    console.print(f"written: {plain(result.out)}")


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the predictions, gallery and report.")
    ] = Path("demo-output"),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The whole idea on real data (digits), ending in one HTML report.

    An update without new errors, a gallery the new model searches without a backfill,
    then a partial backfill.
    """
    with errors("demo"):
        _demo(out, progress)


def _demo(out: Path, progress: bool) -> None:
    from graceful.demo import run_demo

    story = run_demo(out, progress=progress, log=lambda line: typer.echo(line, err=True))
    for name in ("naive", "graceful"):
        m = story["updates"][name]["metrics"]
        typer.echo(
            f"old -> {name:8s} error {100 * m['error_rate_old']:.2f}% -> "
            f"{100 * m['error_rate_new']:.2f}%,"
            f" negative flip rate {100 * m['negative_flip_rate']:.2f}%"
        )
    r = story["retrieval"]
    typer.echo(
        f"top-1 retrieval: old->old {100 * r['old->old']['top1']:.1f}%,"
        f" naive->old {100 * r['naive->old']['top1']:.1f}%,"
        f" graceful->old {100 * r['graceful->old']['top1']:.1f}%"
    )
    b = story["backfill"]
    typer.echo(
        f"backfill: {b['done']} of {b['total']} items re-embedded; top-1 through the mixed gallery"
        f" {100 * b['top1_mixed_gallery']:.1f}%"
    )
    typer.echo(f"report: {out / 'report.html'}  ({story['timings']['total']:.0f} s)")


app.add_typer(gallery_app, name="gallery")


def _for_one_pass_over_large_files() -> None:
    """Memory settings of this process for reading large files once (the command line).

    * NumPy stops asking the kernel for transparent huge pages. It advises them for every
      array of 4 MB or more; where the kernel then compacts memory to find them (the
      common ``defrag = madvise`` setting), the first write to fresh memory is about five
      times slower (0.73 s against 0.14 s for 320 MB on the benchmark machine), and
      ``graceful compare`` on a large pair fills about 1 GB of new arrays once. The knob
      is NumPy's own (``NUMPY_MADVISE_HUGEPAGE`` at import time); where this NumPy lacks
      it, nothing changes.
    * Arrow allocates from the C library's heap (``ARROW_DEFAULT_MEMORY_POOL=system``, unless
      set already): its batch buffers are then reused from one batch to the next instead
      of being returned to the kernel and faulted in again (about 0.4 s less kernel time
      on the 10M-row pair).
    """
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if callable(setter):
        setter(False)
    if "pyarrow" not in sys.modules:  # read when Arrow makes its default pool
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def main() -> None:
    """Console entry point."""
    _for_one_pass_over_large_files()
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
