"""`python -m benchmarks adapters` end to end on the digits smoke setting."""

import json

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.adapters import TARGET_ADAPTER, _size, adapter_targets, run_adapters


@pytest.mark.slow
def test_digits_run_writes_rows_latency_and_per_seed_values(tmp_path):
    results = run_adapters(["digits"], [0, 1], out_dir=tmp_path, log=lambda _: None)
    setting = results["settings"][0]
    rows = setting["rows"]
    assert {"old / old", "new / new", "procrustes | N=100", "residual MLP | N=all"} <= set(rows)
    assert len(setting["raw"]["affine | N=all"]["map"]) == 2
    for key, row in rows.items():
        assert 0.0 <= row["map"]["mean"] <= 1.0
        if " | N=" in key:  # the recovery is the adapter's mAP over the full re-embed's
            ratio = [
                m / r
                for m, r in zip(
                    setting["raw"][key]["map"], setting["raw"]["new / new"]["map"], strict=True
                )
            ]
            assert setting["raw"][key]["recovery"] == pytest.approx(ratio)
    assert {"procrustes", "procrustes, centred", "residual MLP"} <= set(setting["latency"])
    assert all(t["single_us"] > 0 and t["batch_us"] > 0 for t in setting["latency"].values())
    on_disk = json.loads((tmp_path / "adapters.json").read_text())
    assert on_disk["settings"][0]["raw"] == setting["raw"]
    assert "| procrustes | 100 |" in (tmp_path / "adapters.md").read_text()


def test_pair_counts():
    assert _size(100, 8808) == 100 and _size("10%", 8808) == 881 and _size("all", 50) == 50
    assert _size(1000, 300) == 300


def test_unknown_setting_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["adapters", "--setting", "imagenet", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "imagenet" in result.output
    assert not list(tmp_path.iterdir())


def test_the_target_reads_the_adapter_named_before_the_run_not_the_best_row():
    def row(recovery):
        return {"recovery": {"mean": recovery}}

    rows = {
        "affine | N=10%": row(0.99),  # better on the test queries: must not be picked
        f"{TARGET_ADAPTER} | N=10%": row(0.949),
        "procrustes, selected on pairs (label-free) | N=10%": row(0.93),
    }
    (target,) = adapter_targets("text", rows)
    assert target["value"] == 0.949 and target["passed"] is False
    assert TARGET_ADAPTER in target["detail"] and "0.930" in target["detail"]
    assert adapter_targets("image", rows) == []
