import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.gallery import (
    Gallery,
    RandomOrder,
    ScoreOrder,
    backfill,
    uncertainty_scores,
)

DIM = 8


def ids_of(n):
    return [f"item{i:04d}" for i in range(n)]


def new_vector(ids):
    """Deterministic 'new model': a vector from the id."""
    return np.stack(
        [np.random.default_rng(int(i[4:]) + 7).standard_normal(DIM) for i in ids]
    ).astype(np.float32)


class Embedder:
    def __init__(self, fail_after=None):
        self.calls = []
        self.fail_after = fail_after

    def __call__(self, ids):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("model server down")
        self.calls.append(list(ids))
        return new_vector(ids)


def make(where, n=100):
    """A gallery of n items under v0, in a file (a path) or a test backend (both stores)."""
    g = Gallery(where) if isinstance(where, str) else where.gallery()
    g.register_version("v0", dim=DIM)
    g.register_version("v1", dim=DIM, compatible_with=["v0"], evidence={"top1_new_old": 0.6})
    rng = np.random.default_rng(0)
    g.add_with_ids(rng.standard_normal((n, DIM)), ids_of(n), version="v0")
    return g


def committed_order(g, job="default"):
    _, ids, done = g.store.plan(job)
    assert (done > 0).all()
    return ids, done


def test_random_order_commits_in_plan_order(backend):
    g = make(backend)
    embed = Embedder()
    report = backfill(
        g, to_version="v1", embed=embed, policy=RandomOrder(3), batch_size=16, progress=False
    )
    assert (report.done, report.skipped, report.batches, report.planned) == (100, 0, 7, 100)
    assert not report.resumed and report.seconds > 0
    plan_ids, done = committed_order(g)
    assert plan_ids == RandomOrder(3).order(sorted(ids_of(100)), 0)
    assert plan_ids != sorted(plan_ids)
    assert [i for call in embed.calls for i in call] == plan_ids
    # batches commit in plan order: done_seq is non-decreasing along the plan
    assert (np.diff(done) >= 0).all() and len(set(done.tolist())) == 7
    assert g.status() == {"v0": 0, "v1": 100}
    for item in g.get(ids_of(100)):
        np.testing.assert_array_equal(item.vector, new_vector([item.id])[0])


def test_a_stale_list_never_plans_an_item_twice(backend):
    # two workers read the ids not at v1 at once; one plans and moves them, then the
    # other extends the plan from its stale list: moved and removed items stay out
    g = make(backend, n=10)
    stale = g.store.ids_not_at("v1")
    g.store.extend_plan("job", "v1", {}, stale[:6])
    positions, ids = g.store.pending("job")
    g.backfill_batch("job", positions.tolist(), ids, new_vector, to_version="v1")
    g.remove_ids([stale[0]])
    g.store.extend_plan("job", "v1", {}, stale)
    _, plan_ids, _ = g.store.plan("job")
    assert plan_ids == stale  # the six moved ones once, then the four never planned
    g.store.extend_plan("job", "v1", {}, stale)  # the pending ones are not appended again
    assert g.store.plan("job")[1] == plan_ids
    # an item removed after it was done and added again under v0 is planned again
    g.remove_ids([stale[1]])
    g.add_with_ids(np.ones((1, DIM)), [stale[1]], version="v0")
    g.store.extend_plan("job", "v1", {}, stale)
    assert g.store.plan("job")[1] == [*plan_ids, stale[1]]


def test_score_order_most_uncertain_first(backend):
    g = make(backend, n=60)
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((60, 4)) * 3
    scores = uncertainty_scores(ids_of(60), logits)
    embed = Embedder()
    backfill(
        g,
        to_version="v1",
        embed=embed,
        policy=ScoreOrder(pd.Series(scores)),
        batch_size=7,
        progress=False,
    )
    plan_ids, _ = committed_order(g)
    expected = sorted(scores, key=lambda i: -scores[i])
    assert plan_ids == expected
    assert [i for call in embed.calls for i in call] == expected
    values = [scores[i] for i in plan_ids]
    assert values == sorted(values, reverse=True)


def test_uncertainty_scores_values():
    logits = np.log(np.array([[0.5, 0.25, 0.25], [1.0, 1e-12, 1e-12]]))
    ent = uncertainty_scores(["a", "b"], logits)
    assert ent["a"] == pytest.approx(-(0.5 * np.log(0.5) + 0.5 * np.log(0.25)))
    assert ent["b"] == pytest.approx(0.0, abs=1e-9)
    lc = uncertainty_scores(["a", "b"], logits, method="least_confidence")
    assert lc == pytest.approx({"a": 0.5, "b": 0.0}, abs=1e-9)
    with pytest.raises(InputError, match="`old_logits`"):
        uncertainty_scores(["a"], logits)
    with pytest.raises(InputError, match=r"`old_logits`.*finite"):
        uncertainty_scores(["a"], [[np.nan, 1.0]])
    with pytest.raises(InputError, match="`method`"):
        uncertainty_scores(["a"], [[1.0]], method="margin")


def test_resume_after_embed_raises(backend):
    g = make(backend)
    first = Embedder(fail_after=3)
    with pytest.raises(RuntimeError, match="model server down"):
        backfill(
            g, to_version="v1", embed=first, policy=ScoreOrder({}), batch_size=10, progress=False
        )
    # three batches committed, visible to the gallery and its store
    assert g.status() == {"v0": 70, "v1": 30}
    g.close()
    g = backend.gallery()
    assert g.status() == {"v0": 70, "v1": 30}
    second = Embedder()
    # a different policy object on resume: the stored plan keeps its order
    report = backfill(
        g, to_version="v1", embed=second, policy=RandomOrder(9), batch_size=10, progress=False
    )
    assert report.resumed and report.done == 70 and report.batches == 7 and report.planned == 100
    done_first = [i for c in first.calls for i in c]
    done_second = [i for c in second.calls for i in c]
    assert not set(done_first) & set(done_second)
    assert done_first + done_second == sorted(ids_of(100))  # ScoreOrder({}): id order
    assert g.status() == {"v0": 0, "v1": 100}
    # running the finished job again does nothing
    again = backfill(
        g, to_version="v1", embed=Embedder(fail_after=0), policy=RandomOrder(0), progress=False
    )
    assert (again.done, again.batches) == (0, 0)


def test_search_works_between_batches_and_items_appear_mid_job(backend):
    g = make(backend, n=50)
    q = new_vector(ids_of(50)[:5])
    seen = []

    def on_batch(info):
        r = g.search(q, 3, version="v1")
        seen.append((info.done, info.total, g.status()["v1"], r.versions[:, 0].tolist()))
        if info.batch == 1:
            # an item added (under the old version) while the job runs, and one removed
            g.add_with_ids(np.ones((1, DIM)), ["item9999"], version="v0")
            g.remove_ids(["item0049"])

    report = backfill(
        g,
        to_version="v1",
        embed=Embedder(),
        policy=RandomOrder(1),
        batch_size=10,
        on_batch=on_batch,
        progress=False,
    )
    counts = [s[2] for s in seen]
    assert counts[:2] == [10, 20] and counts == sorted(counts) and counts[-1] == 50
    assert all(set(s[3]) <= {"v0", "v1"} for s in seen)
    assert seen[0][:2] == (10, 50)
    assert g.status() == {"v0": 0, "v1": 50}
    assert report.planned == 51 and report.done + report.skipped == 51
    # at the end every query finds its own re-embedded item first, under v1
    r = g.search(q, 1, version="v1")
    assert r.ids[:, 0].tolist() == ids_of(5) and set(r.versions[:, 0]) == {"v1"}


def test_skips_items_already_at_the_target(backend):
    g = make(backend, n=20)
    g.replace(new_vector(ids_of(5)), ids_of(5), version="v1")
    embed = Embedder()
    report = backfill(
        g, to_version="v1", embed=embed, policy=RandomOrder(0), batch_size=4, progress=False
    )
    assert report.planned == 15 and report.done == 15
    assert not {i for c in embed.calls for i in c} & set(ids_of(5))


def test_limit_moves_exactly_limit_items_in_a_partial_last_batch(backend):
    g = make(backend, n=40)
    kw = {"to_version": "v1", "policy": RandomOrder(1), "batch_size": 16, "progress": False}
    embed = Embedder()
    first = backfill(g, embed=embed, limit=21, **kw)
    assert (first.done, first.batches, first.limited) == (21, 2, True)
    assert [len(c) for c in embed.calls] == [16, 5]  # the last batch cut short
    assert g.status() == {"v0": 19, "v1": 21}
    ids, done = g.store.plan("default")[1:]
    assert (done > 0).sum() == 21 and set(ids[:21]) == set(g.store.ids_not_at("v0"))
    # items moved meanwhile are skipped and do not count against the limit
    later = [i for i, d in zip(ids, done, strict=True) if d == 0]
    g.replace(new_vector(later[:3]), later[:3], version="v1")
    second = backfill(g, embed=embed, limit=5, **kw)
    assert (second.done, second.skipped, second.limited) == (5, 3, True)
    assert g.status() == {"v0": 11, "v1": 29}
    third = backfill(g, embed=embed, limit=11, **kw)  # exactly what is left: it finishes
    assert (third.done, third.limited, third.resumed) == (11, False, True)
    assert g.status() == {"v0": 0, "v1": 40}
    moved = [i for c in embed.calls for i in c]
    assert len(moved) == len(set(moved)) == 37  # nothing embedded twice
    with pytest.raises(InputError, match=r"`limit`.*0"):
        backfill(g, embed=embed, limit=0, **kw)


def test_backfill_input_errors(tmp_path):
    g = make(str(tmp_path / "g.sqlite"), n=10)
    kw = {"embed": Embedder(), "policy": RandomOrder(0), "progress": False}
    with pytest.raises(InputError, match=r"`to_version`.*'v9'"):
        backfill(g, to_version="v9", **kw)
    with pytest.raises(InputError, match=r"`batch_size`.*0"):
        backfill(g, to_version="v1", batch_size=0, **kw)
    with pytest.raises(InputError, match="`job`"):
        backfill(g, to_version="v1", job="", **kw)
    with pytest.raises(InputError, match="`policy`"):
        backfill(g, to_version="v1", embed=Embedder(), policy="random", progress=False)
    with pytest.raises(InputError, match=r"`embed\(ids\)`.*shape"):
        backfill(
            g,
            to_version="v1",
            embed=lambda ids: np.ones((len(ids), 3)),
            policy=RandomOrder(0),
            progress=False,
        )
    with pytest.raises(InputError, match=r"`embed\(ids\)`.*finite"):
        backfill(
            g,
            to_version="v1",
            embed=lambda ids: np.full((len(ids), DIM), np.nan),
            policy=RandomOrder(0),
            progress=False,
        )
    assert g.status() == {"v0": 10, "v1": 0}
    g.register_version("v2", dim=DIM)
    with pytest.raises(InputError, match=r"`job` 'default'.*'v1'"):
        backfill(g, to_version="v2", **kw)
    with pytest.raises(InputError, match="`seed`"):
        RandomOrder(-1)
    with pytest.raises(InputError, match=r"`scores`.*finite"):
        ScoreOrder({"a": float("nan")})
    with pytest.raises(InputError, match="`scores`"):
        ScoreOrder([1, 2])
    with pytest.raises(InputError, match=r"`scores`.*str"):
        ScoreOrder({1: 0.5})


def test_progress_bar_runs(tmp_path):
    g = make(str(tmp_path / "g.sqlite"), n=10)
    report = backfill(
        g, to_version="v1", embed=Embedder(), policy=RandomOrder(0), batch_size=4, progress=True
    )
    assert report.done == 10


def test_balanced_order_takes_each_group_in_proportion():
    from graceful.gallery import balanced_order

    rng = np.random.default_rng(0)
    groups = np.array([0] * 60 + [1] * 30 + [2] * 10)
    scores = rng.random(100)
    order = balanced_order(scores, groups)
    assert sorted(order.tolist()) == list(range(100))
    for prefix in (10, 30, 50):
        taken = np.bincount(groups[order[:prefix]], minlength=3)
        np.testing.assert_allclose(taken / prefix, [0.6, 0.3, 0.1], atol=0.11)
    for g in range(3):  # within a group: highest score first
        within = scores[order][groups[order] == g]
        assert np.all(np.diff(within) <= 0)


def test_score_order_with_groups_and_bad_groups():
    from graceful.gallery import ScoreOrder

    order = ScoreOrder({"a": 3.0, "b": 2.0, "c": 1.0}, groups={"a": 0, "b": 0, "c": 1})
    assert order.order(["a", "b", "c", "z"], 0) == ["a", "c", "b", "z"]
    assert order.describe()["balanced_groups"] == 2
    with pytest.raises(InputError, match="groups"):
        ScoreOrder({"a": 1.0}, groups={"b": 0})
