"""`python -m benchmarks clusters` and `chain` end to end on the digits smoke settings."""

import json

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.clusters_chain import CLUSTER_KS, run_chain, run_clusters


def test_clusters_bench_writes_every_assignment_and_its_targets(tmp_path):
    results = run_clusters(["digits"], [0, 1], out_dir=tmp_path, log=lambda _: None)
    (setting,) = results["settings"]
    for k in CLUSTER_KS:
        ref = setting["rows"][f"arrivals | k={k} | old model (reference)"]
        assert ref["ari"]["mean"] == 1.0 and ref["same_id"]["mean"] == 1.0
        adapted = setting["raw"][f"gallery | k={k} | new model through the adapter, old centroids"]
        assert len(adapted["ari"]) == 2 and all(-1 <= v <= 1 for v in adapted["ari"])
    assert [set(t) >= {"name", "value", "threshold", "passed"} for t in setting["targets"]] == [
        True
    ] * len(CLUSTER_KS)
    on_disk = json.loads((tmp_path / "clusters.json").read_text())
    assert on_disk["settings"][0]["raw"] == setting["raw"]
    assert "| arrivals | 10 | new model, re-clustered |" in (tmp_path / "clusters.md").read_text()


def test_chain_bench_composes_the_links(tmp_path):
    results = run_chain(["digits"], [0], out_dir=tmp_path, log=lambda _: None)
    (setting,) = results["settings"]
    assert set(setting["rows"]) >= {
        "v1 / v1 (no update)",
        "v3 -> v1 (chain v3 -> v2 -> v1)",
        "v3 -> v1 (direct adapter)",
    }
    (target,) = setting["targets"]
    assert target["passed"] == all(setting["compatible_per_seed"])
    assert "| v3 -> v1 (chain v3 -> v2 -> v1) |" in (tmp_path / "chain.md").read_text()


@pytest.mark.parametrize("command", ["clusters", "chain"])
def test_an_unknown_setting_is_one_line(tmp_path, command):
    result = CliRunner().invoke(app, [command, "--setting", "imagenet", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "imagenet" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())
