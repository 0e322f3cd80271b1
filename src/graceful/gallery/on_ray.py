"""Backfill on Ray Data: the new model runs in actors, the driver commits through the store.

:func:`ray_backfill` is :func:`~graceful.gallery.backfill` with the embedding moved out of
the process: the same stored plan (made or extended by the same policies) and the same
commit protocol (one transaction per batch that moves its items and marks its plan
positions done). The pending batches become a Ray Dataset; ``map_batches`` runs them
through a pool of actors, each of which builds its model once (``make_embed()``) and
embeds the batches it is given; the driver commits each batch through the gallery's store
as it comes back (in the order the actors finish).

What survives what:

* the driver killed: the batches committed stay; running it again with the same ``job``
  continues the stored plan (``resumed`` in the report), embedding only what is pending;
* a worker killed: Ray restarts the actor and runs its batches again (``max_restarts``,
  ``max_task_retries``); when the dataset fails all the same, the driver runs what is still
  pending again, at most ``retries`` times;
* ``embed`` raising on a batch: that batch is not committed (nothing of it is written);
  the driver retries what is pending up to ``retries`` times, then raises
  :class:`BackfillFailedError`, one line naming the job, the batch's first ids and the
  worker's error. Batches committed before stay; the same ``job`` resumes.

Needs the ``ray`` extra (``ray[data]``).
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graceful._extras import require
from graceful._validation import check_callable, check_int, check_real, check_str, fail

from .backfill import (
    BackfillPolicy,
    BackfillReport,
    BatchInfo,
    _check_policy,
    _extend_plan,
    _open_job,
    _report,
)
from .gallery import Gallery

__all__ = ["BackfillFailedError", "ray_backfill"]


class BackfillFailedError(RuntimeError):
    """A backfill stopped because a batch kept failing in a worker.

    The message is one line: the job, the first ids of the batch, how many times it was
    tried and the worker's error. What was committed before stays; running the same job
    again resumes it.
    """


@dataclass(frozen=True)
class _Batch:
    number: int
    positions: list[int]
    ids: list[str]
    todo: list[str]


class _EmbedActor:
    """A Ray Data actor: builds the model once, embeds each batch it is given."""

    def __init__(self, make_embed: Callable[[], Callable[[list[str]], npt.ArrayLike]]) -> None:
        self.embed = make_embed()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        # An error of the user's embed is returned, not raised: a raised one aborts the
        # whole Ray Data execution, whose actors then hold their CPUs until a garbage
        # collection; returned, it fails its batch alone and the driver retries it.
        numbers, data, rows, dims, errors = [], [], [], [], []
        for number, ids in zip(batch["batch"], batch["ids"], strict=True):
            error = ""
            try:
                vectors = np.ascontiguousarray(self.embed([str(i) for i in ids]), np.float32)
                if vectors.ndim != 2:
                    raise ValueError(
                        f"embed(ids) returned an array of shape {tuple(vectors.shape)}, "
                        f"expected ({len(ids)}, dim)"
                    )
            except Exception as exc:  # handed to the driver, one line
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                vectors = np.zeros((0, 0), dtype=np.float32)
            numbers.append(int(number))
            data.append(vectors.tobytes())
            rows.append(vectors.shape[0])
            dims.append(vectors.shape[1])
            errors.append(error)
        return {
            "batch": np.asarray(numbers, dtype=np.int64),
            "data": np.asarray(data, dtype=object),
            "rows": np.asarray(rows, dtype=np.int64),
            "dim": np.asarray(dims, dtype=np.int64),
            "error": np.asarray(errors, dtype=object),
        }


def _batches(gallery: Gallery, job: str, to_version: str, size: int) -> list[_Batch]:
    positions, ids = gallery.store.pending(job)
    out: list[_Batch] = []
    for start in range(0, len(ids), size):
        batch_ids = list(ids[start : start + size])
        out.append(
            _Batch(
                number=len(out),
                positions=[int(p) for p in positions[start : start + size]],
                ids=batch_ids,
                todo=gallery.backfill_todo(batch_ids, to_version=to_version),
            )
        )
    return out


def _results(
    ray: Any,
    batches: Sequence[_Batch],
    make_embed: Callable[[], Callable[[list[str]], npt.ArrayLike]],
    workers: int,
    cpus: float,
) -> Iterator[tuple[int, npt.NDArray[np.float32], str]]:
    """``(batch number, vectors of its todo ids, error)`` of each batch, as they finish.

    ``error`` is empty, or the one-line error of the user's ``embed`` on that batch.
    """
    rows = [{"batch": b.number, "ids": b.todo} for b in batches if b.todo]
    if not rows:
        return
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    mapped = dataset.map_batches(
        _EmbedActor,
        fn_constructor_args=(make_embed,),
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus,
        max_restarts=3,
        max_task_retries=3,
    )
    for out in mapped.iter_rows():
        shape = (int(out["rows"]), int(out["dim"]))
        vectors = np.frombuffer(out["data"], dtype=np.float32).reshape(shape)
        yield int(out["batch"]), vectors, str(out["error"])


_ERROR_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit))(?:\(.*\))?: (.+)$"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _closing(results: Iterator[Any]) -> Iterator[Any]:
    """``results``, closed however the loop over it ends (its Ray Data execution stops)."""
    try:
        yield from results
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def _short(exc: BaseException) -> str:
    """The worker's own error, ``Type: message``, from the traceback text Ray hands back.

    Ray wraps an error raised in an actor in its own exceptions, whose text holds the
    worker's traceback: the first ``...Error: message`` line not of a Ray exception is
    the user's. Falls back to the text's last line.
    """
    text = _ANSI.sub("", str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        found = _ERROR_LINE.match(line)
        if found and not line.startswith("ray.") and "UserCodeException" not in line:
            return f"{found.group(1)}: {found.group(2)}"[:300]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def ray_backfill(
    gallery: Gallery,
    *,
    to_version: str,
    make_embed: Callable[[], Callable[[list[str]], npt.ArrayLike]],
    policy: BackfillPolicy,
    batch_size: int = 256,
    job: str = "default",
    num_workers: int = 1,
    cpus_per_worker: float = 1.0,
    retries: int = 2,
    on_batch: Callable[[BatchInfo], None] | None = None,
) -> BackfillReport:
    """Re-embed every item not under ``to_version`` on Ray Data actors, resumably.

    Args:
        gallery: the gallery whose store holds the items and the plan (any store: only the
            driver writes to it).
        to_version: a registered version.
        make_embed: builds the embedding function once per actor (loads the new model);
            it must pickle (a module-level function or class). The function it returns,
            ``embed(ids) -> (len(ids), dim)``, loads the items and runs the model.
        policy: the order, as for :func:`~graceful.gallery.backfill` (used when the plan is
            created or extended; a resumed job keeps its stored order).
        batch_size: positions per batch (one transaction each).
        job: the job name; the same name resumes the stored plan.
        num_workers: actors embedding at once.
        cpus_per_worker: CPUs Ray reserves for each actor.
        retries: how many more times the pending batches are run after a worker failure
            the actors' own restarts did not absorb.
        on_batch: called with a :class:`~graceful.gallery.BatchInfo` after each committed
            batch (``batch`` numbers follow commits, which follow the actors' finishing
            order).

    Returns:
        A :class:`~graceful.gallery.BackfillReport`.

    Raises:
        InputError: a bad argument; nothing is started.
        BackfillFailedError: a batch kept failing in the workers; what was committed stays.
        MissingExtraError: Ray is not installed (the ``ray`` extra).

    Ray must be initialised (``ray.init(...)``) or will be, with its defaults, on first use.
    """
    started = time.perf_counter()
    if not isinstance(gallery, Gallery):
        raise fail("gallery", "a Gallery", gallery)
    size = check_int("batch_size", batch_size, low=1)
    workers = check_int("num_workers", num_workers, low=1)
    attempts = check_int("retries", retries, low=0) + 1
    check_str("job", job)
    check_callable("make_embed", make_embed)
    cpus = check_real("cpus_per_worker", cpus_per_worker, low=0.0, low_open=True)
    _check_policy(policy)
    (ray,) = require("ray", "graceful.gallery.ray_backfill", ("ray",))
    require("ray", "graceful.gallery.ray_backfill", ("ray.data",))
    resumed = _open_job(gallery, job, to_version)
    store = gallery.store
    done = skipped = committed = 0
    failures = 0
    while True:
        batches = _batches(gallery, job, to_version, size)
        if not batches:
            extra = store.ids_not_at(to_version)
            if not extra:
                break
            _extend_plan(gallery, job, to_version, policy, extra)
            continue
        info = store.plan_info(job)
        total = 0 if info is None else info.total
        pending = sum(len(b.ids) for b in batches)
        by_number = {b.number: b for b in batches}
        try:
            # batches with nothing to embed (items gone or already there) commit at once
            for batch in [b for b in batches if not b.todo]:
                moved, passed = gallery.commit_backfill_batch(
                    job, batch.positions, batch.ids, {}, to_version=to_version
                )
                done, skipped, committed = done + moved, skipped + passed, committed + 1
                pending -= len(batch.ids)
                if on_batch is not None:
                    on_batch(
                        BatchInfo(committed - 1, batch.ids, moved, passed, total - pending, total)
                    )
            results = _results(ray, batches, make_embed, workers, cpus)
            errors: dict[int, str] = {}
            for number, vectors, error in _closing(results):
                batch = by_number[number]
                if not error and vectors.shape[0] != len(batch.todo):
                    error = (
                        f"embed(ids) returned {vectors.shape[0]} vectors for {len(batch.todo)} ids"
                    )
                if error:  # not committed: its positions stay pending, to be retried
                    errors[number] = error
                    continue
                moved, passed = gallery.commit_backfill_batch(
                    job,
                    batch.positions,
                    batch.ids,
                    dict(zip(batch.todo, vectors, strict=True)),
                    to_version=to_version,
                )
                done, skipped, committed = done + moved, skipped + passed, committed + 1
                pending -= len(batch.ids)
                if on_batch is not None:
                    on_batch(
                        BatchInfo(committed - 1, batch.ids, moved, passed, total - pending, total)
                    )
        except Exception as exc:
            if not _is_ray_error(ray, exc):
                raise  # ours (the store): no retry
            reason = _short(exc)
            first = []
        else:
            if not errors:
                continue
            number = min(errors)
            reason, first = errors[number], by_number[number].todo[:3]
        # An execution that failed as a whole holds its actors in a reference cycle until
        # a collection: without one, they keep their CPUs and the next one waits forever.
        gc.collect()
        failures += 1
        if failures >= attempts:
            left = _batches(gallery, job, to_version, size)
            first = first or (left[0].ids[:3] if left else [])
            raise BackfillFailedError(
                f"backfill {job!r} -> {to_version}: a batch failed {failures} time(s) in the "
                f"workers, {len(left)} batch(es) left (one holds {first!r}): {reason}; "
                "the batches committed stay, run the job again to resume"
            )
    gc.collect()  # release the finished executions' actors (and their CPUs) now
    return _report(gallery, job, to_version, done, skipped, committed, started, resumed)


def _is_ray_error(ray: Any, exc: BaseException) -> bool:
    """Whether ``exc`` comes from Ray (a worker's error, a dead actor, a failed dataset)."""
    errors = getattr(ray, "exceptions", None)
    base = getattr(errors, "RayError", None)
    if base is not None and isinstance(exc, base):
        return True
    return type(exc).__module__.split(".")[0] == "ray"
