"""Re-embed a gallery's items under a new version in batches, resumably (backfill).

:func:`backfill` moves every item not yet under ``to_version`` there, calling the user's
``embed(ids) -> vectors`` (which loads the items and runs the new model) one batch at a
time. The order comes from a policy: :class:`RandomOrder`, or :class:`ScoreOrder` (e.g.
the old model's uncertainty from :func:`uncertainty_scores`, most uncertain first, so the
items most likely to be wrong under the old embedding are redone first).

The plan (the ordered ids) is stored in the gallery's store when a job starts. Each batch
is committed in one transaction that also marks its plan positions done, and the
in-memory indexes are updated after the commit. A job stopped anywhere (an exception, a
kill) and run again with the same ``job`` name continues the stored plan in its order: a
committed batch is never embedded again, and no item is lost or duplicated. Items that
appear (or go back to an old version) while a job runs are appended to its plan and
embedded before it ends. Search keeps working between batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from graceful._progress import progress_bar
from graceful._validation import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_str,
    fail,
)
from graceful.errors import InputError

from .gallery import Gallery

__all__ = [
    "BackfillPolicy",
    "BackfillReport",
    "BatchInfo",
    "RandomOrder",
    "ScoreOrder",
    "backfill",
    "uncertainty_scores",
]


class BackfillPolicy(Protocol):
    """How a backfill orders the items it re-embeds.

    Example:
        >>> isinstance(RandomOrder(0).describe(), dict)
        True
    """

    def order(self, ids: Sequence[str], segment: int) -> list[str]:
        """``ids`` (sorted) in re-embedding order; ``segment``: plan length before them."""
        ...

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, stored with the plan."""
        ...


class RandomOrder:
    """A seeded random order (a permutation of the sorted ids).

    Args:
        seed: the random seed; the same seed and ids give the same order.

    Example:
        >>> RandomOrder(0).order(["a", "b", "c", "d"], 0)
        ['c', 'a', 'b', 'd']
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = check_int("seed", seed, low=0)

    def order(self, ids: Sequence[str], segment: int) -> list[str]:
        """A permutation of ``ids`` from ``(seed, segment)``.

        Example:
            >>> sorted(RandomOrder(1).order(["a", "b", "c"], 0))
            ['a', 'b', 'c']
        """
        rng = np.random.default_rng([self.seed, segment])
        return [ids[i] for i in rng.permutation(len(ids))]

    def describe(self) -> dict[str, Any]:
        """``{"policy": "random", "seed": seed}``.

        Example:
            >>> RandomOrder(3).describe()
            {'policy': 'random', 'seed': 3}
        """
        return {"policy": "random", "seed": self.seed}


def balanced_order(
    scores: npt.ArrayLike, groups: npt.ArrayLike, *, descending: bool = True
) -> npt.NDArray[np.int64]:
    """Positions ordered by score within each group, the groups interleaved by size.

    Item ``i`` with rank ``r`` (0 = highest score, ties by position) among the ``n_g`` items
    of its group gets the key ``(r + 0.5) / n_g``; positions are sorted by that key (then
    by score, then position). Every prefix of the order therefore takes each group in
    proportion to its size, and the highest-scored items of each group first. Backfilling
    in this order spreads the re-embedded items over the space: new queries prefer items
    their own model embedded, so re-embedding one region first draws their neighbours
    there (see the README's backfilling results).

    Args:
        scores: ``(N,)`` finite floats.
        groups: ``(N,)`` group labels (e.g. the old model's predicted class).
        descending: highest score first within a group (default).

    Returns:
        A permutation of ``0 .. N-1``.

    Example:
        >>> # keys: group x 1/6, 1/2, 5/6; group y 1/2 (the tie goes to the higher score)
        >>> balanced_order([0.9, 0.8, 0.1, 0.5], ["x", "x", "x", "y"]).tolist()
        [0, 1, 3, 2]
    """
    values = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(groups)
    if values.ndim != 1 or labels.shape != values.shape:
        raise InputError(
            f"Expected arguments `scores` and `groups` to have shape (N,), but got"
            f" {values.shape} and {labels.shape}"
        )
    if not np.isfinite(values).all():
        raise InputError("Expected argument `scores` to be finite, but it holds NaN or inf")
    n = len(values)
    position = np.arange(n)
    signed = -values if descending else values
    _, codes, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    codes = codes.reshape(-1)
    by_group = np.lexsort((position, signed, codes))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[by_group] = position - starts[codes[by_group]]
    key = (rank + 0.5) / sizes[codes]
    return np.lexsort((position, signed, key)).astype(np.int64)


class ScoreOrder:
    """Order by a score per item (e.g. the old model's uncertainty), highest first.

    Ties are broken by id. Items without a score (added after the scores were computed)
    come last, in id order. With ``groups`` (e.g. the old model's predicted class), the
    order is :func:`balanced_order`: highest score first within each group, every group
    backfilled at the same pace.

    Args:
        scores: ``{id: score}`` or a pandas Series indexed by id; finite floats.
        descending: highest score first (default) or lowest first.
        groups: ``{id: group}`` for every scored id, or ``None``.

    Example:
        >>> ScoreOrder({"a": 0.1, "b": 0.9, "c": 0.5}).order(["a", "b", "c", "d"], 0)
        ['b', 'c', 'a', 'd']
        >>> scores = {"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.5}
        >>> ScoreOrder(scores, groups={"a": 0, "b": 0, "c": 0, "d": 1}).order(list("abcd"), 0)
        ['a', 'b', 'd', 'c']
    """

    def __init__(
        self,
        scores: Mapping[str, float] | Any,
        *,
        descending: bool = True,
        groups: Mapping[str, Any] | None = None,
    ) -> None:
        if hasattr(scores, "items") and callable(scores.items):
            pairs = list(scores.items())
        else:
            raise InputError(
                "Expected argument `scores` to be a mapping or pandas Series of id -> score, "
                f"but got {type(scores).__name__}"
            )
        table: dict[str, float] = {}
        for key, value in pairs:
            if not isinstance(key, str):
                raise InputError(
                    f"Expected argument `scores` to be keyed by str ids, but got {key!r}"
                )
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(
                    f"Expected argument `scores` to hold floats, but {key!r} has {value!r}"
                ) from None
            if not np.isfinite(number):
                raise InputError(
                    f"Expected argument `scores` to be finite, but {key!r} has {number}"
                )
            table[key] = number
        self.scores = table
        self.descending = bool(descending)
        self.groups: dict[str, Any] | None = None
        if groups is not None:
            if not (hasattr(groups, "items") and callable(groups.items)):
                raise InputError(
                    "Expected argument `groups` to be a mapping of id -> group,"
                    f" but got {type(groups).__name__}"
                )
            self.groups = dict(groups.items())
            missing = [i for i in table if i not in self.groups]
            if missing:
                raise InputError(
                    f"Expected argument `groups` to give every scored id a group, but"
                    f" {missing[0]!r} has none"
                )

    def order(self, ids: Sequence[str], segment: int) -> list[str]:
        """``ids`` by score (then id); unscored ids last.

        Example:
            >>> ScoreOrder({"a": 1.0, "b": 2.0}, descending=False).order(["a", "b"], 0)
            ['a', 'b']
        """
        sign = -1.0 if self.descending else 1.0
        scored = sorted(
            (i for i in ids if i in self.scores), key=lambda i: (sign * self.scores[i], i)
        )
        if self.groups is not None and scored:
            groups = [str(self.groups[i]) for i in scored]
            values = [self.scores[i] for i in scored]
            positions = balanced_order(values, groups, descending=self.descending)
            scored = [scored[p] for p in positions.tolist()]
        return scored + sorted(i for i in ids if i not in self.scores)

    def describe(self) -> dict[str, Any]:
        """``{"policy": "score", "descending": ..., "n_scores": ...}``.

        Example:
            >>> ScoreOrder({"a": 1.0}).describe()
            {'policy': 'score', 'descending': True, 'n_scores': 1}
        """
        info: dict[str, Any] = {
            "policy": "score",
            "descending": self.descending,
            "n_scores": len(self.scores),
        }
        if self.groups is not None:
            info["balanced_groups"] = len(set(map(str, self.groups.values())))
        return info


def uncertainty_scores(
    ids: Sequence[str],
    old_logits: npt.ArrayLike,
    *,
    method: Literal["entropy", "least_confidence"] = "entropy",
) -> dict[str, float]:
    """The old model's uncertainty per item, for :class:`ScoreOrder`.

    With ``p = softmax(old_logits)`` per row: ``"entropy"`` is ``-sum(p * log p)`` (nats)
    and ``"least_confidence"`` is ``1 - max(p)``.

    Args:
        ids: one str id per row.
        old_logits: ``(len(ids), C)`` finite floats.
        method: ``"entropy"`` or ``"least_confidence"``.

    Example:
        >>> s = uncertainty_scores(["a", "b"], [[0.0, 0.0], [10.0, 0.0]])
        >>> round(s["a"], 4), round(s["b"], 4)
        (0.6931, 0.0005)
        >>> uncertainty_scores(["a"], [[0.0, 0.0]], method="least_confidence")
        {'a': 0.5}
    """
    check_choice("method", method, ("entropy", "least_confidence"))
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise InputError("Expected argument `ids` to be a sequence of str ids")
    logits = np.asarray(old_logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] != len(ids) or logits.shape[1] < 1:
        raise InputError(
            f"Expected argument `old_logits` to have shape ({len(ids)}, C), but got {logits.shape}"
        )
    if not np.isfinite(logits).all():
        raise InputError("Expected argument `old_logits` to be finite, but it holds NaN or inf")
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    values = -(p * logp).sum(axis=1) if method == "entropy" else 1.0 - p.max(axis=1)
    return dict(zip(ids, values.tolist(), strict=True))


@dataclass(frozen=True)
class BatchInfo:
    """What :func:`backfill` passes to ``on_batch`` after each committed batch.

    Attributes:
        batch: the batch number in this call (from 0).
        ids: the ids of the batch's plan positions.
        embedded: items moved to ``to_version`` by this batch.
        skipped: positions skipped (item gone or already there).
        done: positions done in the plan so far.
        total: positions in the plan.

    Example:
        >>> BatchInfo(0, ["a"], 1, 0, 1, 2).done
        1
    """

    batch: int
    ids: list[str]
    embedded: int
    skipped: int
    done: int
    total: int


@dataclass(frozen=True)
class BackfillReport:
    """What one :func:`backfill` call did.

    Attributes:
        job: the job name.
        to_version: the version items were moved to.
        planned: positions in the job's plan (all calls together).
        done: items embedded and committed by this call.
        skipped: positions skipped by this call (gone, or already at ``to_version``).
        batches: batches committed by this call.
        seconds: wall time of this call.
        resumed: whether the job's plan existed before this call.
        limited: whether ``limit`` stopped this call with items still to re-embed (run
            it again with the same ``job`` to do the rest).

    Example:
        >>> BackfillReport("default", "v1", 10, 10, 0, 1, 0.5, False).done
        10
    """

    job: str
    to_version: str
    planned: int
    done: int
    skipped: int
    batches: int
    seconds: float
    resumed: bool
    limited: bool = False


def _cut(where: Mapping[str, str], ids: Sequence[str], to_version: str, left: int) -> int:
    """How many of ``ids`` a batch takes so that it moves at most ``left`` items.

    Positions whose item is gone or already under ``to_version`` are done without a
    move, so they do not count.

    Example:
        >>> _cut({"a": "v0", "b": "v1", "c": "v0"}, ["a", "b", "c"], "v1", 2)
        3
        >>> _cut({"a": "v0", "b": "v1", "c": "v0"}, ["a", "b", "c"], "v1", 1)
        1
    """
    need = 0
    for taken, item in enumerate(ids, start=1):
        if where.get(item, to_version) != to_version:
            need += 1
            if need == left:
                return taken
    return len(ids)


def _check_policy(policy: object) -> None:
    if not (
        callable(getattr(policy, "order", None)) and callable(getattr(policy, "describe", None))
    ):
        raise InputError(
            f"Expected argument `policy` to be a backfill policy, but got {type(policy).__name__}"
        )


def _open_job(gallery: Gallery, job: str, to_version: str) -> bool:
    """Refresh, check ``to_version`` and the job's stored plan; whether the job resumes."""
    gallery.refresh()
    if to_version not in {v.name for v in gallery.versions()}:
        raise fail("to_version", "a registered version", to_version)
    plan = gallery.store.plan_info(job)
    if plan is not None and plan.to_version != to_version:
        raise InputError(
            f"Expected argument `job` {job!r} to re-embed under {plan.to_version!r} (its stored "
            f"plan), but got to_version={to_version!r}"
        )
    return plan is not None


def _extend_plan(
    gallery: Gallery, job: str, to_version: str, policy: BackfillPolicy, extra: list[str]
) -> None:
    """Append ``extra`` (items not at ``to_version`` and not pending) to the job's plan."""
    current = gallery.store.plan_info(job)
    segment = 0 if current is None else current.total
    gallery.store.extend_plan(job, to_version, policy.describe(), policy.order(extra, segment))


def backfill(
    gallery: Gallery,
    *,
    to_version: str,
    embed: Callable[[list[str]], npt.ArrayLike],
    policy: BackfillPolicy,
    batch_size: int = 256,
    job: str = "default",
    progress: bool = True,
    on_batch: Callable[[BatchInfo], None] | None = None,
    limit: int | None = None,
) -> BackfillReport:
    """Re-embed every item not under ``to_version``, in batches, resumably.

    Args:
        gallery: the gallery (it is refreshed first and kept up to date).
        to_version: a registered version.
        embed: ``embed(ids) -> (len(ids), dim)`` array: loads the items and runs the new
            model. An exception from it stops the job; everything committed before stays.
        policy: the order (:class:`RandomOrder`, :class:`ScoreOrder`). Used when the plan
            is created or extended; a resumed job keeps its stored order.
        batch_size: positions per batch (one transaction each).
        job: the job name; the same name resumes the stored plan.
        progress: show a rich progress bar.
        on_batch: called with a :class:`BatchInfo` after each committed batch (the
            gallery can be searched there).
        limit: re-embed at most this many items in this call (a positive int), then
            stop: the last batch is cut short so that exactly ``limit`` items are moved
            when that many need it. The plan stays stored; the same ``job`` resumes it.

    Returns:
        A :class:`BackfillReport` (``limited`` says whether ``limit`` stopped it).

    Example:
        >>> import numpy as np
        >>> g = Gallery(":memory:")
        >>> g.register_version("v0", dim=2)
        >>> g.register_version("v1", dim=2, compatible_with=["v0"])
        >>> g.add_with_ids(np.eye(3, 2) + 1, ["a", "b", "c"], version="v0")
        >>> r = backfill(g, to_version="v1", embed=lambda ids: np.ones((len(ids), 2)),
        ...              policy=RandomOrder(0), batch_size=2, progress=False)
        >>> r.done, r.batches, g.status()
        (3, 2, {'v0': 0, 'v1': 3})
        >>> g.register_version("v2", dim=2, compatible_with=["v1"])
        >>> r = backfill(g, to_version="v2", embed=lambda ids: np.ones((len(ids), 2)),
        ...              policy=RandomOrder(0), progress=False, job="to-v2", limit=1)
        >>> r.done, r.limited, g.status()
        (1, True, {'v0': 0, 'v1': 2, 'v2': 1})
    """
    started = time.perf_counter()
    check_instance("gallery", gallery, Gallery)
    size = check_int("batch_size", batch_size, low=1)
    check_str("job", job)
    check_callable("embed", embed)
    left = None if limit is None else check_int("limit", limit, low=1)
    _check_policy(policy)
    resumed = _open_job(gallery, job, to_version)
    store = gallery.store
    done = skipped = batches = 0
    limited = False
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task(f"backfill {job!r} -> {to_version}", total=None)
        while True:
            positions, ids = store.pending(job)
            if not len(ids):
                # anything not at to_version and not pending: new items, or items moved back
                extra = store.ids_not_at(to_version)
                if not extra:
                    break
                if left == 0:
                    limited = True
                    break
                _extend_plan(gallery, job, to_version, policy, extra)
                continue
            if left == 0:
                limited = True
                break
            current = store.plan_info(job)
            total = 0 if current is None else current.total
            bar.update(task, total=total, completed=total - len(ids))
            start = 0
            while start < len(ids) and left != 0:
                stop = start + size
                if left is not None and left < size:
                    window = ids[start:stop]
                    stop = start + _cut(store.versions_of(window), window, to_version, left)
                batch_ids = ids[start:stop]
                batch_pos = positions[start:stop].tolist()
                moved, passed = gallery.backfill_batch(
                    job, batch_pos, batch_ids, embed, to_version=to_version
                )
                done += moved
                skipped += passed
                batches += 1
                if left is not None:
                    left -= moved
                bar.update(task, advance=len(batch_ids))
                if on_batch is not None:
                    on_batch(
                        BatchInfo(
                            batches - 1,
                            list(batch_ids),
                            moved,
                            passed,
                            total - len(ids) + start + len(batch_ids),
                            total,
                        )
                    )
                start += len(batch_ids)
    return _report(gallery, job, to_version, done, skipped, batches, started, resumed, limited)


def _report(
    gallery: Gallery,
    job: str,
    to_version: str,
    done: int,
    skipped: int,
    batches: int,
    started: float,
    resumed: bool,
    limited: bool = False,
) -> BackfillReport:
    """The :class:`BackfillReport` of a call that started at ``started`` (``perf_counter``)."""
    final = gallery.store.plan_info(job)
    return BackfillReport(
        job=job,
        to_version=to_version,
        planned=0 if final is None else final.total,
        done=done,
        skipped=skipped,
        batches=batches,
        seconds=time.perf_counter() - started,
        resumed=resumed,
        limited=limited,
    )
