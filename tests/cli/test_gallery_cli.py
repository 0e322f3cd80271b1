"""`graceful gallery` end to end through typer's runner, on small files."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from graceful.cli.app import app
from graceful.gallery import Gallery

runner = CliRunner()
N, D = 60, 8


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    ids = np.array([f"item{i}" for i in range(N)])
    v0 = rng.normal(size=(N, D)).astype(np.float32)
    v1 = v0 + 0.05 * rng.normal(size=(N, D)).astype(np.float32)
    np.savez(tmp_path / "v0.npz", ids=ids, vectors=v0)
    np.savez(tmp_path / "v1.npz", ids=ids, vectors=v1)
    np.savez(tmp_path / "q.npz", ids=np.array(["q0", "q1", "q2"]), vectors=v1[:3])
    (tmp_path / "ev.json").write_text(json.dumps({"top1_new_old": 0.6, "top1_old_old": 0.5}))
    pd.DataFrame({"id": ids, "u": np.arange(N, dtype=float)}).to_csv(
        tmp_path / "u.csv", index=False
    )
    return tmp_path, v1


def run(*args):
    return runner.invoke(app, ["gallery", *map(str, args)])


def _setup(tmp, compatible=True):
    g = tmp / "g.sqlite"
    assert run("register", g, "--version", "v0", "--dim", D).exit_code == 0
    assert run("add", g, "--version", "v0", "--embeddings", tmp / "v0.npz").exit_code == 0
    extra = ["--compatible-with", "v0", "--evidence", tmp / "ev.json"] if compatible else []
    assert run("register", g, "--version", "v1", "--dim", D, *extra).exit_code == 0
    return g


def test_new_queries_search_the_old_gallery_then_a_partial_and_resumed_backfill(files):
    tmp, v1 = files
    g = _setup(tmp)
    result = run("search", g, "--version", "v1", "--queries", tmp / "q.npz", "-k", 2,
                 "--out", tmp / "r.parquet")  # fmt: skip
    assert result.exit_code == 0, result.output
    hits = pd.read_parquet(tmp / "r.parquet")
    assert list(hits.columns) == ["query", "rank", "id", "distance", "version"]
    with Gallery(g) as gallery:  # the rows are Gallery.search's (D, I), one per hit
        d, i = gallery.search(v1[:3], 2, version="v1")
    assert hits["id"].tolist() == i.ravel().tolist()
    np.testing.assert_allclose(hits["distance"], d.ravel(), rtol=1e-6)
    assert hits.groupby("query")["id"].first().to_dict() == {
        "q0": "item0",
        "q1": "item1",
        "q2": "item2",
    }
    assert set(hits["version"]) == {"v0"}

    partial = run("backfill", g, "--to", "v1", "--embeddings", tmp / "v1.npz",
                  "--order", "score", "--scores", tmp / "u.csv", "--score-column", "u",
                  "--batch-size", 10, "--limit", 20)  # fmt: skip
    assert partial.exit_code == 0, partial.output
    assert "stopped after --limit 20" in partial.output
    with Gallery(g) as gallery:
        assert gallery.status() == {"v0": N - 20, "v1": 20}
        # highest score first: the last 20 items moved
        moved = {r.id for r in gallery.get([f"item{i}" for i in range(N)]) if r.version == "v1"}
        assert moved == {f"item{i}" for i in range(N - 20, N)}
    done = run("backfill", g, "--to", "v1", "--embeddings", tmp / "v1.npz",
               "--order", "score", "--scores", tmp / "u.csv", "--score-column", "u",
               "--batch-size", 10)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "resumed" in done.output
    with Gallery(g) as gallery:
        assert gallery.status() == {"v0": 0, "v1": N}
        record = gallery.get(["item5"])[0]
        np.testing.assert_array_equal(record.vector, v1[5])
    status = run("status", g)
    assert status.exit_code == 0 and "v1" in status.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ("search {g} --version v1 --queries {tmp}/q.npz", "no compatibility"),
        ("search {g} --version v0 --queries {tmp}/q.npz --out {tmp}/r.txt", "--out"),
        ("search {tmp}/none.sqlite --version v0 --queries {tmp}/q.npz", "does not exist"),
        ("add {g} --version v0 --embeddings {tmp}/v0.npz", "already"),
        ("add {g} --version v9 --embeddings {tmp}/v1.npz", "v9"),
        ("add {g} --version v1 --embeddings {tmp}/missing.npz", "missing.npz"),
        ("register {g} --version v2 --dim 8 --compatible-with v0", "--evidence"),
        ("register {g} --version v2 --dim 4 --compatible-with v0 --evidence {tmp}/ev.json", "dim"),
        (
            "register {g} --version v2 --dim 8 --compatible-with v0 --evidence {tmp}/q.npz",
            "--evidence",
        ),
        ("backfill {g} --to v1 --embeddings {tmp}/v1.npz --order score", "--scores"),
        ("backfill {g} --to v7 --embeddings {tmp}/v1.npz", "v7"),
        ("backfill {g} --to v1 --embeddings {tmp}/q.npz", "no vector"),
        ("backfill {g} --to v1 --embeddings {tmp}/v1.npz --limit 0", "--limit"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(files, args, match):
    tmp, _ = files
    g = _setup(tmp, compatible=False)
    with Gallery(g) as before:
        status, versions = before.status(), [v.name for v in before.versions()]
    result = run(*args.format(g=g, tmp=tmp).split())
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("graceful gallery"), result.output
    assert match in lines[0]
    assert not (tmp / "r.txt").exists()
    with Gallery(g) as after:
        assert after.status() == status and [v.name for v in after.versions()] == versions
