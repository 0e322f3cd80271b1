"""Kill the Ray backfill's driver and workers at 20 random moments, against PostgreSQL.

A Ray cluster (2 CPUs) runs in this process; each run is a driver process
(``_ray_crash_child.py``) that connects to it and backfills a PostgreSQL gallery on two
actors. At a random moment the driver is killed (SIGKILL): in one run in four anywhere from
its start (connecting, planning, starting the actors), in the others while its batches
flow; in every other run one of its workers is killed first (Ray restarts it and runs its
batch again). Meanwhile this process adds items to the same gallery through its own store
(a second writer; until the last run) and the driver adds between its commits: an add
counts once its call has returned (this process) or its
``ack`` line was printed (the driver). After each kill the store must hold every
acknowledged item once, under one version, with the new vector wherever a batch was
reported done, and a plan that never goes back; the last run, not killed, finishes the job.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _crash_common import ChildProcess, check_rows  # noqa: E402
from _ray_embed import DIM, new_vector  # noqa: E402

from conftest import Backend, admin  # noqa: E402

ray = pytest.importorskip("ray", reason="the ray extra is part of make test's install")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

N_ITEMS = 2000
KILLS = 20


@pytest.fixture(scope="module")
def address():
    """The address of a local Ray cluster (2 CPUs) that the driver processes connect to."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


class Driver(ChildProcess):
    def __init__(self, backend, address, folder, run, seconds):
        super().__init__(
            str(HERE / "_ray_crash_child.py"),
            backend.postgres.conninfo(),
            backend.schema,
            address,
            str(folder),
            str(run),
            str(seconds),
        )


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def check_store(backend, acked, done):
    """The invariants that must hold after any kill; returns (items, plan positions done)."""
    with admin(backend.postgres) as con:
        s = backend.schema
        rows = con.execute(f"SELECT id, version, vector FROM {s}.items").fetchall()
        plan = con.execute(
            f"SELECT pos, id, done_seq, outcome FROM {s}.plan_items WHERE job = 'crash'"
        ).fetchall()
    return check_rows(rows, plan, acked, done, new_vector)


def test_kills_of_ray_driver_and_workers_lose_nothing(tmp_path, postgres, address):
    backend = Backend("postgres", tmp_path, postgres)
    try:
        run_crash_test(backend, address, tmp_path)
    finally:
        backend.cleanup()


def run_crash_test(backend, address, tmp_path):
    g = backend.gallery()
    g.register_version("v0", dim=DIM)
    g.register_version("v1", dim=DIM, compatible_with=["v0"], evidence={"top1": 0.6})
    g.add_with_ids(
        np.random.default_rng(0).standard_normal((N_ITEMS, DIM)),
        [f"item{i}" for i in range(N_ITEMS)],
        version="v0",
    )
    writer = backend.gallery()  # this process: a second writer while the drivers backfill
    rng = np.random.default_rng(2026)
    acked, done = set(), set()
    progress, driver_kills, worker_kills, firsts = [], 0, 0, []
    added = 0

    def add_meanwhile():
        nonlocal added
        new = [f"item{5_000_000 + added + j}" for j in range(2)]
        writer.add_with_ids(rng.standard_normal((2, DIM)), new, version="v0")
        acked.update(new)  # acknowledged: the call returned
        added += 2
        time.sleep(0.3)

    def wait_until(deadline, proc):
        while time.perf_counter() < deadline and proc.poll() is None:
            add_meanwhile()

    started = time.perf_counter()
    for run in range(KILLS + 1):
        folder = tmp_path / f"pids{run}"
        folder.mkdir()
        driver = Driver(backend, address, folder, run, 0.3 if run < KILLS else 0.0)
        if run < KILLS:
            assert driver.ready.wait(120), driver.proc.stderr.read().decode()[-2000:]
            if run % 4 == 0:  # any moment: connecting, planning, starting the actors
                wait_until(time.perf_counter() + float(rng.uniform(0.0, 8.0)), driver.proc)
            else:  # while the batches flow
                first = time.perf_counter()
                while not driver.working.is_set() and time.perf_counter() < first + 120:
                    add_meanwhile()
                firsts.append(round(time.perf_counter() - first, 1))
                wait_until(time.perf_counter() + float(rng.uniform(0.0, 1.5)), driver.proc)
                if run % 2:  # a worker first, then the driver
                    workers = [int(p.name) for p in folder.iterdir() if alive(int(p.name))]
                    if workers and driver.proc.poll() is None:
                        os.kill(int(rng.choice(workers)), signal.SIGKILL)
                        worker_kills += 1
                    wait_until(time.perf_counter() + float(rng.uniform(0.5, 3.0)), driver.proc)
            if driver.proc.poll() is None:
                driver.proc.send_signal(signal.SIGKILL)
        # the last run finishes the job, with no adds by this process (they would extend
        # the plan as fast as the driver works it off)
        code, err = driver.wait(300)
        if run < KILLS:
            assert code in (-signal.SIGKILL, 0), err
            driver_kills += code == -signal.SIGKILL
        else:
            assert code == 0, err
            assert driver.lines[-1] == "finished"
        acked |= driver.ids("ack")
        done |= driver.ids("done")
        n_items, n_done = check_store(backend, acked, done)
        progress.append(n_done)

    assert progress == sorted(progress)  # committed plan positions never go back
    assert max(progress[:-1]) < n_done  # the kills landed before the end of the job
    g.refresh()
    status = g.status()
    ids = sorted(g.store.ids_not_at("v0"))
    assert status == {"v0": 0, "v1": n_items} and len(ids) == n_items
    # beyond the acknowledged adds, only a driver's add whose ack line the kill cut
    unacked = set(ids) - acked - {f"item{i}" for i in range(N_ITEMS)}
    assert all(100_000 <= int(i[4:]) < 5_000_000 for i in unacked), sorted(unacked)[:5]
    records = {r.id: r for r in g.store.get(ids)}
    np.testing.assert_array_equal(np.stack([records[i].vector for i in ids]), new_vector(ids))
    _, plan_ids, done_seq = g.store.plan("crash")
    assert sorted(plan_ids) == ids and (done_seq > 0).all()
    assert driver_kills >= KILLS - 2 and worker_kills >= KILLS // 2 - 2
    print(
        f"ray crash test: {driver_kills} driver kills, {worker_kills} worker kills, "
        f"{len(acked)} acknowledged adds, {n_items} items, plan positions done after each "
        f"run: {progress}, seconds to the first batch: {firsts}, "
        f"{time.perf_counter() - started:.1f} s"
    )
