"""ray_backfill on a local Ray cluster (2 CPUs), against both stores."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _ray_embed import DIM, DyingOnce, FailingOn, Slow, WrongShape, make_embed, new_vector  # noqa: E402

from graceful.errors import InputError  # noqa: E402
from graceful.gallery import (  # noqa: E402
    BackfillFailedError,
    RandomOrder,
    backfill,
    ray_backfill,
)

ray = pytest.importorskip("ray", reason="the ray extra is part of make test's install")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for this module's tests; its workers import the test helpers."""
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def ids_of(n):
    return [f"item{i:04d}" for i in range(n)]


def make(backend, n=240):
    g = backend.gallery()
    g.register_version("v0", dim=DIM)
    g.register_version("v1", dim=DIM, compatible_with=["v0"], evidence={"top1": 0.6})
    g.add_with_ids(np.random.default_rng(0).standard_normal((n, DIM)), ids_of(n), version="v0")
    return g


def stored(g, ids):
    records = g.store.get(ids)
    return {r.id: r for r in records}


def check_all_moved(g, n):
    assert g.status() == {"v0": 0, "v1": n}
    records = stored(g, ids_of(n))
    np.testing.assert_array_equal(
        np.stack([records[i].vector for i in ids_of(n)]), new_vector(ids_of(n))
    )


def test_ray_backfill_equals_the_single_process_backfill(cluster, backend):
    g = make(backend)
    g.add_with_ids(new_vector(["item9000"]), ["item9000"], version="v1")  # already there
    seen = []
    report = ray_backfill(
        g,
        to_version="v1",
        make_embed=make_embed,
        policy=RandomOrder(3),
        batch_size=32,
        num_workers=2,
        on_batch=seen.append,
    )
    assert (report.done, report.skipped, report.planned, report.resumed) == (240, 0, 240, False)
    assert report.batches == len(seen) == 8
    assert sorted(i for b in seen for i in b.ids) == ids_of(240)
    assert seen[-1].done == seen[-1].total == 240
    assert g.status() == {"v0": 0, "v1": 241}
    records = stored(g, ids_of(240))
    got = np.stack([records[i].vector for i in ids_of(240)])
    # the same vectors as the single-process backfill of the same plan order
    h = backend.__class__(backend.name, Path(backend.path).parent / "second", backend.postgres)
    Path(h.path).parent.mkdir()
    try:
        ref = make(h)
        backfill(ref, to_version="v1", embed=new_vector, policy=RandomOrder(3), progress=False)
        want = stored(ref, ids_of(240))
        np.testing.assert_array_equal(got, np.stack([want[i].vector for i in ids_of(240)]))
        assert g.store.pending("default")[1] == []
    finally:
        h.cleanup()


def test_a_failing_batch_is_never_half_committed_and_the_job_resumes(cluster, backend, tmp_path):
    g = make(backend)
    fixed = tmp_path / "fixed"
    failing = FailingOn("item0100", str(fixed))
    with pytest.raises(BackfillFailedError) as info:
        ray_backfill(
            g,
            to_version="v1",
            make_embed=failing,
            policy=RandomOrder(0),
            batch_size=20,
            job="j",
            retries=1,
        )
    message = str(info.value)
    assert "\n" not in message
    assert "backfill 'j' -> v1: a batch failed 2 time(s) in the workers" in message
    assert "model server down while embedding item0100" in message
    g.refresh()
    status = g.status()
    assert status["v0"] + status["v1"] == 240 and status["v0"] >= 20  # the bad batch, whole
    _, pending = g.store.pending("j")
    assert "item0100" in pending and len(pending) == status["v0"]
    assert stored(g, ["item0100"])["item0100"].version == "v0"
    fixed.write_text("ok")
    report = ray_backfill(
        g, to_version="v1", make_embed=failing, policy=RandomOrder(0), batch_size=20, job="j"
    )
    assert report.resumed and report.done == status["v0"]
    check_all_moved(g, 240)


def test_a_killed_worker_is_restarted_and_its_batch_run_again(cluster, backend, tmp_path):
    g = make(backend, n=160)
    marker = tmp_path / "killed"
    report = ray_backfill(
        g,
        to_version="v1",
        make_embed=DyingOnce("item0050", str(marker)),
        policy=RandomOrder(1),
        batch_size=16,
        num_workers=2,
    )
    assert marker.exists()  # a worker did die
    assert report.done == 160
    check_all_moved(g, 160)


def test_bad_arguments_are_one_line_errors_and_write_nothing(cluster, backend):
    g = make(backend, n=20)
    before = backend.dump()
    base = {"to_version": "v1", "make_embed": make_embed, "policy": RandomOrder(0)}
    for change, match in (
        ({"batch_size": 0}, "`batch_size`"),
        ({"num_workers": 0}, "`num_workers`"),
        ({"retries": -1}, "`retries`"),
        ({"cpus_per_worker": 0}, "`cpus_per_worker`"),
        ({"make_embed": "model"}, "`make_embed`"),
        ({"policy": object()}, "`policy`"),
        ({"to_version": "v9"}, "`to_version`"),
    ):
        with pytest.raises(InputError, match=match):
            ray_backfill(g, **{**base, **change})
    with pytest.raises(InputError, match="`gallery`"):
        ray_backfill("gallery.sqlite", **base)
    assert backend.dump() == before
    with pytest.raises(BackfillFailedError, match=r"returned 3 vectors for 2 ids"):
        ray_backfill(g, **{**base, "make_embed": WrongShape()}, batch_size=2, retries=0)
    g.refresh()
    assert g.status() == {"v0": 20, "v1": 0}


def test_a_job_is_bound_to_its_version(cluster, backend):
    g = make(backend, n=20)
    g.register_version("v2", dim=DIM, compatible_with=["v0"])
    ray_backfill(g, to_version="v1", make_embed=Slow(0.0), policy=RandomOrder(0), job="k")
    with pytest.raises(InputError, match=r"job` 'k' to re-embed under 'v1'"):
        ray_backfill(g, to_version="v2", make_embed=make_embed, policy=RandomOrder(0), job="k")
