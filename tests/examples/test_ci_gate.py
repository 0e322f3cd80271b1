"""examples/ci: the gate script's exit codes on real files, and the workflow runs its command."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from test_compare import _write

CI = Path(__file__).parents[2] / "examples" / "ci"
SCRIPT = CI / "gate.sh"
WORKFLOW = CI / "model-release-gate.yml"
BIN = Path(sys.executable).parent  # the environment's `graceful` command lives beside python
N = 200


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GATE_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def _gate(*args, shell="bash", env=None):
    return subprocess.run(
        [shutil.which(shell) or shell, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        env=_env() if env is None else env,
        timeout=300,
    )


def _predictions(tmp_path, *, fixed, broken):
    """Old model wrong on the first 40 samples; the new one fixes `fixed` and breaks `broken`."""
    label = np.arange(N) % 4
    old = label.copy()
    old[:40] = (label[:40] + 1) % 4
    new = old.copy()
    new[:fixed] = label[:fixed]
    new[40 : 40 + broken] = (label[40 : 40 + broken] + 2) % 4
    ids = [f"s{i:03d}" for i in range(N)]
    old_path = _write(
        tmp_path, "old.parquet", pd.DataFrame({"id": ids, "label": label, "pred": old})
    )
    new_frame = pd.DataFrame({"id": ids, "pred": new}).iloc[::-1]  # order does not matter
    return old_path, _write(tmp_path, "new.parquet", new_frame)


def _checks(out):
    summary = json.loads((out / "summary.json").read_text())
    return {c["name"]: c["passed"] for c in summary["gate"]["checks"]}


@pytest.mark.slow
def test_passing_update_exits_0(tmp_path):
    old, new = _predictions(tmp_path, fixed=20, broken=2)  # NFR 1 %, McNemar: better
    out = tmp_path / "report"
    proc = _gate(old, new, out)
    assert proc.returncode == 0, proc.stderr
    assert _checks(out) == {"max_nfr": True, "no_significant_regression": True}
    assert (out / "report.html").is_file()
    assert "gate.sh: the update passes" in proc.stdout


@pytest.mark.slow
def test_significant_regression_exits_1(tmp_path):
    old, new = _predictions(tmp_path, fixed=0, broken=40)  # breaks 40 of 160 right answers
    out = tmp_path / "report"
    proc = _gate(old, new, out)
    assert proc.returncode == 1, proc.stderr
    assert _checks(out) == {"max_nfr": False, "no_significant_regression": False}
    assert "gate.sh: the update regresses" in proc.stderr
    # a looser NFR bar still fails on significance alone
    proc = _gate(old, new, out, env=_env(GATE_MAX_NFR="0.5"))
    assert proc.returncode == 1, proc.stderr
    assert _checks(out) == {"max_nfr": True, "no_significant_regression": False}


@pytest.mark.slow
def test_bad_input_exits_2_and_leaves_no_stale_report(tmp_path):
    old, new = _predictions(tmp_path, fixed=20, broken=2)
    out = tmp_path / "report"
    assert _gate(old, new, out).returncode == 0
    proc = _gate(old, tmp_path / "missing.parquet", out)
    assert proc.returncode == 2
    assert proc.stderr.startswith("graceful compare: error:") and "missing.parquet" in proc.stderr
    assert not (out / "summary.json").exists()
    assert not (out / "report.html").exists()

    usage = _gate(old)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: gate.sh")


def test_no_graceful_on_path_exits_2(tmp_path):
    path = os.pathsep.join(["/usr/bin", "/bin"])
    if shutil.which("graceful", path=path):
        pytest.skip("a `graceful` command is installed system-wide")
    proc = _gate("old.csv", "new.csv", tmp_path / "out", env={**_env(), "PATH": path})
    assert proc.returncode == 2
    assert "no `graceful` command on PATH" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dash") is None, reason="needs dash, a strict POSIX sh")
def test_script_is_posix_sh(tmp_path):
    old, new = _predictions(tmp_path, fixed=0, broken=40)
    assert _gate(old, new, tmp_path / "report", shell="dash").returncode == 1


def _command(text):
    """The `graceful compare` command of a shell text, as shlex tokens (continuations joined)."""
    lines = text.replace("\\\n", " ").splitlines()
    (line,) = [x.strip() for x in lines if x.strip().startswith("graceful compare ")]
    return shlex.split(line)


def _workflow():
    text = WORKFLOW.read_text()
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with mlflow-skinny (the dev extra)
        for line in ("on:", "jobs:", "uses: actions/checkout@", "uses: actions/setup-python@"):
            assert line in text
        assert "uses: actions/upload-artifact@" in text and "path: report/" in text
        return text.split("- name: Release gate", 1)[1]
    data = yaml.safe_load(text)
    assert set(data) >= {"name", "jobs"}
    assert "pull_request" in data.get("on", data.get(True))  # YAML 1.1 reads `on` as True
    steps = data["jobs"]["gate"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "report/" and upload["if"] == "always()"
    install = next(s["run"] for s in steps if s.get("name") == "Install graceful")
    assert 'pip install "$GRACEFUL"' in install
    assert data["jobs"]["gate"]["env"]["GRACEFUL"].startswith("graceful[mlflow] @ git+")
    (gate,) = [s["run"] for s in steps if "graceful compare" in s.get("run", "")]
    return gate


def test_workflow_runs_the_scripts_command():
    workflow = _command(_workflow())
    script_text = SCRIPT.read_text()
    script = _command(script_text)
    options = [t for t in script if t.startswith("--")]
    assert options == ["--fail-on-significant-regression", "--max-nfr", "--out"]
    assert [t for t in workflow if t.startswith("--")] == options
    assert workflow[:4] == ["graceful", "compare", "old.parquet", "new.parquet"]
    assert script[:4] == ["graceful", "compare", "$old", "$new"]
    assert workflow[-1] == script[-1] == "$@"  # the optional MLflow options
    # the workflow's bar is the script's default
    default = re.search(r"max_nfr=\$\{GATE_MAX_NFR:-([0-9.]+)\}", script_text)
    assert default is not None
    assert workflow[workflow.index("--max-nfr") + 1] == default.group(1)
    assert workflow[workflow.index("--out") + 1] == "report/"
    mlflow = 'set -- --mlflow-experiment "${MLFLOW_EXPERIMENT_NAME:-model-release}"'
    assert mlflow in script_text and mlflow in WORKFLOW.read_text()
