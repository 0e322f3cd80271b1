"""`graceful demo` end to end on a small budget: files, story, gallery and backfill."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from graceful.cli.app import app
from graceful.demo import DemoConfig, run_demo
from graceful.gallery import Gallery
from graceful.metrics import negative_flip_rate

SMALL = DemoConfig(epochs=3, examples=2, backfill_fraction=0.5)


@pytest.fixture(scope="module")
def story_and_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, SMALL, progress=False, log=lambda _: None), out


@pytest.mark.slow
def test_demo_writes_every_artefact(story_and_dir):
    story, out = story_and_dir
    for name in ("old.parquet", "naive.parquet", "graceful.parquet", "demo.json",
                 "report.html", "gallery.sqlite", "updates/naive/report.html",
                 "updates/graceful/summary.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert json.loads((out / "demo.json").read_text()) == json.loads(json.dumps(story))
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="graceful-results"' in page


@pytest.mark.slow
def test_update_metrics_match_the_prediction_files(story_and_dir):
    story, out = story_and_dir
    old = pd.read_parquet(out / "old.parquet")
    for name in ("naive", "graceful"):
        new = pd.read_parquet(out / f"{name}.parquet")
        cols = [f"prob_{c}" for c in range(10)]
        expected = negative_flip_rate(old["label"].to_numpy(), old[cols].to_numpy(),
                                      new[cols].to_numpy())  # fmt: skip
        assert story["updates"][name]["metrics"]["negative_flip_rate"] == pytest.approx(expected)


@pytest.mark.slow
def test_gallery_story_is_consistent(story_and_dir):
    story, out = story_and_dir
    total = story["data"]["test"]
    backfill = story["backfill"]
    assert backfill["total"] == total
    assert sum(backfill["status"].values()) == total
    # the job stops after the batch that reaches the fraction (batches of 30)
    assert (
        total * SMALL.backfill_fraction <= backfill["done"] < total * SMALL.backfill_fraction + 30
    )
    assert "v2-naive" in story["refused"] and "v1-old" in story["refused"]
    assert len(story["searches"]) == SMALL.examples
    for search in story["searches"]:
        assert len(search["before"]) == 5 and search["query"] not in {
            h["id"] for h in search["before"]
        }
        assert all(h["version"] == "v1-old" for h in search["before"])
    with Gallery(out / "gallery.sqlite") as gallery:
        assert gallery.status() == backfill["status"]
    curve = backfill["curve"]
    assert curve["fraction"][0] == 0.0 and curve["fraction"][-1] == 1.0
    assert curve["top1"][0] == pytest.approx(story["retrieval"]["graceful->old"]["top1"])
    assert curve["top1"][-1] == pytest.approx(story["retrieval"]["graceful->graceful"]["top1"])


def test_demo_refuses_a_file_as_output_folder(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = CliRunner().invoke(app, ["demo", "--out", str(target)])
    assert result.exit_code == 2 and "--out" in result.output
    assert target.read_text() == "x"
