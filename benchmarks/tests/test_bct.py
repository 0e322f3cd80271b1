"""`python -m benchmarks bct` end to end on the digits smoke setting (seconds, real pipeline)."""

import json

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.bct import BCT_METHODS, PAIRS, get_bct_setting, run_bct
from graceful.errors import InputError


@pytest.mark.slow
def test_digits_pipeline_writes_tables_curves_and_page(tmp_path):
    results = run_bct(["digits"], [0, 1], out_dir=tmp_path, log=lambda _: None)
    setting = results["settings"][0]
    rows = {row["method"]: row for row in setting["rows"]}
    assert list(rows) == list(BCT_METHODS)
    for row in rows.values():
        for pair in PAIRS:
            values = row[f"{pair}_top1"]["values"]
            assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
        assert len(row["compatible_top1"]) == 2
    # every method shares the old model and new* (the independent model), seed by seed
    for pair in ("old_old", "newstar_newstar"):
        assert len({tuple(r[f"{pair}_map"]["values"]) for r in rows.values()}) == 1
    assert rows["independent"]["new_new_top1"] == rows["independent"]["newstar_newstar_top1"]
    # the backfilling curve runs from BCT's M(new, old) to its M(new, new)
    bct = rows["bct"]
    for order, curve in setting["backfill"].items():
        assert curve["fraction"] == [0.0, 0.5, 1.0], order
        assert curve["top1"][0]["values"] == bct["new_old_top1"]["values"]
        assert curve["top1"][-1]["values"] == bct["new_new_top1"]["values"]
        assert 0.0 <= curve["auc"]["top1"]["mean"] <= 1.0
    assert len(setting["targets"]) == 8
    # gains split by the classes the old model saw (digits: 0-4) and the others
    gains = setting["class_gains"]
    assert set(gains) == {"seen", "unseen"}
    assert set(gains["unseen"]) == {"independent", "l2", "bct", "bct_proto"}
    assert len(gains["unseen"]["bct_proto"]["map"]["values"]) == 2
    (best,) = [t for t in setting["targets"] if t["name"].startswith("Best compatible")]
    assert best["threshold"] == 0.5 and best["passed"] is False  # two seeds are not five
    # FastFill: the curves start at h(old) for every item and end at new*'s full gallery
    fastfill = setting["fastfill"]
    assert len(fastfill["fractions"]) == 21 and set(fastfill["z"]) == {"top1", "map"}
    assert all(len(z) == 2 for z in fastfill["z"].values())
    for order in ("sigma", "sigma_paper", "oracle", "random_mean"):
        curve = fastfill["curves"][order]["top1"]
        start, full = fastfill["curves"]["sigma"]["top1"][0], rows["independent"]
        assert curve[0]["values"] == pytest.approx(start["values"]), order  # random: a mean
        assert curve[-1]["values"] == pytest.approx(full["newstar_newstar_top1"]["values"])
    assert fastfill["auc"]["map"]["random_std_within_seed"]["mean"] >= 0
    ff_targets = [t for t in setting["targets"] if t["name"].startswith("FastFill")]
    assert [t["threshold"] for t in ff_targets] == [2.0, 2.0]
    assert list(setting["backfill"]) == ["random", "uncertainty", "uncertainty_balanced"]
    on_disk = json.loads((tmp_path / "bct.json").read_text())
    assert on_disk["settings"][0]["name"] == "digits"
    assert "| BCT (influence loss) |" in (tmp_path / "bct.md").read_text()
    assert (tmp_path / "bct.html").read_text().startswith("<!DOCTYPE html>")
    assert "<svg" in (tmp_path / "bct_backfill_digits.svg").read_text()


def test_unknown_setting_and_bad_seeds_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="setting"):
        get_bct_setting("imagenet")
    result = CliRunner().invoke(app, ["bct", "--setting", "imagenet", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "imagenet" in result.output
    result = CliRunner().invoke(app, ["bct", "--seeds", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--seeds" in result.output
    assert not any(tmp_path.iterdir())
