"""Log a release comparison to MLflow (optional: ``pip install 'graceful[mlflow]'``).

:func:`log_comparison` records what ``graceful compare`` measured as one MLflow run, so
updates can be tracked across releases in the MLflow UI; :func:`mlflow_records` is the
same mapping without MLflow, for logging into a run of your own. With the default prefix
``"graceful."``:

- metrics: each metric of :data:`graceful.metrics.METRICS` (``graceful.<name>``), its
  interval bounds (``graceful.<name>.low``, ``graceful.<name>.high``), McNemar's p-value
  (``graceful.mcnemar.p_value``) and the flip counts (``graceful.counts.<cell>``);
  undefined values (``None``, NaN) and infinite ones are left out, since MLflow has no
  "undefined" metric;
- params: the settings (``graceful.confidence_level``, ``graceful.interval_method``,
  ``graceful.top_k``, ``graceful.mcnemar.alpha``, the input paths when known) and each gate
  bar's threshold (``graceful.gate.<bar>.threshold``);
- tags: the gate's verdict (``graceful.gate``: ``passed``, ``failed`` or ``not set``), each
  bar's (``graceful.gate.<bar>``) and McNemar's (``graceful.mcnemar.verdict``);
- artifacts (:func:`log_comparison` only): ``summary.json`` and, when given, the HTML report.

MLflow is imported only when logging; the lightweight ``mlflow-skinny`` distribution is
enough.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from graceful._extras import require
from graceful.errors import InputError

from .compare import Comparison, _clean

__all__ = ["log_comparison", "mlflow_records", "require_mlflow"]

_ARGUMENT = "comparison_or_summary"
_COUNTS = ("both_correct", "negative_flips", "positive_flips", "both_wrong", "excluded")


def require_mlflow() -> ModuleType:
    """Import MLflow, or raise a :class:`~graceful.errors.MissingExtraError` naming the extra.

    Example:
        >>> require_mlflow().__name__
        'mlflow'
    """
    (mlflow,) = require("mlflow", "MLflow logging")
    return mlflow


def _number(value: Any, where: str) -> float | None:
    """``value`` as a finite float, ``None`` when undefined or infinite."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(
            f"Expected `{where}` of argument `{_ARGUMENT}` to be a number or None, "
            f"but got {value!r}"
        )
    value = float(value)
    return value if math.isfinite(value) else None


def _section(summary: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``summary[key]`` as a mapping (empty when absent or null)."""
    value = summary.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(
            f"Expected `{key}` of argument `{_ARGUMENT}` to be a dict, "
            f"but got {type(value).__name__}"
        )
    return value


def _summary(comparison_or_summary: Comparison | Mapping[str, Any]) -> dict[str, Any]:
    """The summary dict of a :class:`Comparison`, or a checked copy of a summary dict."""
    if isinstance(comparison_or_summary, Comparison):
        return comparison_or_summary.summary()
    if not isinstance(comparison_or_summary, Mapping):
        raise InputError(
            f"Expected argument `{_ARGUMENT}` to be a Comparison or the summary dict of "
            f"`graceful compare`, but got {type(comparison_or_summary).__name__}"
        )
    metrics = comparison_or_summary.get("metrics")
    if not isinstance(metrics, Mapping) or not all(
        isinstance(m, Mapping) for m in metrics.values()
    ):
        raise InputError(
            f"Expected argument `{_ARGUMENT}` to be the summary dict of `graceful compare` "
            f"(with `metrics` mapping each name to its value, low and high), but got keys "
            f"{sorted(map(str, comparison_or_summary))}"
        )
    return dict(comparison_or_summary)


def _records(summary: Mapping[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    tags: dict[str, str] = {}

    def metric(key: str, value: Any, where: str) -> None:
        number = _number(value, where)
        if number is not None:
            metrics[prefix + key] = number

    for name, entry in _section(summary, "metrics").items():
        for field, suffix in (("value", ""), ("low", ".low"), ("high", ".high")):
            metric(f"{name}{suffix}", entry.get(field), f"metrics.{name}.{field}")
    mcnemar = _section(summary, "mcnemar")
    metric("mcnemar.p_value", mcnemar.get("p_value"), "mcnemar.p_value")
    counts = _section(summary, "counts")
    for cell in _COUNTS:
        metric(f"counts.{cell}", counts.get(cell), f"counts.{cell}")

    inputs = _section(summary, "inputs")
    settings = {
        "confidence_level": summary.get("confidence_level"),
        "interval_method": summary.get("interval_method"),
        "top_k": inputs.get("top_k"),
        "mcnemar.alpha": mcnemar.get("alpha"),
        "old": inputs.get("old"),
        "new": inputs.get("new"),
        "labels": inputs.get("labels"),
        "version": summary.get("graceful_version"),
    }
    params.update({prefix + k: str(v) for k, v in settings.items() if v is not None})

    if mcnemar.get("verdict") is not None:
        tags[prefix + "mcnemar.verdict"] = str(mcnemar["verdict"])
    gate = _section(summary, "gate")
    if not gate:
        tags[prefix + "gate"] = "not set"
    else:
        tags[prefix + "gate"] = "passed" if gate.get("passed") else "failed"
        for check in gate.get("checks") or ():
            if not isinstance(check, Mapping) or "name" not in check:
                raise InputError(
                    f"Expected each of `gate.checks` of argument `{_ARGUMENT}` to be a dict "
                    f"with a `name`, but got {check!r}"
                )
            bar = f"{prefix}gate.{check['name']}"
            tags[bar] = "passed" if check.get("passed") else "failed"
            if check["name"] != "no_significant_regression":  # a yes/no bar, no threshold
                threshold = _number(check.get("threshold"), f"gate.{check['name']}.threshold")
                if threshold is not None:
                    params[bar + ".threshold"] = str(threshold)
    return {"metrics": metrics, "params": params, "tags": tags}


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str):
        raise InputError(f"Expected argument `prefix` to be a str, but got {prefix!r}")
    return prefix


def mlflow_records(
    comparison_or_summary: Comparison | Mapping[str, Any], *, prefix: str = "graceful."
) -> dict[str, dict[str, Any]]:
    """The MLflow metrics, params and tags of a comparison, without MLflow.

    Undefined metrics (``None`` or NaN, e.g. the positive flip impact when the old model
    makes no error) and infinite ones are left out: MLflow cannot store "undefined".

    Args:
        comparison_or_summary: a :class:`~graceful.release.Comparison`, or the summary dict
            that :meth:`~graceful.release.Comparison.summary` returns and ``graceful
            compare`` writes to ``summary.json``.
        prefix: put before every key.

    Returns:
        ``{"metrics": {key: float}, "params": {key: str}, "tags": {key: str}}``, ready for
        ``mlflow.log_metrics``, ``mlflow.log_params`` and ``mlflow.set_tags``.

    Raises:
        InputError: when ``comparison_or_summary`` is neither, or holds a value of the
            wrong type.

    Example:
        >>> summary = {
        ...     "metrics": {
        ...         "negative_flip_rate": {"value": 0.25, "low": 0.05, "high": 0.7},
        ...         "positive_flip_impact": {"value": None, "low": None, "high": None},
        ...     },
        ...     "mcnemar": {"p_value": 1.0, "alpha": 0.05, "verdict": "no significant difference"},
        ...     "gate": {"passed": True, "checks": [
        ...         {"name": "max_nfr", "threshold": 0.3, "value": 0.25, "passed": True}]},
        ... }
        >>> records = mlflow_records(summary)
        >>> for key, value in records["metrics"].items():
        ...     print(key, value)
        graceful.negative_flip_rate 0.25
        graceful.negative_flip_rate.low 0.05
        graceful.negative_flip_rate.high 0.7
        graceful.mcnemar.p_value 1.0
        >>> records["params"]
        {'graceful.mcnemar.alpha': '0.05', 'graceful.gate.max_nfr.threshold': '0.3'}
        >>> records["tags"]["graceful.gate"], records["tags"]["graceful.gate.max_nfr"]
        ('passed', 'passed')
    """
    prefix = _check_prefix(prefix)
    return _records(_summary(comparison_or_summary), prefix)


def _optional_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"Expected argument `{name}` to be a non-empty str, but got {value!r}")
    return value


def _experiment_id(client: Any, experiment: str | None) -> str:
    """The id of ``experiment`` (created when missing), or of MLflow's default one."""
    if experiment is None:
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(experiment))


def log_comparison(
    comparison_or_summary: Comparison | Mapping[str, Any],
    *,
    run_name: str | None = None,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    prefix: str = "graceful.",
    report: str | os.PathLike[str] | None = None,
) -> str:
    """Log a comparison to a new MLflow run: metrics, settings, gate verdict, artifacts.

    The keys are those of :func:`mlflow_records`: undefined metrics (``None`` or NaN) and
    infinite ones are skipped, not logged. The summary is logged as the artifact
    ``summary.json``, and ``report`` (e.g. the ``report.html`` of ``graceful compare``)
    under its file name. The run is ended as ``FINISHED``, or ``FAILED`` when logging
    fails half-way. MLflow's global state (tracking URI, active run) is left untouched.

    Args:
        comparison_or_summary: a :class:`~graceful.release.Comparison`, or the summary dict
            that ``graceful compare`` writes to ``summary.json``.
        run_name: name of the run; ``None`` lets MLflow choose one.
        experiment: experiment name, created when missing; ``None`` uses
            ``$MLFLOW_EXPERIMENT_ID`` or ``$MLFLOW_EXPERIMENT_NAME`` when set, else
            MLflow's ``"Default"`` experiment.
        tracking_uri: where to log, e.g. a server's ``https://`` URL; ``None`` uses
            ``$MLFLOW_TRACKING_URI`` or MLflow's default. Locally, MLflow 3.13 and later
            refuse a ``file:`` store unless ``MLFLOW_ALLOW_FILE_STORE=true`` is set, and a
            ``sqlite:`` store (MLflow 3's default) needs the full ``mlflow`` package.
        prefix: put before every metric, param and tag key.
        report: a file to log as an artifact as well, or ``None``.

    Returns:
        The id of the new run.

    Raises:
        InputError: when MLflow is not installed (the message names the extra), an
            argument is invalid, or MLflow refuses the run (its first line).

    Example:
        >>> import tempfile, warnings
        >>> from pathlib import Path
        >>> from unittest import mock
        >>> import pandas as pd
        >>> from graceful.release import Gate, compare_files
        >>> d = Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"label": [0, 1, 1, 0], "pred": [0, 1, 0, 0]}).to_csv(
        ...     d / "old.csv", index=False)
        >>> pd.DataFrame({"pred": [0, 1, 1, 1]}).to_csv(d / "new.csv", index=False)
        >>> result = compare_files(d / "old.csv", d / "new.csv", gate=Gate(max_nfr=0.3))
        >>> store = f"file:{d}/mlruns"  # a local store; a server's URL works the same
        >>> with (
        ...     mock.patch.dict("os.environ", {"MLFLOW_ALLOW_FILE_STORE": "true"}),
        ...     warnings.catch_warnings(),
        ... ):
        ...     warnings.simplefilter("ignore")  # MLflow deprecates the file store
        ...     run_id = log_comparison(result, experiment="release", tracking_uri=store)
        ...     run = require_mlflow().MlflowClient(store).get_run(run_id)
        >>> run.data.metrics["graceful.negative_flip_rate"], run.data.tags["graceful.gate"]
        (0.25, 'passed')
    """
    summary = _summary(comparison_or_summary)
    records = _records(summary, _check_prefix(prefix))
    run_name = _optional_str(run_name, "run_name")
    experiment = _optional_str(experiment, "experiment")
    tracking_uri = _optional_str(tracking_uri, "tracking_uri")
    if report is not None and not Path(report).is_file():
        raise InputError(f"Expected argument `report` to be a file, but got {str(report)!r}")
    text = json.dumps(_clean(summary), indent=2, allow_nan=False) + "\n"

    mlflow = require_mlflow()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    def refused(exc: Exception) -> InputError:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "" if tracking_uri is None else f" at `tracking_uri` {tracking_uri!r}"
        return InputError(f"MLflow{where} refused the run: {reason}")

    try:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        run = client.create_run(_experiment_id(client, experiment), run_name=run_name)
    except (MlflowException, OSError) as exc:
        raise refused(exc) from None
    run_id = str(run.info.run_id)
    try:
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in records["metrics"].items()],
            params=[Param(k, v) for k, v in records["params"].items()],
            tags=[RunTag(k, v) for k, v in records["tags"].items()],
        )
        client.log_text(run_id, text, "summary.json")
        if report is not None:
            client.log_artifact(run_id, os.fspath(report))
        client.set_terminated(run_id, "FINISHED")
    except (MlflowException, OSError) as exc:
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
        raise refused(exc) from None
    return run_id
