"""`python -m benchmarks chain-bct` end to end on the digits smoke setting (real training)."""

import json

import torch
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.chain_bct import _influence, run_chain_bct
from graceful.models import SmallCNN


def test_chain_bct_trains_each_variant_and_checks_the_criterion_per_seed(tmp_path):
    results = run_chain_bct(["digits"], [0], out_dir=tmp_path, log=lambda _: None)
    (setting,) = results["settings"]
    base = setting["raw"]["v1 / v1 (no update)"]["map"]
    for variant, label in (
        ("independent", "v3 trained independently"),
        ("bct_v2", "v3 trained with BCT on v2 alone"),
        ("bct_v1_v2", "v3 trained with BCT on v1 and v2"),
    ):
        assert {f"{label}: v3 / v3", f"{label}: v3 -> v2", f"{label}: v3 -> v1"} <= set(
            setting["rows"]
        )
        to_v1 = setting["raw"][f"{label}: v3 -> v1"]["map"]
        expected = [m > b for m, b in zip(to_v1, base, strict=True)]
        assert setting["compatible_per_seed"][variant] == expected
    assert [t["passed"] for t in setting["targets"]] == [
        all(setting["compatible_per_seed"]["bct_v2"]),
        all(setting["compatible_per_seed"]["bct_v1_v2"]),
    ]
    saved = json.loads((tmp_path / "chain_bct.json").read_text())
    assert saved["settings"][0]["raw"] == setting["raw"]
    assert (
        "| v3 trained with BCT on v1 and v2: v3 -> v1 |" in (tmp_path / "chain_bct.md").read_text()
    )


def test_influence_copies_the_head_of_the_earlier_version():
    model = SmallCNN(width=2, num_classes=3, embedding_dim=4)
    term = _influence(model)
    torch.testing.assert_close(term.old_weight, model.head.weight.detach())
    with torch.no_grad():
        model.head.weight.add_(1.0)  # training the model later does not move the constraint
    assert not torch.equal(term.old_weight, model.head.weight)


def test_cli_unknown_setting_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["chain-bct", "--setting", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "nope" in result.output
