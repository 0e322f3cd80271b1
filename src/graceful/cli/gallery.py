"""``graceful gallery``: a versioned embedding gallery on the command line.

A thin layer over :mod:`graceful.gallery`; the gallery is one SQLite file. Vectors come
from embedding files (see :mod:`graceful.io.embeddings`: ``.npz`` with ``ids`` and
``vectors``, or Parquet/CSV with ``id`` and a ``vector`` list column or ``e0, e1, ...``).
Every expected error is one line on stderr and exit status 2; nothing is half-written
(each write is one transaction). Only ``register`` creates a gallery file; ``status`` and
``search`` open it read-only. ``search`` writes what :meth:`Gallery.search
<graceful.gallery.Gallery.search>` returns, one row per hit: ``query``, ``rank``, ``id``,
``distance`` (faiss's: the cosine similarity, or the squared L2 distance) and ``version``.
``adapt`` fits a query adapter (:func:`graceful.retrieval.fit_query_adapter`) on items
embedded under two versions and records it with the compatibility.
Ids and version names are printed as written: rich markup in them is escaped, control
characters are shown as escapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from graceful.cli._common import errors, plain, read_json
from graceful.errors import InputError

if TYPE_CHECKING:
    from graceful.gallery import Gallery

__all__ = ["gallery_app"]

gallery_app = typer.Typer(
    no_args_is_help=True,
    help="A versioned embedding gallery: add, search across versions, adapt, backfill, status.",
)

GalleryArg = Annotated[Path, typer.Argument(help="The gallery's SQLite file.")]

LOCK_TIMEOUT = 60.0
"""Seconds a write waits for another process's write lock before giving up."""


def _open(path: Path, *, create: bool = False, read_only: bool = False) -> Gallery:
    """The gallery in ``path``: created only by ``register``, opened read-only to read."""
    from graceful.gallery import Gallery, SQLiteStore

    store = SQLiteStore(path, timeout=LOCK_TIMEOUT, create=create, read_only=read_only)
    try:
        return Gallery(store=store)
    except BaseException:
        store.close()
        raise


def _safe(value: object) -> str:
    r"""``value`` as text with every control character written as an escape.

    An id or version name from a file could hold a newline, or a terminal escape
    sequence (colours, a hyperlink); it is shown, never obeyed.

    Example:
        >>> _safe("a\nb\x1b]8;;x")
        'a\\nb\\x1b]8;;x'
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _cell(value: object) -> str:
    """``value`` for a rich table: control characters escaped, markup not interpreted."""
    return plain(_safe(value))


def _read_embeddings(path: Path) -> tuple[list[str], np.ndarray]:
    """The ids and vectors of an embedding file (:func:`graceful.io.embeddings.read_embeddings`)."""
    from graceful.io.embeddings import read_embeddings  # pyarrow: loaded when needed

    return read_embeddings(path)


def _check_vectors(
    g: Gallery, version: str, ids: list[str], vectors: np.ndarray, option: str, path: Path
) -> None:
    """Refuse, naming the file, vectors that version ``version`` of ``g`` cannot hold."""
    info = next((v for v in g.versions() if v.name == version), None)
    if info is None:
        return  # the gallery names the unknown version itself
    where = f"{option} {path}"
    if vectors.ndim != 2 or vectors.shape[1] != info.dim:
        size = vectors.shape[1] if vectors.ndim == 2 else "?"
        raise InputError(
            f"{where}: the vectors have dimension {size}, but version {version!r} has {info.dim}"
        )
    if info.metric == "cosine" and len(vectors):
        zero = ~vectors.any(axis=1)
        if zero.any():
            row = int(np.flatnonzero(zero)[0])
            raise InputError(
                f"{where}: vector {row} (id {ids[row]!r}) is all zeros, which the cosine "
                f"version {version!r} cannot normalise"
            )


def _read_json(path: Path, option: str) -> dict[str, Any]:
    data = read_json(path, option)
    if not isinstance(data, dict):
        raise InputError(f"{option} {path}: expected a JSON object")
    return data


@gallery_app.command("register")
def register(
    gallery: GalleryArg,
    version: Annotated[str, typer.Option(help="Name of the embedding version.")],
    dim: Annotated[int, typer.Option(help="Vector dimension.")],
    metric: Annotated[str, typer.Option(help="cosine or l2.")] = "cosine",
    index: Annotated[str, typer.Option(help="flat (exact), ivf or hnsw.")] = "flat",
    compatible_with: Annotated[
        list[str] | None,
        typer.Option(help="An older version whose items this version's queries may search."),
    ] = None,
    evidence: Annotated[
        Path | None,
        typer.Option(help="JSON file of the evaluation that showed the compatibility."),
    ] = None,
) -> None:
    """Register a version (creating the gallery file if needed)."""
    with errors("gallery register"):
        if compatible_with and evidence is None:
            raise InputError("--compatible-with needs --evidence (the evaluation that showed it)")
        proof = None if evidence is None else _read_json(evidence, "--evidence")
        with _open(gallery, create=True) as g:
            g.register_version(
                version,
                dim=dim,
                metric=metric,
                index=index,
                compatible_with=tuple(compatible_with or ()),
                evidence=proof,
            )
        typer.echo(
            f"registered {_safe(version)} (dim {dim}, {metric}, {index}) in {_safe(gallery)}"
        )


def _pairs(new_path: Path, old_path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The ids in both embedding files, in the new file's order, with both files' vectors."""
    new_ids, new = _read_embeddings(new_path)
    old_ids, old = _read_embeddings(old_path)  # each refuses repeated ids itself
    row_of = {item: row for row, item in enumerate(old_ids)}
    common = [(row, row_of[item]) for row, item in enumerate(new_ids) if item in row_of]
    if len(common) < 2:
        raise InputError(
            f"--new {new_path} and --old {old_path}: expected at least 2 ids in both files "
            f"(the paired items the adapter is fitted on), but they share {len(common)}"
        )
    rows_new, rows_old = (np.array(rows) for rows in zip(*common, strict=True))
    return [new_ids[r] for r in rows_new], new[rows_new], old[rows_old]


@gallery_app.command("adapt")
def adapt(
    gallery: GalleryArg,
    query_version: Annotated[
        str, typer.Option("--from", help="The version whose queries go through the adapter.")
    ],
    gallery_version: Annotated[
        str, typer.Option("--to", help="The version of the stored items they then search.")
    ],
    new: Annotated[
        Path, typer.Option(help="Embedding file: the paired items under the --from version.")
    ],
    old: Annotated[
        Path, typer.Option(help="Embedding file: the same items under the --to version.")
    ],
    evidence: Annotated[
        Path, typer.Option(help="JSON file of the evaluation that showed the adapted search.")
    ],
    kind: Annotated[str, typer.Option(help="procrustes, affine or residual_mlp.")] = "procrustes",
    rank: Annotated[
        int | None, typer.Option(help="affine / residual_mlp: rank of the linear part.")
    ] = None,
) -> None:
    """Fit a query adapter on paired items and record it with the compatibility.

    --from queries then search --to items through it; the stored vectors stay as they are.
    """
    from graceful.retrieval import fit_query_adapter

    with errors("gallery adapt"):
        proof = _read_json(evidence, "--evidence")
        ids, x_new, x_old = _pairs(new, old)
        with _open(gallery) as g:
            _check_vectors(g, query_version, ids, x_new, "--new", new)
            _check_vectors(g, gallery_version, ids, x_old, "--old", old)
            metric = {v.name: v.metric for v in g.versions()}.get(gallery_version)
            adapter = fit_query_adapter(
                x_new,
                x_old,
                kind=kind,  # type: ignore[arg-type]  # checked by fit_query_adapter
                rank=rank,
                normalize=metric != "l2",
            )
            g.record_compatibility(
                query_version, gallery_version, {**proof, "adapter": adapter.info}, adapter=adapter
            )
        residual = adapter.info["relative_residual"]
        typer.echo(
            f"recorded a {kind} adapter from {_safe(query_version)} to {_safe(gallery_version)}"
            f" fitted on {len(ids)} paired items (relative residual {residual:.3g})"
        )


@gallery_app.command("add")
def add(
    gallery: GalleryArg,
    version: Annotated[str, typer.Option(help="The version that embedded the vectors.")],
    embeddings: Annotated[Path, typer.Option(help="Embedding file (.npz, .parquet, .csv).")],
) -> None:
    """Add new items (ids and vectors from a file) under a version, in one transaction."""
    with errors("gallery add"):
        ids, vectors = _read_embeddings(embeddings)
        with _open(gallery) as g:
            _check_vectors(g, version, ids, vectors, "--embeddings", embeddings)
            g.add_with_ids(vectors, ids, version=version)
            total = g.ntotal
        typer.echo(f"added {len(ids)} items under {_safe(version)}; the gallery holds {total}")


def _check_out(out: Path | None) -> None:
    """Refuse an ``--out`` file that cannot be written, before any work is done."""
    if out is None:
        return
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"--out {out}: expected a .parquet or .csv file")
    if out.is_dir():
        raise InputError(f"--out {out}: is a folder, not a file")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: its folder {out.parent} does not exist")


@gallery_app.command("search")
def search(
    gallery: GalleryArg,
    version: Annotated[str, typer.Option(help="The version that embedded the queries.")],
    queries: Annotated[Path, typer.Option(help="Query embedding file (ids and vectors).")],
    k: Annotated[
        int,
        typer.Option("-k", "--k", help="Neighbours per query (at most the gallery's size)."),
    ] = 10,
    out: Annotated[
        Path | None, typer.Option(help="Write all results to this .parquet or .csv file.")
    ] = None,
    show: Annotated[int, typer.Option(help="Queries to print.")] = 5,
) -> None:
    """Search every item with queries of a version (refused if a version is incompatible).

    Opens the gallery read-only: it can be searched while another process writes, and
    from a read-only file or folder.
    """
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from graceful.io.atomic import atomic_open

    with errors("gallery search"):
        _check_out(out)
        if k < 1:
            raise InputError(f"-k must be >= 1, got {k}")
        if show < 0:
            raise InputError(f"--show must be >= 0, got {show}")
        query_ids, vectors = _read_embeddings(queries)
        with _open(gallery, read_only=True) as g:
            _check_vectors(g, version, query_ids, vectors, "--queries", queries)
            # more neighbours than items only pads (and a huge -k would allocate it all)
            result = g.search(vectors, min(k, max(g.ntotal, 1)), version=version)
        distances, ids = result
        n, width = ids.shape
        frame = pd.DataFrame(
            {
                "query": [q for q in query_ids for _ in range(width)],
                "rank": list(range(1, width + 1)) * n,
                "id": ids.reshape(-1),
                "distance": distances.reshape(-1),
                "version": result.versions.reshape(-1),
            }
        )
        frame = frame[frame["id"].notna()]
        if out is not None:
            with atomic_open(out, "wb") as handle:
                if out.suffix.lower() == ".parquet":
                    frame.to_parquet(handle, index=False)  # type: ignore[arg-type]
                else:
                    handle.write(frame.to_csv(index=False).encode())  # type: ignore[arg-type]
        table = Table(title=f"{min(show, n)} of {n} queries, top {width}")
        for column in ("query", "rank", "id", "distance", "version"):
            table.add_column(column)
        for row in frame[frame["query"].isin(query_ids[:show])].itertuples(index=False):
            table.add_row(
                _cell(row.query),
                str(row.rank),
                _cell(row.id),
                f"{row.distance:.4f}",
                _cell(row.version),
            )
        Console().print(table)
        if out is not None:
            typer.echo(f"results: {_safe(out)}")


@gallery_app.command("backfill")
def backfill_command(
    gallery: GalleryArg,
    to: Annotated[str, typer.Option("--to", help="The version to re-embed items with.")],
    embeddings: Annotated[
        Path, typer.Option(help="The new version's vectors of the items (ids and vectors).")
    ],
    order: Annotated[str, typer.Option(help="random, or score (highest first).")] = "random",
    scores: Annotated[
        Path | None, typer.Option(help="CSV/Parquet with id and a score column (--order score).")
    ] = None,
    score_column: Annotated[str, typer.Option(help="The score column.")] = "score",
    seed: Annotated[int, typer.Option(help="Seed of the random order.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Items per transaction.")] = 256,
    job: Annotated[str, typer.Option(help="Job name; the same name resumes it.")] = "default",
    limit: Annotated[
        int | None,
        typer.Option(help="Re-embed this many items, then stop (the same --job resumes)."),
    ] = None,
) -> None:
    """Move items to a new version in batches, in order; resumable after a crash."""
    from graceful.gallery import RandomOrder, ScoreOrder, backfill
    from graceful.io.embeddings import read_scores

    with errors("gallery backfill"):
        if order not in ("random", "score"):
            raise InputError(f"--order must be random or score, got {order!r}")
        if (order == "score") != (scores is not None):
            raise InputError("--scores is needed with --order score, and only then")
        if limit is not None and limit < 1:
            raise InputError(f"--limit must be >= 1, got {limit}")
        if batch_size < 1:
            raise InputError(f"--batch-size must be >= 1, got {batch_size}")
        policy = (
            RandomOrder(seed)
            if scores is None
            else ScoreOrder(read_scores(scores, column=score_column))
        )
        ids, vectors = _read_embeddings(embeddings)
        row_of = {item: row for row, item in enumerate(ids)}
        with _open(gallery) as g:
            if to not in {v.name for v in g.versions()}:
                raise InputError(f"--to {to!r}: no such version in {gallery}")
            _check_vectors(g, to, ids, vectors, "--embeddings", embeddings)
            pending = g.store.ids_not_at(to)
            missing = [item for item in pending if item not in row_of]
            if missing:
                raise InputError(
                    f"--embeddings {embeddings}: {len(missing)} items to backfill have no"
                    f" vector there (first: {missing[0]!r})"
                )

            def embed(batch: list[str]) -> np.ndarray:
                return vectors[[row_of[item] for item in batch]]

            report = backfill(
                g,
                to_version=to,
                embed=embed,
                policy=policy,
                batch_size=batch_size,
                job=job,
                limit=limit,
            )
            status = g.status()
        if report.limited:
            typer.echo(f"stopped after --limit {limit} items; run again to resume job {job!r}")
        else:
            typer.echo(
                f"job {report.job!r}: {report.done} items re-embedded in {report.batches}"
                f" batches ({report.seconds:.1f} s){', resumed' if report.resumed else ''}"
            )
        typer.echo("status: " + ", ".join(f"{_safe(v)}: {n}" for v, n in status.items()))


@gallery_app.command("status")
def status(gallery: GalleryArg) -> None:
    """Items per version, registered versions and the compatibility they record.

    Opens the gallery read-only: it works on a read-only file or folder and never
    changes the file.
    """
    from rich.console import Console
    from rich.table import Table

    with errors("gallery status"):
        with _open(gallery, read_only=True) as g:
            counts = g.status()
            versions = g.versions()
            compat = g.compatibility()
        table = Table(title=f"{_cell(gallery)}: {sum(counts.values())} items")
        for column in ("version", "items", "dim", "metric", "index", "its queries search"):
            table.add_column(column)
        for info in versions:
            older = sorted(
                c.gallery_version + (" (adapter)" if c.adapter is not None else "")
                for c in compat
                if c.query_version == info.name
            )
            searchable = [info.name, *older]
            table.add_row(
                _cell(info.name),
                str(counts.get(info.name, 0)),
                str(info.dim),
                _cell(info.metric),
                _cell(info.index),
                ", ".join(_cell(name) for name in searchable),
            )
        Console().print(table)
