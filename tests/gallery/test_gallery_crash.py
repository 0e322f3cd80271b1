"""Kill -9 a backfilling, adding process at 20 random moments; nothing acknowledged is lost."""

import signal
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graceful.gallery import Gallery

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _crash_child import DIM, new_vector  # noqa: E402
from _crash_common import ChildProcess, check_rows  # noqa: E402

N_ITEMS = 3000
KILLS = 20


def setup_gallery(db):
    g = Gallery(db)
    g.register_version("v0", dim=DIM)
    g.register_version("v1", dim=DIM, compatible_with=["v0"], evidence={"top1_new_old": 0.6})
    rng = np.random.default_rng(0)
    g.add_with_ids(
        rng.standard_normal((N_ITEMS, DIM)), [f"item{i:05d}" for i in range(N_ITEMS)], version="v0"
    )
    g.close()


class Child(ChildProcess):
    def __init__(self, db, run):
        super().__init__(str(HERE / "_crash_child.py"), db, str(run))

    def finish(self, kill_after=None, while_waiting=None):
        if kill_after is not None:
            self.ready.wait(30)
            deadline = time.perf_counter() + kill_after
            while while_waiting is not None and time.perf_counter() < deadline - 0.05:
                while_waiting()
            time.sleep(max(0.0, deadline - time.perf_counter()))
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
        return self.wait()


def check_store(db, acked, done):
    """Invariants that must hold after any kill."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT id, version, vector FROM items").fetchall()
        plan = con.execute(
            "SELECT pos, id, done_seq, outcome FROM plan_items WHERE job='crash'"
        ).fetchall()
    finally:
        con.close()
    return check_rows(rows, plan, acked, done, new_vector)


@pytest.mark.slow
def test_kill_minus_nine_during_backfill_and_adds(tmp_path):
    db = str(tmp_path / "crash.sqlite")
    setup_gallery(db)
    rng = np.random.default_rng(2026)
    acked, done = set(), set()
    progress, killed = [], 0
    reader = Gallery(db)  # searches while the other process backfills
    queries = new_vector([f"item{i:05d}" for i in range(5)])
    searches = []

    def search_meanwhile():
        reader.refresh()
        r = reader.search(queries, 10, version="v1")
        assert (r.ids != None).all()  # noqa: E711
        assert set(r.versions.ravel()) <= {"v0", "v1"}
        assert sum(reader.status().values()) == reader.ntotal >= N_ITEMS
        searches.append(reader.status()["v1"])
        time.sleep(0.02)

    started = time.perf_counter()
    for run in range(KILLS):
        child = Child(db, run)
        code, err = child.finish(
            kill_after=float(rng.uniform(0.0, 0.8)), while_waiting=search_meanwhile
        )
        assert code in (-signal.SIGKILL, 0), err
        killed += code == -signal.SIGKILL
        acked |= child.ids("ack")
        done |= child.ids("done")
        progress.append(check_store(db, acked, done)[1])
    assert progress == sorted(progress)  # committed plan positions never go back
    child = Child(db, KILLS)
    code, err = child.finish()
    assert code == 0, err
    assert child.lines[-1] == "finished"
    acked |= child.ids("ack")
    n_items, n_done = check_store(db, acked, done)

    assert searches == sorted(searches) and len(searches) > KILLS  # saw the backfill advance
    reader.refresh()
    g = Gallery(db)
    status = g.status()
    assert reader.status() == status
    assert status == {"v0": 0, "v1": n_items} and n_items >= N_ITEMS + len(acked)
    assert progress[-1] < n_done == n_items  # kills landed mid-job; every item done once
    ids = sorted(g.store.ids_not_at("v0"))
    items = g.get(ids)
    assert all(it.version == "v1" for it in items)
    np.testing.assert_array_equal(np.stack([it.vector for it in items]), new_vector(ids))
    _, plan_ids, done_seq = g.store.plan("crash")
    assert sorted(plan_ids) == ids and (done_seq > 0).all()
    r = g.search(new_vector(ids[:20]), 1, version="v1")
    assert r.ids[:, 0].tolist() == ids[:20]
    assert killed >= KILLS - 2
    print(
        f"crash test: {killed} kills, {len(acked)} acknowledged adds, {n_items} items, "
        f"{len(searches)} searches meanwhile, "
        f"plan positions done after each kill: {progress}, "
        f"{time.perf_counter() - started:.1f} s"
    )
