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
        if row["method"] != "no_treatment":
            assert set(row["paired"]) == {"error_rate_new", "negative_flip_rate"}
    names = {t["name"] for t in setting["targets"]}
    assert {
        "scenario: no-treatment NFR >= 3 %",
        "scenario: >= 100 negative flips per seed",
        "default recipe NFR <= 0.6 x no-treatment NFR",
        "default recipe ER_new <= no-treatment ER_new + 0.5 pt",
        "ELODI NFR <= 0.5 x no-treatment NFR",
        "ELODI NFR <= 1.2 x ensemble paragon NFR",
    } <= names
    assert 0 < setting["old_train_accuracy"]["mean"] <= 1
    assert len(setting["no_treatment_negative_flips"]) == 2
    assert set(setting["collapsed"]) == set(METHODS)
    # the sweep's point at the default's own lambda is the default row of the same seed
    rows = {row["method"]: row for row in setting["rows"]}
    points = {(p["parameter"], p["value"]): p for p in setting["sweep"]}
    assert set(points) == {("lambda", 0.1), ("lambda", 0.15)}
    assert points[("lambda", 0.15)]["negative_flip_rate"]["values"] == [
        rows["default"]["negative_flip_rate"]["values"][0]
    ]
    on_disk = json.loads((tmp_path / "pct.json").read_text())
    assert on_disk["settings"][0]["name"] == "digits"
    assert (tmp_path / "pct.md").read_text().count("| Default recipe") == 1
    assert (tmp_path / "pct.html").read_text().startswith("<!DOCTYPE html>")

    # every saved model opens in `graceful compare`, and its NFR is the table's
    folder = tmp_path / "pct" / "digits" / "seed1"
    comparison = compare_files(folder / "old.parquet", folder / "default.parquet")
    assert comparison.metrics["negative_flip_rate"] == pytest.approx(
        rows["default"]["negative_flip_rate"]["values"][1], abs=1e-12
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

    def raw_of(per_method):
        collapsed = {"fd_lm": "epoch 1: training collapsed"}
        extras = {"old_train_accuracy": 0.9, "no_treatment_negative_flips": 120,
                  "n_test": 4000, "collapsed": collapsed}  # fmt: skip
        return {
            "per_seed": {0: per_method, 1: dict(per_method)},
            "extras": {0: extras, 1: extras},
            "epoch_time": [{"plain_s": 1.0, "fd_cached_s": 1.1, "ratio": 1.1}] * 2,
            "sweep": [],
            "seconds": 1.0,
        }

    per_method = {m: metrics(0.03, 0.08) for m in METHODS}
    per_method["default"] = metrics(0.015, 0.084)
    per_method["elodi"] = metrics(0.0149, 0.075)
    per_method["paragon"] = metrics(0.013, 0.07)
    summary = summarise(setting, raw_of(per_method))
    targets = {t["name"]: t for t in summary["targets"]}
    assert all(t["passed"] for t in targets.values()), targets
    assert targets["default recipe NFR <= 0.6 x no-treatment NFR"]["value"] == pytest.approx(0.5)
    assert targets["default recipe ER_new <= no-treatment ER_new + 0.5 pt"]["value"] == (
        pytest.approx(0.4)
    )
    assert summary["collapsed"]["fd_lm"] == 2 and summary["collapsed"]["default"] == 0
    per_method["default"] = metrics(0.02, 0.09)
    per_method["elodi"] = metrics(0.02, 0.08)
    per_method["no_treatment"] = metrics(0.029, 0.08)
    failed = {t["name"]: t for t in summarise(setting, raw_of(per_method))["targets"]}
    for name in (
        "scenario: no-treatment NFR >= 3 %",
        "default recipe NFR <= 0.6 x no-treatment NFR",
        "default recipe ER_new <= no-treatment ER_new + 0.5 pt",
        "ELODI NFR <= 0.5 x no-treatment NFR",
        "ELODI NFR <= 1.2 x ensemble paragon NFR",
    ):
        assert not failed[name]["passed"], name


def test_paired_test_against_no_treatment():
    from benchmarks.pct import _paired

    result = _paired([0.01, 0.012, 0.011], [0.03, 0.031, 0.035])
    assert result["mean_difference"] == pytest.approx(-0.021)
    assert 0 < result["p_value"] < 0.01
    assert _paired([0.01, 0.01], [0.02, 0.02])["p_value"] is None  # no spread: no test


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


def test_every_setting_is_named_by_its_key_and_knows_its_methods():
    from benchmarks.pct_settings import SETTINGS

    for name, factory in SETTINGS.items():
        setting = factory()  # builds nothing heavy: the data loads lazily
        assert setting.name == name
        assert set(setting.methods) <= set(METHODS)


def test_mnist1d_models_take_the_signals():
    import torch

    setting = get_setting("mnist1d_new_seed")
    x = torch.zeros(4, 40)
    assert setting.make_old()(x).shape == setting.make_new()(x).shape == (4, 10)
