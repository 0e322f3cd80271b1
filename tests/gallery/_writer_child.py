"""Child process of the many-writers test: add items, or backfill, through one PostgresStore.

Usage: python _writer_child.py CONNINFO SCHEMA add|backfill WHO

``add`` prints ``ack ID...`` after each acknowledged add and ``gone ID`` after each
acknowledged removal; ``backfill`` runs the stored plan ``many`` and prints ``moved N``.
"""

import sys

import numpy as np

from graceful.gallery import Gallery, PostgresStore, RandomOrder, backfill

DIM = 8


def new_vector(ids):
    """The deterministic 'new model' (from the id, so any process gets the same vector)."""
    seeds = [sum(ord(c) * 31**k for k, c in enumerate(i)) % 2**32 for i in ids]
    return np.stack([np.random.default_rng(s).standard_normal(DIM) for s in seeds]).astype(
        np.float32
    )


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(conninfo, schema, role, who):
    gallery = Gallery(store=PostgresStore(conninfo, schema=schema, create=False))
    if role == "add":
        rng = np.random.default_rng(int(who))
        for batch in range(12):
            ids = [f"add{who}-{batch}-{j}" for j in range(6)]
            gallery.add_with_ids(rng.standard_normal((6, DIM)), ids, version="v0")
            say("ack " + " ".join(ids))
            if batch % 4 == 3:
                gallery.remove_ids([ids[0]])
                say(f"gone {ids[0]}")
    else:
        report = backfill(
            gallery,
            to_version="v1",
            embed=new_vector,
            policy=RandomOrder(5),
            batch_size=12,
            job="many",
            progress=False,
        )
        say(f"moved {report.done}")
    gallery.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
