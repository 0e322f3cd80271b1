"""`python -m benchmarks pct` end to end on the digits smoke setting (seconds, real pipeline)."""

import json
import math

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.pct import METHODS, summarise
from benchmarks.pct_settings import get_setting
from benchmarks.runner import run_pct
from graceful.errors import InputError
from graceful.release import compare_files


@pytest.mark.slow
def test_digits_pipeline_writes_tables_predictions_and_report(tmp_path):
    results = run_pct(["digits"], [0, 1], out_dir=tmp_path, sweep_seeds=[0], log=lambda _: None)
    setting = results["settings"][0]
    assert [row["method"] for row in setting["rows"]] == list(METHODS)
    for row in setting["rows"]:
        nfr = row["negative_flip_rate"]
        assert len(nfr["values"]) == 2
        assert math.isclose(nfr["mean"], sum(nfr["values"]) / 2)
    assert {t["name"] for t in setting["targets"]} >= {"FD-LM NFR <= 0.6 x no-treatment NFR"}
    assert {(p["parameter"], p["value"]) for p in setting["sweep"]} == {
        ("beta", 0.0),
        ("beta", 5.0),
        ("lambda", 0.0),
        ("lambda", 1.0),
    }
    # points that are runs already made are reused: lambda 0 is no treatment, and the
    # setting's beta (5) and lambda (1) are the FD-LM row, on the same seed
    rows = {row["method"]: row for row in setting["rows"]}
    points = {(p["parameter"], p["value"]): p for p in setting["sweep"]}
    for key, method in (
        (("lambda", 0.0), "no_treatment"),
        (("beta", 5.0), "fd_lm"),
        (("lambda", 1.0), "fd_lm"),
    ):
        assert points[key]["negative_flip_rate"]["values"] == [
            rows[method]["negative_flip_rate"]["values"][0]
        ]
    on_disk = json.loads((tmp_path / "pct.json").read_text())
    assert on_disk["settings"][0]["name"] == "digits"
    assert (tmp_path / "pct.md").read_text().count("| FD-LM |") == 1
    assert (tmp_path / "pct.html").read_text().startswith("<!DOCTYPE html>")

    # every saved model opens in `graceful compare`, and its NFR is the table's
    folder = tmp_path / "pct" / "digits" / "seed1"
    comparison = compare_files(folder / "old.parquet", folder / "fd_lm.parquet")
    fd_lm = next(r for r in setting["rows"] if r["method"] == "fd_lm")
    assert comparison.metrics["negative_flip_rate"] == pytest.approx(
        fd_lm["negative_flip_rate"]["values"][1], abs=1e-12
    )


def test_summarise_targets_on_constructed_results():
    setting = get_setting("digits")

    def metrics(nfr, err_new):
        return {
            "error_rate_old": 0.1,
            "error_rate_new": err_new,
            "negative_flip_rate": nfr,
            "relative_negative_flip_rate": nfr / (0.9 * err_new),
        }

    per_method = {m: metrics(0.03, 0.08) for m in METHODS}
    per_method["fd_lm"] = metrics(0.015, 0.084)
    per_method["paragon"] = metrics(0.013, 0.07)
    raw = {
        "per_seed": {0: per_method, 1: per_method},
        "epoch_time": [{"plain_s": 1.0, "fd_cached_s": 1.1, "ratio": 1.1}] * 2,
        "sweep": [],
        "seconds": 1.0,
    }
    targets = {t["name"]: t for t in summarise(setting, raw)["targets"]}
    assert targets["FD-LM NFR <= 0.6 x no-treatment NFR"]["passed"]
    assert targets["FD-LM NFR <= 0.6 x no-treatment NFR"]["value"] == pytest.approx(0.5)
    assert targets["FD-LM ER_new <= no-treatment ER_new + 0.5 pt"]["passed"]
    assert targets["best single-model NFR <= 1.3 x ensemble paragon NFR"]["passed"]
    assert targets["FD with cached teacher <= 1.15 x plain time per epoch"]["passed"]
    per_method["fd_lm"] = metrics(0.02, 0.09)
    failed = {t["name"]: t for t in summarise(setting, raw)["targets"]}
    assert not failed["FD-LM NFR <= 0.6 x no-treatment NFR"]["passed"]
    assert not failed["FD-LM ER_new <= no-treatment ER_new + 0.5 pt"]["passed"]


def test_unknown_setting_is_an_input_error():
    with pytest.raises(InputError, match="nope"):
        get_setting("nope")


def test_cli_bad_setting_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["pct", "--setting", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "nope" in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_same_seed_same_table():
    """Weights' init is seeded too, so a rerun reproduces the table exactly (CPU)."""
    from benchmarks.pct import run_pct_setting

    setting = get_setting("digits")
    first = run_pct_setting(setting, [3], log=lambda _: None)["per_seed"]
    second = run_pct_setting(setting, [3], log=lambda _: None)["per_seed"]
    assert first == second
