"""`python -m benchmarks kd-control` on the digits smoke setting, and its distillation term."""

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.kd_control import KD_SETTINGS, _fit, _logits, run_kd_control
from graceful.data import load_digits


@pytest.mark.slow
def test_digits_run_writes_per_seed_values_and_targets(tmp_path):
    results = run_kd_control(["digits"], [0, 1], out_dir=tmp_path, log=lambda _: None)
    setting = results["settings"][0]
    assert setting["name"] == "digits"
    for method in ("ce", "kd"):
        assert len(setting["raw"][method]["negative_flip_rate"]) == 2
        assert 0.0 <= setting["rows"][method]["error_rate_new"]["mean"] < 0.5  # it learns
    assert [t["name"] for t in setting["targets"]] == [
        "KD ER_new <= CE ER_new + 0.5 pt",
        "KD NFR <= CE NFR",
    ]
    assert all({"name", "value", "threshold", "passed"} <= set(t) for t in setting["targets"])
    on_disk = json.loads((tmp_path / "kd_control.json").read_text())
    assert on_disk["settings"][0]["raw"] == setting["raw"]
    assert "| cross-entropy + KD" in (tmp_path / "kd_control.md").read_text()


def test_the_distillation_term_pulls_towards_the_teacher():
    data = load_digits()
    x, y, _ = data.train.to_tensor_dataset().tensors
    setting = replace(KD_SETTINGS["digits"], weight=20.0)
    teacher = torch.zeros(len(y), 10)
    teacher[:, 3] = 30.0  # a teacher that always says "3"
    plain = _logits(_fit(setting, 0, x, y, None), x).argmax(1)
    taught = _logits(_fit(setting, 0, x, y, teacher), x).argmax(1)
    # 40 small Adam steps: far from all "3", but far more of them than without the teacher
    assert (taught == 3).float().mean() > (plain == 3).float().mean() + 0.15


def test_unknown_setting_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(
        app, ["kd-control", "--setting", "imagenet", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "setting" in result.output and "imagenet" in result.output
    assert not list(tmp_path.iterdir())
