"""MLflow logging of a comparison: read back from a local file store, the CLI, and no MLflow."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from graceful.cli.app import app
from graceful.errors import InputError
from graceful.metrics import METRICS
from graceful.release import Gate, compare_files, log_comparison, mlflow_records
from graceful.release.mlflow import require_mlflow

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from test_compare import _frames, _write

mlflow = pytest.importorskip("mlflow")

# MLflow deprecates the file store (a FutureWarning up to 3.12, then an error unless
# MLFLOW_ALLOW_FILE_STORE=true); it is still the one local store that the skinny distribution
# writes without a server (sqlite needs SQLAlchemy).
pytestmark = pytest.mark.filterwarnings("ignore:The filesystem tracking backend:FutureWarning")

MISSING = (
    "MLflow logging needs mlflow-skinny, which is not installed: pip install 'graceful[mlflow]'"
)


@pytest.fixture
def store(tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return f"file:{tmp_path}/mlruns"


@pytest.fixture
def pair(tmp_path):
    old, new = _frames()
    return _write(tmp_path, "old.csv", old), _write(tmp_path, "new.parquet", new)


def _artifact(client, run_id, name, tmp_path):
    folder = tmp_path / f"download-{run_id}"
    folder.mkdir(exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(folder))).read_text()


def test_logged_metrics_equal_the_comparison(pair, store, tmp_path):
    result = compare_files(*pair, gate=Gate(max_nfr=0.5, fail_on_significant_regression=True))
    run_id = log_comparison(result, run_name="v1 -> v2", experiment="release", tracking_uri=store)

    client = mlflow.MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "v1 -> v2"
    assert client.get_experiment(run.info.experiment_id).name == "release"
    metrics = run.data.metrics
    assert set(result.metrics) == set(METRICS)
    for name, iv in result.intervals.items():
        assert math.isfinite(iv.value) and math.isfinite(iv.low), name
        assert metrics[f"graceful.{name}"] == iv.value
        assert metrics[f"graceful.{name}.low"] == iv.low
        assert metrics[f"graceful.{name}.high"] == iv.high
    assert metrics["graceful.mcnemar.p_value"] == result.mcnemar.p_value
    assert metrics["graceful.counts.negative_flips"] == result.frame.counts.n_negative_flips
    assert len(metrics) == 3 * len(METRICS) + 1 + 5

    tags, params = run.data.tags, run.data.params
    assert tags["graceful.gate"] == "passed"
    assert tags["graceful.gate.max_nfr"] == "passed"
    assert tags["graceful.gate.no_significant_regression"] == "passed"
    assert tags["graceful.mcnemar.verdict"] == result.mcnemar.verdict
    assert params["graceful.gate.max_nfr.threshold"] == "0.5"
    assert "graceful.gate.no_significant_regression.threshold" not in params
    assert params["graceful.confidence_level"] == "0.95"
    assert params["graceful.interval_method"] == "wilson"
    assert params["graceful.top_k"] == "1"

    names = {a.path for a in client.list_artifacts(run_id)}
    assert names == {"summary.json"}
    assert json.loads(_artifact(client, run_id, "summary.json", tmp_path)) == result.summary()


def test_undefined_metrics_are_skipped(tmp_path, store):
    y = np.zeros(50, dtype=int)
    new_pred = y.copy()
    new_pred[:5] = 1  # the old model is always right: the positive flip impact is 0/0
    old = _write(tmp_path, "old.csv", pd.DataFrame({"label": y, "pred": y}))
    new = _write(tmp_path, "new.csv", pd.DataFrame({"pred": new_pred}))
    result = compare_files(old, new)
    assert math.isnan(result.metrics["positive_flip_impact"])

    run_id = log_comparison(result, tracking_uri=store)
    run = mlflow.MlflowClient(tracking_uri=store).get_run(run_id)
    metrics = run.data.metrics
    for key in ("", ".low", ".high"):
        assert f"graceful.positive_flip_impact{key}" not in metrics
    assert metrics["graceful.negative_flip_rate"] == 0.1
    assert run.data.tags["graceful.gate"] == "not set"
    assert run.info.experiment_id == "0"  # MLflow's "Default" experiment


def test_summary_dict_report_and_prefix(pair, store, tmp_path):
    summary = compare_files(*pair).summary(paths={"old": "old.csv", "new": "new.parquet"})
    summary = json.loads(json.dumps(summary))  # as read back from summary.json
    report = tmp_path / "report.html"
    report.write_text("<!DOCTYPE html><title>report</title>")
    run_id = log_comparison(summary, experiment="x", tracking_uri=store, prefix="", report=report)

    client = mlflow.MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    records = mlflow_records(summary, prefix="")
    assert run.data.metrics == records["metrics"]
    assert run.data.params == records["params"]
    assert {k: run.data.tags[k] for k in records["tags"]} == records["tags"]
    nfr = summary["metrics"]["negative_flip_rate"]["value"]
    assert run.data.metrics["negative_flip_rate"] == nfr
    assert run.data.params["old"] == "old.csv"
    assert {a.path for a in client.list_artifacts(run_id)} == {"summary.json", "report.html"}
    assert _artifact(client, run_id, "report.html", tmp_path) == report.read_text()
    # a second run goes to the same experiment
    again = log_comparison(summary, experiment="x", tracking_uri=store)
    assert client.get_run(again).info.experiment_id == run.info.experiment_id


def test_cli_logs_the_files_it_writes(pair, store, tmp_path):
    out = tmp_path / "out"
    args = [*map(str, pair), "--out", str(out), "--max-nfr", "0.0"]
    result = CliRunner().invoke(
        app,
        ["compare", *args, "--mlflow-experiment", "release", "--mlflow-tracking-uri", store],
    )
    assert result.exit_code == 1, result.output  # the gate fails; the run is logged anyway
    summary = json.loads((out / "summary.json").read_text())

    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("release")
    (run,) = client.search_runs([experiment.experiment_id])
    assert f"mlflow:  run {run.info.run_id}" in result.stdout
    assert run.info.run_name == "old.csv -> new.parquet"
    for name, entry in summary["metrics"].items():
        assert run.data.metrics[f"graceful.{name}"] == entry["value"]
    assert run.data.tags["graceful.gate"] == "failed"
    assert run.data.tags["graceful.gate.max_nfr"] == "failed"
    assert run.data.params["graceful.new"] == str(pair[1])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "summary.json",
        "report.html",
    }
    logged = _artifact(client, run.info.run_id, "summary.json", tmp_path)
    assert logged == (out / "summary.json").read_text()


def test_missing_mlflow_is_one_line_naming_the_extra(pair, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails
    result = compare_files(*pair)
    with pytest.raises(InputError) as info:
        log_comparison(result, tracking_uri=f"file:{tmp_path}/mlruns")
    assert str(info.value) == MISSING
    assert not (tmp_path / "mlruns").exists()

    out = tmp_path / "out"
    cli = CliRunner().invoke(
        app, ["compare", *map(str, pair), "--out", str(out), "--mlflow-experiment", "release"]
    )
    assert cli.exit_code == 2, cli.output
    assert cli.stderr == f"graceful compare: error: {MISSING}\n"
    assert "Traceback" not in cli.output
    assert not out.exists()


def test_broken_mlflow_says_what_fails(tmp_path, monkeypatch):
    fake = tmp_path / "fake" / "mlflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import no_such_mlflow_dependency\n")
    monkeypatch.delitem(sys.modules, "mlflow")
    monkeypatch.syspath_prepend(str(tmp_path / "fake"))
    with pytest.raises(InputError) as info:
        require_mlflow()
    assert str(info.value) == (
        "mlflow-skinny is installed but fails to import:"
        " No module named 'no_such_mlflow_dependency'"
    )


@pytest.mark.parametrize(
    ("value", "kwargs", "needle"),
    [
        ("not a summary", {}, "`comparison_or_summary`"),
        ({"title": "x"}, {}, "`comparison_or_summary`"),
        ({"metrics": {"negative_flip_rate": {"value": "high"}}}, {}, "metrics.negative_flip"),
        ({"metrics": {}}, {"experiment": ""}, "`experiment`"),
        ({"metrics": {}}, {"run_name": 3}, "`run_name`"),
        ({"metrics": {}}, {"prefix": None}, "`prefix`"),
        ({"metrics": {}}, {"report": "no-such-report.html"}, "`report`"),
        ({"metrics": {}}, {"tracking_uri": "nosuchscheme://x"}, "nosuchscheme://x"),
    ],
)
def test_bad_arguments_are_one_line(value, kwargs, needle, store):
    with pytest.raises(InputError) as info:
        log_comparison(value, **{"tracking_uri": store, **kwargs})
    message = str(info.value)
    assert needle in message and "\n" not in message, message


def test_cli_rejects_empty_experiment_before_writing(pair, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["compare", *map(str, pair), "--out", str(out), "--mlflow-experiment", " "]
    )
    assert result.exit_code == 2
    assert result.stderr == "graceful compare: error: --mlflow-experiment must not be empty\n"
    assert not out.exists()


def test_cli_run_that_mlflow_refuses_leaves_no_file(pair, tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "new" / "out"
    args = ["compare", *map(str, pair), "--out", str(out), "--mlflow-tracking-uri", "nosuch://x"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "graceful compare: error: MLflow at `tracking_uri` 'nosuch://x' refused the run:"
    )
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "new").exists()  # neither the files nor the folders made for them

    # a previous run's files stay as they were
    assert CliRunner().invoke(app, ["compare", *map(str, pair), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = CliRunner().invoke(app, [*args, "--top-k", "2"])
    assert again.exit_code == 2, again.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
