"""`python -m benchmarks lqf` on a tiny synthetic setting (real pipeline, seconds); its pieces."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from benchmarks import lqf as bench_lqf
from benchmarks.__main__ import app
from benchmarks.lqf import (
    LQF_METHODS,
    LQF_SETTINGS,
    SIZES,
    LQFSetting,
    Prepared,
    TailNet,
    _pair_stats,
    _subsets,
    _train_one,
    lqf_markdown,
    run_lqf,
)
from graceful.errors import InputError


def _blobs(n_per_class: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 6, generator=torch.Generator().manual_seed(99)) * 2
    y = torch.arange(10).repeat_interleave(n_per_class)
    return centres[y] + torch.randn(len(y), 6, generator=g), y


def _prepare(log):
    torch.manual_seed(123)
    body = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU())

    def make_tail(seed):
        torch.manual_seed(seed)
        copy = nn.Sequential(*[m for m in body])  # shares weights: the tail copies anyway
        return TailNet(nn.Sequential(*[type(m)() if isinstance(m, nn.ReLU) else m for m in copy]),
                       nn.Linear(12, 10))  # fmt: skip

    return Prepared(_blobs(60, 0), _blobs(10, 1), _blobs(10, 2), make_tail, {
        "network": "MLP", "frozen": "nothing", "trained": "all", "input": "6-d"})  # fmt: skip


TINY = LQFSetting(
    "tiny", "Tiny blobs", _prepare, epochs={"10": 3, "50": 2, "all": 2},
    batch_size={"10": 32, "50": 64, "all": 64}, tuned={},
)  # fmt: skip


def test_pair_stats_are_exact():
    target = np.array([0, 1, 2, 3])
    preds = [np.array([0, 1, 2, 0]), np.array([0, 1, 0, 3]), np.array([1, 1, 2, 3])]
    out = _pair_stats(preds, target)
    # pairs (0,1): differ at 2 and 3; NFR: 0 right & 1 wrong at index 2 -> 1/4
    # (0,2): differ at 0 and 3; NFR at index 0 -> 1/4; (1,2): differ at 0, 2; NFR at 0 -> 1/4
    assert out["disagreement"]["values"] == [0.5, 0.5, 0.5]
    assert out["nfr"]["values"] == [0.25, 0.25, 0.25]


def test_subsets_are_nested_and_per_class():
    y = torch.arange(10).repeat_interleave(60)
    subsets = _subsets(y)
    assert [len(subsets[s]) for s in SIZES] == [100, 500, 600]
    assert set(subsets["10"].tolist()) <= set(subsets["50"].tolist())
    assert np.bincount(y[subsets["10"]].numpy()).tolist() == [10] * 10


@pytest.mark.slow
def test_tiny_setting_end_to_end_with_tuning(tmp_path, monkeypatch):
    monkeypatch.setitem(LQF_SETTINGS, "tiny", TINY)
    results = run_lqf(["tiny"], [0, 1], out_dir=tmp_path, log=lambda _: None, tune=True)
    summary = results["settings"][0]
    assert list(summary["methods"]) == list(LQF_METHODS)
    assert summary["train_sizes"] == {"10": 100, "50": 500, "all": 600}
    for key, entry in summary["methods"].items():
        for size in SIZES:
            cell = entry["sizes"][size]
            assert len(cell["error"]["values"]) == 2
            assert cell["hyperparameters"] in [
                {k: v for k, v in t.items() if k != "val_accuracy"}
                for t in summary["tuning"][key]["50" if size == "all" else size]["trials"]
            ]
        assert 0.0 <= entry["update_nfr"]["mean"] <= 1.0
    # the choice is the best validation accuracy of the grid
    trials = summary["tuning"]["lqf"]["10"]["trials"]
    best = max(t["val_accuracy"] for t in trials)
    chosen = summary["tuning"]["lqf"]["10"]["chosen"]
    assert any(t["val_accuracy"] == best and t["lr"] == chosen["lr"] for t in trials)
    assert len(summary["targets"]) == 6
    on_disk = json.loads((tmp_path / "lqf.json").read_text())
    assert on_disk["settings"][0]["name"] == "tiny"
    assert json.loads((tmp_path / "lqf_tuning.json").read_text())["tiny"]["lqf"]["50"]["chosen"]
    text = (tmp_path / "lqf.md").read_text()
    assert "| LQF |" in text and "NFR 50 → all" in text
    assert lqf_markdown(summary) in text


def test_a_diverging_grid_point_is_an_infinite_loss_not_a_crash():
    prepared = _prepare(lambda _: None)
    index = _subsets(prepared.train[1])["10"]
    choice = {"optimizer": "sgd", "lr": 1e3}  # the squared loss explodes at this rate
    run = _train_one(TINY, prepared, LQF_METHODS["squared_only"], "10", index, 0, choice)
    assert run["final_loss"] == float("inf")
    assert 0.0 <= run["val_accuracy"] <= 1.0


def test_setting_without_tuned_values_asks_for_tune(monkeypatch, tmp_path):
    monkeypatch.setitem(LQF_SETTINGS, "tiny", TINY)
    with pytest.raises(InputError, match="--tune"):
        run_lqf(["tiny"], [0, 1], out_dir=tmp_path, log=lambda _: None)


def test_bad_cli_input_is_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["lqf", "--setting", "imagenet", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "imagenet" in result.output
    result = runner.invoke(app, ["lqf", "--seeds", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--seeds" in result.output
    assert not any(tmp_path.iterdir())


def test_the_real_settings_carry_tuned_values_for_every_method_and_the_committed_tuning():
    from pathlib import Path

    tuning = json.loads(
        (Path(__file__).parents[2] / "benchmarks/results/lqf_tuning.json").read_text()
    )
    for name, setting in LQF_SETTINGS.items():
        assert set(setting.tuned) == set(LQF_METHODS), name
        for method, by_size in setting.tuned.items():
            for size in ("10", "50"):
                assert by_size[size] == tuning[name][method][size]["chosen"], (name, method)


def test_module_names_its_settings():
    assert set(bench_lqf.LQF_SETTINGS) >= {"mnist_cnn", "efficientnet"}
