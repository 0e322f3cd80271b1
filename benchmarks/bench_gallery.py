"""Benchmark: `graceful.gallery.Gallery` search vs the same raw faiss index.

Builds the same index twice, raw faiss and through a `Gallery` (one version, SQLite store),
whose API follows faiss (`add_with_ids(x, ids)`, `D, I = search(x, k)` with faiss's
distances, so both return the same `D`; the largest difference where `I` agrees is reported),
over seeded clustered float32 vectors, for exact search (flat inner product on normalised
vectors, i.e. cosine) and one approximate index (IVF-Flat, same nlist/nprobe/training),
times `search` of the same query batch on both (best of 3 runs each, same process) and
reports throughput (queries/s) and the ratio gallery/raw (target >= 0.8), plus build
times (raw faiss; gallery add = SQLite transaction + index; gallery reopen = rebuild of
the index from SQLite).

Usage: python benchmarks/bench_gallery.py [--n 1000000] [--dim 128] [--queries 1000]
       [--k 10] [--out benchmarks/results]
Writes OUT/bench_gallery.json and OUT/bench_gallery.md.

With --reopen, times only reopening a gallery (flat and IVF): from its saved indexes
(`Gallery(path, index_dir=...)`, best of 3) against `faiss.read_index` of the same saved
file (best of 3) and a rebuild from SQLite (once), and prints the ratios; writes
OUT/bench_gallery_reopen.json and .md (target, issue 17: <= 1.5x read_index at 1M x 128).

With --add, times adding to a SQLite gallery (flat, cosine) against raw faiss plus one
``executemany`` of the same rows into a plain SQLite table (target >= 0.7x the throughput),
and search through a PostgreSQL-backed gallery against the raw index (target >= 0.8x; a
throwaway server is started as the tests do, or --postgres CONNINFO); writes
OUT/bench_gallery_add.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

import graceful
from graceful.gallery import Gallery
from graceful.io.atomic import atomic_write_text

try:  # run as a script (python benchmarks/bench_gallery.py) or as a module
    from ._markdown import targets_table
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._markdown import targets_table


def best_of(fn, repeats=3):
    times = []
    out = None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def clustered(rng, n, dim, centres, chunk=200_000):
    c = rng.standard_normal((centres, dim), dtype=np.float32) * 3
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        out[s : s + m] = c[rng.integers(0, centres, m)] + rng.standard_normal(
            (m, dim), dtype=np.float32
        )
    return out


def normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def raw_index(kind, xn, dim):
    tic = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(xn)
    else:
        n = len(xn)
        nlist = max(1, min(int(math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.max_points_per_centroid = 64
        index.train(xn)
        index.nprobe = min(nlist, max(8, nlist // 16))
        index.add(xn)  # faiss's Python wrapper keeps `quantizer` alive with `index`
    return index, time.perf_counter() - tic


def run(args):
    rng = np.random.default_rng(0)
    tic = time.perf_counter()
    x = clustered(rng, args.n, args.dim, 1000)
    q = clustered(rng, args.queries, args.dim, 1000)
    ids = [f"doc{i:08d}" for i in range(args.n)]
    data_s = time.perf_counter() - tic
    xn, qn = normalise(x), normalise(q)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for kind in ("flat", "ivf"):
            raw, raw_build = raw_index(kind, xn, args.dim)
            raw_s, (raw_d, raw_i) = best_of(lambda raw=raw: raw.search(qn, args.k))
            del raw
            path = os.path.join(tmp, f"{kind}.sqlite")
            tic = time.perf_counter()
            g = Gallery(path)
            g.register_version("v0", dim=args.dim, metric="cosine", index=kind)
            g.add_with_ids(x, ids, version="v0")
            add_s = time.perf_counter() - tic
            g.close()
            tic = time.perf_counter()
            g = Gallery(path)
            reopen_s = time.perf_counter() - tic
            gal_s, (gal_d, gal_i) = best_of(lambda g=g: g.search(q, args.k, version="v0"))
            same = gal_i == np.array(ids, dtype=object)[raw_i]
            agree = float(np.mean(same))
            d_diff = float(np.abs(gal_d - raw_d)[same].max()) if same.any() else math.nan
            g.close()
            db_mb = sum(f.stat().st_size for f in Path(tmp).glob(f"{kind}.sqlite*")) / 1e6
            rows.append(
                {
                    "index": kind,
                    "raw_build_s": raw_build,
                    "gallery_add_s": add_s,
                    "gallery_reopen_s": reopen_s,
                    "raw_search_s": raw_s,
                    "gallery_search_s": gal_s,
                    "raw_qps": args.queries / raw_s,
                    "gallery_qps": args.queries / gal_s,
                    "ratio": raw_s / gal_s,
                    "same_ids_as_raw": agree,
                    "max_distance_diff": d_diff,
                    "sqlite_mb": db_mb,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            for f in Path(tmp).glob(f"{kind}.sqlite*"):
                f.unlink()
    return {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "k": args.k,
        "data_s": data_s,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "numpy": np.__version__,
        "graceful": graceful.__version__,
        "python": platform.python_version(),
        "results": rows,
    }


def reopen(args):
    """Reopening a gallery: saved indexes (index_dir) vs a rebuild vs faiss.read_index."""
    rng = np.random.default_rng(0)
    x = clustered(rng, args.n, args.dim, 1000)
    ids = [f"doc{i:08d}" for i in range(args.n)]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for kind in ("flat", "ivf"):
            path = os.path.join(tmp, f"{kind}.sqlite")
            folder = Path(tmp) / f"{kind}-indexes"
            g = Gallery(path, index_dir=folder)
            g.register_version("v0", dim=args.dim, metric="cosine", index=kind)
            g.add_with_ids(x, ids, version="v0")
            tic = time.perf_counter()
            g.close()  # saves the indexes
            save_s = time.perf_counter() - tic
            manifest = json.loads((folder / "manifest.json").read_text())
            faiss_file = folder / manifest["folder"] / manifest["versions"][0]["file"]
            read_s, _ = best_of(lambda f=faiss_file: faiss.read_index(str(f)))

            def opened(path=path, **kw):
                h = Gallery(path, **kw)
                source = h.index_source.kind
                h.store.close()  # not h.close(): nothing to save
                return source

            saved_s, source = best_of(lambda folder=folder: opened(index_dir=folder))
            assert source == "saved", source
            rebuild_s, _ = best_of(opened, repeats=1)
            rows.append(
                {
                    "index": kind,
                    "read_index_s": read_s,
                    "saved_reopen_s": saved_s,
                    "rebuild_s": rebuild_s,
                    "save_s": save_s,
                    "saved_over_read_index": saved_s / read_s,
                    "rebuild_over_saved": rebuild_s / saved_s,
                    "index_mb": faiss_file.stat().st_size / 1e6,
                }
            )
            print(
                f"{kind}: faiss.read_index {read_s:.3f} s, Gallery reopen from saved indexes "
                f"{saved_s:.3f} s ({saved_s / read_s:.2f}x read_index), rebuild from SQLite "
                f"{rebuild_s:.3f} s ({rebuild_s / saved_s:.1f}x the saved reopen), "
                f"save {save_s:.2f} s",
                flush=True,
            )
    return {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "n": args.n,
        "dim": args.dim,
        "cpus": os.cpu_count(),
        "faiss": faiss.__version__,
        "results": rows,
        "targets": [
            {
                "name": f"reopen {row['index']} from saved indexes <= 1.5x faiss.read_index",
                "value": round(row["saved_over_read_index"], 3),
                "threshold": 1.5,
                "passed": bool(row["saved_over_read_index"] <= 1.5),
            }
            for row in rows
        ],
    }


def _raw_add(x, ids, path):
    """The baseline of an add: normalise, a raw faiss flat index's add, and one
    ``executemany`` of the same rows (id, float32 vector) into a plain SQLite table, committed."""
    tic = time.perf_counter()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(normalise(x))
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE items (id TEXT, vector BLOB)")
        with con:
            con.executemany(
                "INSERT INTO items VALUES (?, ?)",
                zip(ids, (row.tobytes() for row in x), strict=True),
            )
    finally:
        con.close()
    return time.perf_counter() - tic, index


def add_and_postgres(args):
    """Adding to the SQLite gallery vs raw faiss + one executemany; search through a
    PostgreSQL-backed gallery vs the raw index."""
    from graceful.gallery import PostgresStore

    rng = np.random.default_rng(0)
    x = clustered(rng, args.n, args.dim, 1000)
    q = clustered(rng, args.queries, args.dim, 1000)
    ids = [f"doc{i:08d}" for i in range(args.n)]
    server = None
    conninfo = args.postgres
    if conninfo is None:  # a throwaway server, as the tests start one
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "gallery"))
        from _postgres_server import Server

        server = Server()
        server.start()
        conninfo = server.conninfo()
    try:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            raws, adds = [], []
            for repeat in range(args.repeats):
                raw_s, raw = _raw_add(x, ids, os.path.join(tmp, f"raw{repeat}.sqlite"))
                raws.append(raw_s)
                g = Gallery(os.path.join(tmp, f"gallery{repeat}.sqlite"))
                g.register_version("v0", dim=args.dim, metric="cosine")
                tic = time.perf_counter()
                g.add_with_ids(x, ids, version="v0")
                adds.append(time.perf_counter() - tic)
                g.close()
                print(f"add: raw {raw_s:.2f} s, gallery {adds[-1]:.2f} s", flush=True)
            qn = normalise(q)  # raw faiss gets prepared queries, as in run()
            raw_search_s, (_, raw_i) = best_of(lambda: raw.search(qn, args.k))
            schema = "bench_gallery"
            pg = Gallery(store=PostgresStore(conninfo, schema=schema))
            try:
                pg.register_version("v0", dim=args.dim, metric="cosine")
                tic = time.perf_counter()
                pg.add_with_ids(x, ids, version="v0")
                pg_add_s = time.perf_counter() - tic
                pg_search_s, (_, pg_i) = best_of(lambda: pg.search(q, args.k, version="v0"))
                same = float(np.mean(pg_i == np.array(ids, dtype=object)[raw_i]))
            finally:
                pg.close()
                import psycopg

                with psycopg.connect(conninfo, autocommit=True) as con:
                    con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        if server is not None:
            server.remove()
    add_ratio = min(raws) / min(adds)
    search_ratio = raw_search_s / pg_search_s
    return {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "k": args.k,
        "cpus": os.cpu_count(),
        "faiss": faiss.__version__,
        "raw_add_s": raws,
        "gallery_add_s": adds,
        "add_items_per_s": {"raw": args.n / min(raws), "gallery": args.n / min(adds)},
        "postgres_add_s": pg_add_s,
        "raw_search_qps": args.queries / raw_search_s,
        "postgres_gallery_search_qps": args.queries / pg_search_s,
        "postgres_same_ids_as_raw": same,
        "targets": [
            {
                "name": "SQLite gallery add >= 0.7x the throughput of raw faiss + one executemany",
                "value": round(add_ratio, 3),
                "threshold": 0.7,
                "passed": bool(add_ratio >= 0.7),
            },
            {
                "name": "search through the PostgreSQL-backed gallery >= 0.8x raw faiss",
                "value": round(search_ratio, 3),
                "threshold": 0.8,
                "passed": bool(search_ratio >= 0.8),
            },
        ],
    }


def add_markdown(r):
    rate = r["add_items_per_s"]
    lines = [
        f"# bench_gallery --add: {r['n']:,} items, dim {r['dim']}, flat, cosine",
        "",
        f"`{r['command']}`",
        "",
        f"faiss {r['faiss']}, {r['cpus']} CPU cores. Add: best of {len(r['raw_add_s'])}; the "
        "baseline normalises, adds to a raw `IndexFlatIP` and inserts the same (id, vector) "
        "rows with one `executemany` into a plain SQLite table, committed. Search: "
        f"{r['queries']:,} queries, k={r['k']}, best of 3.",
        "",
        "| | raw | gallery | ratio |",
        "|---|---|---|---|",
        f"| add (items/s, SQLite) | {rate['raw']:,.0f} | {rate['gallery']:,.0f} | "
        f"**{rate['gallery'] / rate['raw']:.2f}x** |",
        f"| search (queries/s, PostgreSQL store) | {r['raw_search_qps']:,.0f} | "
        f"{r['postgres_gallery_search_qps']:,.0f} | "
        f"**{r['postgres_gallery_search_qps'] / r['raw_search_qps']:.2f}x** |",
        "",
        f"Adding the same items to the PostgreSQL-backed gallery took {r['postgres_add_s']:.1f} s; "
        f"its hits equal the raw index's on {r['postgres_same_ids_as_raw']:.4f} of them.",
        "",
        *targets_table(r["targets"]),
    ]
    return "\n".join(lines) + "\n"


def reopen_markdown(r):
    lines = [
        f"# bench_gallery --reopen: {r['n']:,} items, dim {r['dim']}",
        "",
        f"`{r['command']}`",
        "",
        f"faiss {r['faiss']}, {r['cpus']} CPU cores. Best of 3 opens (the rebuild: one).",
        "",
        "| index | faiss.read_index | reopen from saved indexes | ratio | rebuild from SQLite "
        "| index file |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["results"]:
        lines.append(
            f"| {row['index']} | {row['read_index_s']:.3f} s | {row['saved_reopen_s']:.3f} s | "
            f"**{row['saved_over_read_index']:.2f}x** | {row['rebuild_s']:.2f} s | "
            f"{row['index_mb']:,.0f} MB |"
        )
    lines += ["", *targets_table(r["targets"])]
    return "\n".join(lines) + "\n"


def markdown(r):
    lines = [
        f"# bench_gallery: {r['n']:,} items, dim {r['dim']}, {r['queries']:,} queries, k={r['k']}",
        "",
        f"`{r['command']}`",
        "",
        f"graceful {r['graceful']}, faiss {r['faiss']} ({r['faiss_threads']} threads), "
        f"numpy {r['numpy']}, Python {r['python']}, {r['cpus']} CPU cores, {r['platform']}.",
        "Seeded clustered float32 vectors (1,000 centres); cosine metric (inner product of",
        "normalised vectors). Search: best of 3 runs of the whole query batch, same process.",
        "Raw faiss gets pre-normalised queries and returns int64 labels; the gallery call",
        "includes input checks, normalising the queries and mapping labels to str ids and",
        "versions. Both return faiss's distances (`D`, here inner products); max |D diff| is",
        "over the hits where both return the same id.",
        "IVF: nlist = sqrt(n), nprobe = max(8, nlist/16), the same for both.",
        "",
        "| index | raw faiss q/s | gallery q/s | gallery/raw (target >= 0.8) | same ids as raw "
        "| max abs D diff | raw build | gallery add (SQLite + index) "
        "| gallery reopen (rebuild from SQLite) | SQLite size |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["results"]:
        lines.append(
            f"| {row['index']} | {row['raw_qps']:,.0f} | {row['gallery_qps']:,.0f} | "
            f"**{row['ratio']:.2f}x** | {row['same_ids_as_raw']:.4f} | "
            f"{row['max_distance_diff']:.1e} | "
            f"{row['raw_build_s']:.1f} s | {row['gallery_add_s']:.1f} s | "
            f"{row['gallery_reopen_s']:.1f} s | {row['sqlite_mb']:,.0f} MB |"
        )
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--tmp", default=None, help="folder for the temporary SQLite files")
    p.add_argument(
        "--reopen",
        action="store_true",
        help="only time reopening: saved indexes (index_dir) vs rebuild vs faiss.read_index",
    )
    p.add_argument(
        "--add",
        action="store_true",
        help="only time adding (SQLite) vs raw faiss + executemany, and search through a "
        "PostgreSQL-backed gallery",
    )
    p.add_argument(
        "--postgres",
        default=None,
        help="with --add: a libpq connection string (default: a throwaway local server)",
    )
    p.add_argument("--repeats", type=int, default=2, help="with --add: add repeats")
    args = p.parse_args()
    for name in ("n", "dim", "queries", "k", "repeats"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be a positive int", file=sys.stderr)
            sys.exit(2)
    if args.add:
        result = add_and_postgres(args)
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "bench_gallery_add.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(args.out / "bench_gallery_add.md", add_markdown(result))
        print(add_markdown(result))
        return
    if args.reopen:
        result = reopen(args)
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            args.out / "bench_gallery_reopen.json", json.dumps(result, indent=2) + "\n"
        )
        atomic_write_text(args.out / "bench_gallery_reopen.md", reopen_markdown(result))
        print(reopen_markdown(result))
        return
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "bench_gallery.json", json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    atomic_write_text(args.out / "bench_gallery.md", text)
    print(text)


if __name__ == "__main__":
    main()
