"""`python -m benchmarks hetero` end to end on the digits smoke setting (seconds, real pipeline)."""

import json

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.hetero import get_hetero_setting, run_hetero
from graceful.errors import InputError


@pytest.mark.slow
def test_digits_pipeline_writes_table_front_and_plot(tmp_path):
    results = run_hetero(["digits"], [0, 1], out_dir=tmp_path, log=lambda _: None)
    setting = results["settings"][0]
    names = [row["name"] for row in setting["rows"]]
    assert names == ["conv w2 d1", "dwsep w2 d1"]
    for row in setting["rows"]:
        assert len(row["small_large_top1"]["values"]) == 2
        assert 0.0 <= row["small_large_top1"]["mean"] <= 1.0
        assert row["cost"]["flops"] > 0 and row["cost"]["latency_ms"] > 0
        assert row["flops_ratio"] == pytest.approx(
            setting["large_cost"]["flops"] / row["cost"]["flops"]
        )
    dwsep = setting["rows"][1]
    assert dwsep["cost"]["flops"] < setting["rows"][0]["cost"]["flops"]
    assert set(setting["pareto_front"]) <= set(names) and setting["pareto_front"]
    assert setting["independent"]["name"] == "dwsep w2 d1"
    assert len(setting["targets"]) == 2
    on_disk = json.loads((tmp_path / "hetero.json").read_text())
    assert on_disk["settings"][0]["name"] == "digits"
    assert "| conv w2 d1 |" in (tmp_path / "hetero.md").read_text()
    assert "<svg" in (tmp_path / "hetero_flops_digits.svg").read_text()


def test_unknown_setting_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="setting"):
        get_hetero_setting("imagenet")
    result = CliRunner().invoke(app, ["hetero", "--setting", "imagenet", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "imagenet" in result.output
    assert not any(tmp_path.iterdir())
