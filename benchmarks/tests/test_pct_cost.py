"""`python -m benchmarks pct-cost` on the digits smoke setting: real training, interleaved."""

import json

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.pct_cost import TARGET_RATIO, measure_teacher_cost, run_teacher_cost
from benchmarks.pct_settings import get_setting
from graceful.errors import InputError


def test_measure_alternates_and_takes_the_median_of_paired_ratios():
    row = measure_teacher_cost(get_setting("digits"), rounds=3, epochs=1, log=lambda _: None)
    assert len(row["plain_s"]) == len(row["default_s"]) == len(row["ratios"]) == 3
    assert all(s > 0 for s in row["plain_s"] + row["default_s"])
    expected = [d / p for d, p in zip(row["default_s"], row["plain_s"], strict=True)]
    assert row["ratios"] == pytest.approx(expected)
    assert row["ratio"] == pytest.approx(sorted(expected)[1])
    assert row["parameters"] > 0 and row["steps_per_epoch"] > 0


@pytest.mark.parametrize("name, value", [("rounds", 0), ("epochs", 0), ("rounds", 1.5)])
def test_bad_counts_are_one_line_errors(name, value):
    with pytest.raises(InputError, match=f"`{name}`"):
        measure_teacher_cost(get_setting("digits"), **{name: value}, log=lambda _: None)


def test_run_writes_json_with_targets_and_page(tmp_path):
    results = run_teacher_cost(
        ["digits"], out_dir=tmp_path, stem="cost", rounds=2, epochs=1, log=lambda _: None
    )
    saved = json.loads((tmp_path / "cost.json").read_text())
    assert saved["settings"][0]["ratios"] == results["settings"][0]["ratios"]
    (target,) = saved["targets"]
    assert target["threshold"] == TARGET_RATIO
    assert target["passed"] == (target["value"] <= TARGET_RATIO)
    page = (tmp_path / "cost.md").read_text()
    assert "| digits |" in page and "interleaved" in page


def test_cli_unknown_setting_fails_before_training(tmp_path):
    result = CliRunner().invoke(app, ["pct-cost", "--setting", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "nope" in result.output
    assert not list(tmp_path.iterdir())
