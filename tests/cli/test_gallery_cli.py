"""`graceful gallery` end to end through typer's runner, on small files."""

import json
import os
import shutil
import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from graceful.cli import gallery as gallery_cli
from graceful.cli.app import app
from graceful.gallery import Gallery
from graceful.retrieval import fit_query_adapter

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


# -- hostile galleries and inputs ---------------------------------------------------------


def one_line_exit_2(result, match, command):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"graceful gallery {command}: error: "), lines[0]
    assert match in lines[0], lines[0]
    return lines[0]


def fingerprint(path):
    return path.read_bytes(), path.stat().st_mtime_ns


def test_limit_re_embeds_exactly_limit_items_then_resumes(tmp_path):
    n = 300
    rng = np.random.default_rng(0)
    ids = np.array([f"item{i}" for i in range(n)])
    np.savez(tmp_path / "v0.npz", ids=ids, vectors=rng.normal(size=(n, D)))
    np.savez(tmp_path / "v1.npz", ids=ids, vectors=rng.normal(size=(n, D)))
    g = tmp_path / "g.sqlite"
    assert run("register", g, "--version", "v0", "--dim", D).exit_code == 0
    assert run("add", g, "--version", "v0", "--embeddings", tmp_path / "v0.npz").exit_code == 0
    assert run("register", g, "--version", "v1", "--dim", D).exit_code == 0
    backfill = ("backfill", g, "--to", "v1", "--embeddings", tmp_path / "v1.npz")
    first = run(*backfill, "--limit", 100)  # the default batch is 256: cut short at 100
    assert first.exit_code == 0, first.output
    assert "stopped after --limit 100 items; run again to resume job 'default'" in first.output
    assert "status: v0: 200, v1: 100" in first.output
    with Gallery(g) as gallery:
        assert gallery.status() == {"v0": 200, "v1": 100}
        _, _, done = gallery.store.plan("default")
        assert (done > 0).sum() == 100
    second = run(*backfill, "--limit", 150, "--batch-size", 64)
    assert "stopped after --limit 150" in second.output and "v0: 50, v1: 250" in second.output
    last = run(*backfill, "--limit", 50)  # exactly what is left: it finishes
    assert last.exit_code == 0, last.output
    assert "job 'default': 50 items re-embedded in 1 batches" in last.output
    assert "resumed" in last.output and "status: v0: 0, v1: 300" in last.output


def test_status_and_search_open_the_gallery_read_only(files, monkeypatch):
    tmp, _ = files
    g = _setup(tmp)
    before = fingerprint(g)
    other = sqlite3.connect(g, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing: readers go on
    monkeypatch.setattr(gallery_cli, "LOCK_TIMEOUT", 0.1, raising=False)
    try:
        status = run("status", g)
        assert status.exit_code == 0, status.output
        assert "v0" in status.output and f"{N} items" in status.output
        found = run("search", g, "--version", "v1", "--queries", tmp / "q.npz", "-k", 2)
        assert found.exit_code == 0, found.output
        assert "item0" in found.output
        locked = run("add", g, "--version", "v1", "--embeddings", tmp / "q.npz")
        one_line_exit_2(locked, "is locked by another writer: gave up after waiting 0.1 s", "add")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert fingerprint(g) == before


def test_status_and_search_on_a_read_only_file_and_folder(files, as_unprivileged):
    tmp, _ = files
    folder = tmp / "ro"
    folder.mkdir()
    g = _setup(tmp)
    shutil.move(g, folder / "g.sqlite")
    g = folder / "g.sqlite"
    before = fingerprint(g)
    g.chmod(0o444)
    folder.chmod(0o555)

    def cli(*args):
        return as_unprivileged([sys.executable, "-m", "graceful", "gallery", *args])

    try:
        status = cli("status", g)
        assert status.returncode == 0, status.stderr
        assert "v0" in status.stdout and f"{N} items" in status.stdout
        found = cli("search", g, "--version", "v1", "--queries", tmp / "q.npz")
        assert found.returncode == 0 and "item0" in found.stdout, found.stderr
        refused = cli("add", g, "--version", "v1", "--embeddings", tmp / "q.npz")
        assert refused.returncode == 2 and refused.stdout == ""
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert refused.stderr.startswith("graceful gallery add: error: ")
        assert "is read-only" in refused.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["g.sqlite"]  # no -wal, no -shm
    finally:
        folder.chmod(0o755)
    assert fingerprint(g) == before


def test_another_applications_sqlite_file_is_refused_untouched(files):
    tmp, _ = files
    other = tmp / "app.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    con.commit()
    con.close()
    os.utime(other, ns=(1_000_000_000, 1_000_000_000))
    before = fingerprint(other)
    message = "is a SQLite database of another application, not a graceful gallery"
    one_line_exit_2(run("status", other), message, "status")
    one_line_exit_2(run("register", other, "--version", "v0", "--dim", D), message, "register")
    one_line_exit_2(run("add", other, "--version", "v0", "--embeddings", tmp / "v0.npz"),
                    message, "add")  # fmt: skip
    assert fingerprint(other) == before
    con = sqlite3.connect(other)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["notes"]
    con.close()


EVIL = "[link=http://evil.example]click[/link]"


def test_markup_in_ids_and_versions_is_printed_as_written(files, monkeypatch):
    tmp, _ = files
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich writes to a terminal: links would work
    g = tmp / "g.sqlite"
    ids = np.array(["[/x]", EVIL, "[bold]b"])
    vectors = np.random.default_rng(0).normal(size=(3, D))
    np.savez(tmp / "evil.npz", ids=ids, vectors=vectors)
    np.savez(tmp / "evilq.npz", ids=np.array(["[/q]"]), vectors=vectors[:1])
    assert run("register", g, "--version", "[/x]", "--dim", D).exit_code == 0
    assert run("add", g, "--version", "[/x]", "--embeddings", tmp / "evil.npz").exit_code == 0
    for _ in range(2):  # "for good": it keeps working
        status = run("status", g)
        assert status.exit_code == 0, status.output
        assert "[/x]" in status.output
    found = run("search", g, "--version", "[/x]", "--queries", tmp / "evilq.npz", "-k", 3)
    assert found.exit_code == 0, found.output
    for text in ("[/q]", "[/x]", EVIL, "[bold]b"):
        assert text in found.output
    assert "\x1b]8;" not in found.output + status.output  # no terminal hyperlink
    # a gallery written by someone else: control characters are shown, never obeyed
    con = sqlite3.connect(g)
    con.execute("UPDATE items SET id=? WHERE id='[bold]b'", ("\x1b]8;;http://x\x1b\\b\nc",))
    con.execute("INSERT INTO versions VALUES ('v\x1b[2J', 8, 'cosine', 'flat', '{}', 99)")
    con.commit()
    con.close()
    monkeypatch.delenv("TTY_COMPATIBLE")
    monkeypatch.setenv("COLUMNS", "200")  # no cell wrapped
    status = run("status", g)
    found = run("search", g, "--version", "[/x]", "--queries", tmp / "evilq.npz", "-k", 3)
    assert status.exit_code == found.exit_code == 0, status.output + found.output
    assert "\x1b" not in status.output + found.output
    assert "v\\x1b[2J" in status.output and "\\x1b]8;;http://x\\x1b\\b\\nc" in found.output


def test_help_texts_keep_their_bracketed_notes():
    for command in ("register", "add", "search", "backfill", "status"):
        result = run(command, "--help")
        assert result.exit_code == 0, result.output
        assert "[required]" in result.output
    assert "[default: 10]" in run("search", "--help").output
    backfill = run("backfill", "--help").output
    assert "[default: 256]" in backfill and "Re-embed this many items" in backfill


def test_hostile_galleries_are_one_line_exit_2(files):
    tmp, _ = files
    good = _setup(tmp)
    empty = tmp / "empty.sqlite"
    empty.touch()
    text = tmp / "text.sqlite"
    text.write_text("hello\n" * 500)
    cut = tmp / "cut.sqlite"
    cut.write_bytes(good.read_bytes()[:5000])
    newer = tmp / "newer.sqlite"
    shutil.copy(good, newer)
    con = sqlite3.connect(newer)
    con.execute("UPDATE meta SET value=7 WHERE key='schema'")
    con.commit()
    con.close()
    q = ("--version", "v0", "--queries", tmp / "q.npz")
    cases = [
        (empty, "is empty: it holds no graceful gallery"),
        (text, "is not a SQLite database"),
        (tmp, "is a folder, not a file"),
        (tmp / "missing" / "g.sqlite", "does not exist"),
        (cut, "is truncated: 5000 bytes, its header says"),
        (newer, "has gallery schema 7, but this version of graceful reads schema 1"),
    ]
    for path, match in cases:
        one_line_exit_2(run("status", path), match, "status")
        one_line_exit_2(run("search", path, *q), match, "search")
        one_line_exit_2(run("add", path, "--version", "v0", "--embeddings", tmp / "v1.npz"),
                        match, "add")  # fmt: skip
    assert empty.stat().st_size == 0
    one_line_exit_2(run("register", tmp / "missing" / "g.sqlite", "--version", "v0", "--dim", 4),
                    "cannot be created: its folder", "register")  # fmt: skip


def test_hostile_inputs_are_one_line_exit_2_and_change_nothing(files):
    tmp, _ = files
    g = _setup(tmp)
    np.savez(tmp / "nl.npz", ids=np.array(["a\nb"]), vectors=np.ones((1, D)))
    pd.DataFrame({"id": ["a\x00b"], "vector": [np.ones(D)]}).to_parquet(tmp / "nul.parquet")
    np.savez(tmp / "d3.npz", ids=np.array(["z"]), vectors=np.ones((1, 3)))
    for name in ("zero.npz", "zero.parquet", "zero.csv"):
        (tmp / name).touch()
    before = fingerprint(g)
    q = ("--version", "v0", "--queries", tmp / "q.npz")
    cases = [
        (
            "add",
            ("--version", "v0", "--embeddings", tmp / "nl.npz"),
            r"control characters, but got 'a\nb'",
        ),
        ("add", ("--version", "v0", "--embeddings", tmp / "nul.parquet"), r"but got 'a\x00b'"),
        (
            "add",
            ("--version", "v0", "--embeddings", tmp / "d3.npz"),
            "d3.npz: the vectors have dimension 3, but version 'v0' has 8",
        ),
        ("add", ("--version", "v0", "--embeddings", tmp / "zero.npz"), "zero.npz"),
        ("add", ("--version", "v0", "--embeddings", tmp / "zero.parquet"), "zero.parquet"),
        ("add", ("--version", "v0", "--embeddings", tmp / "zero.csv"), "zero.csv"),
        ("register", ("--version", "v\tx", "--dim", D), r"`name` to hold no control"),
        ("search", (*q, "-k", 0), "-k must be >= 1, got 0"),
        ("search", (*q, "--show", -1), "--show must be >= 0, got -1"),
        ("search", (*q, "--out", tmp / "missing" / "r.csv"), "does not exist"),
        ("search", (*q, "--out", tmp), "--out"),
        ("backfill", ("--to", "v1", "--embeddings", tmp / "v1.npz", "--limit", -5), "--limit"),
        ("backfill", ("--to", "v1", "--embeddings", tmp / "v1.npz", "--batch-size", 0), "--batch"),
    ]
    for command, args, match in cases:
        one_line_exit_2(run(command, g, *args), match, command)
    assert fingerprint(g) == before


def test_a_huge_k_returns_every_item(files):
    tmp, _ = files
    g = _setup(tmp)
    out = tmp / "r.csv"
    result = run("search", g, "--version", "v0", "--queries", tmp / "q.npz", "-k", 10**30,
                 "--out", out, "--show", 0)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"top {N}" in result.output
    assert len(pd.read_csv(out)) == 3 * N


def test_vectors_a_version_cannot_hold_name_the_file_and_the_id(files):
    tmp, v1 = files
    g = _setup(tmp)
    zero = v1[:3].copy()
    zero[1] = 0
    np.savez(tmp / "zero.npz", ids=np.array(["q0", "q1", "q2"]), vectors=zero)
    np.savez(tmp / "wide.npz", ids=np.array(["q0"]), vectors=np.ones((1, D + 1), "f4"))
    before = fingerprint(g)
    for command, option in (("search", "--queries"), ("add", "--embeddings")):
        version = ["--version", "v1"]
        one_line_exit_2(
            run(command, g, *version, option, tmp / "zero.npz"),
            f"{option} {tmp / 'zero.npz'}: vector 1 (id 'q1') is all zeros, which the "
            "cosine version 'v1' cannot normalise",
            command,
        )
        one_line_exit_2(
            run(command, g, *version, option, tmp / "wide.npz"),
            f"{option} {tmp / 'wide.npz'}: the vectors have dimension {D + 1}, but version "
            f"'v1' has {D}",
            command,
        )
    assert fingerprint(g) == before


# -- query adapters -----------------------------------------------------------------------


def test_adapt_fits_and_records_an_adapter_that_search_then_uses(files):
    tmp, v1 = files
    g = _setup(tmp, compatible=False)
    rng = np.random.default_rng(1)
    v2 = (v1 @ rng.normal(size=(D, 5))).astype(np.float32)  # another model, 5 dimensions
    ids = np.array([f"item{i}" for i in range(N)])
    np.savez(tmp / "v2.npz", ids=ids[::-1], vectors=v2[::-1])  # pairs are joined by id
    np.savez(tmp / "q2.npz", ids=np.array(["q0", "q1"]), vectors=v2[:2])
    assert run("register", g, "--version", "v2", "--dim", 5).exit_code == 0
    result = run("adapt", g, "--from", "v2", "--to", "v0", "--new", tmp / "v2.npz",
                 "--old", tmp / "v0.npz", "--evidence", tmp / "ev.json",
                 "--kind", "affine")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "affine adapter from v2 to v0 fitted on 60 paired items" in result.output
    with Gallery(g) as gallery:
        record = gallery.compatibility()[0]
        assert (record.query_version, record.gallery_version) == ("v2", "v0")
        assert record.evidence["top1_new_old"] == 0.6 and record.evidence["adapter"]["pairs"] == N
        v0 = np.load(tmp / "v0.npz")["vectors"]
        aligned = fit_query_adapter(v2, v0, kind="affine")  # the pairs joined by id
        np.testing.assert_allclose(gallery.adapter("v2", "v0")(v2), aligned(v2), atol=1e-5)
        _, i = gallery.search(v2[:2], 3, version="v2")
    found = run("search", g, "--version", "v2", "--queries", tmp / "q2.npz", "-k", 3,
                "--out", tmp / "r.parquet")  # fmt: skip
    assert found.exit_code == 0, found.output
    hits = pd.read_parquet(tmp / "r.parquet")
    assert hits["id"].tolist() == i.ravel().tolist() and set(hits["version"]) == {"v0"}
    status = run("status", g)
    assert "v0 (adapter)" in status.output


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("--new {tmp}/q.npz", "share 0"),
        ("--new {tmp}/dup.npz", "repeats id"),
        ("--new {tmp}/v1.npz --kind rotation", "kind"),
        ("--new {tmp}/v1.npz --kind affine --rank 99", "rank"),
        ("--new {tmp}/wide.npz", "dimension 9"),
        ("--new {tmp}/v1.npz --evidence {tmp}/missing.json", "missing.json"),
    ],
)
def test_bad_adapt_input_is_one_line_exit_2_and_records_nothing(files, extra, match):
    tmp, v1 = files
    g = _setup(tmp, compatible=False)
    ids = [f"item{i}" for i in range(N)]
    np.savez(tmp / "dup.npz", ids=np.array(ids[:2] + ids[:1]), vectors=v1[:3])
    np.savez(tmp / "wide.npz", ids=np.array(ids), vectors=np.ones((N, 9), np.float32))
    args = f"adapt {g} --from v1 --to v0 --old {tmp}/v0.npz --evidence {tmp}/ev.json " + extra
    before = fingerprint(g)
    one_line_exit_2(run(*args.format(tmp=tmp).split()), match, "adapt")
    assert fingerprint(g) == before
