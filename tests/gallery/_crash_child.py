"""Child process of the crash test: backfill a gallery and add items until done or killed.

Usage: python _crash_child.py DB RUN

Prints ``ready`` once the gallery is open, ``ack ID...`` after each acknowledged ``add``
and ``done ID...`` after each committed backfill batch (the ids it moved), flushing each
line in one write so that a kill never leaves half a line.
"""

import hashlib
import sys
import time

import numpy as np

from graceful.gallery import Gallery, RandomOrder, backfill

DIM = 16


def new_vector(ids):
    """The deterministic 'new model': a vector derived from the id with a seeded RNG."""
    seeds = [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest()) for i in ids]
    return np.stack([np.random.default_rng(s).standard_normal(DIM) for s in seeds]).astype(
        np.float32
    )


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(db, run):
    gallery = Gallery(db)
    say("ready")

    def embed(ids):
        time.sleep(0.1)
        return new_vector(ids)

    def on_batch(info):
        moved = [i for i in info.ids]
        say("done " + " ".join(moved))
        if info.batch % 2 == 0:
            new = [f"n{run}-{info.batch}-{j}" for j in range(3)]
            rng = np.random.default_rng(info.batch)
            gallery.add_with_ids(rng.standard_normal((3, DIM)), new, version="v0")
            say("ack " + " ".join(new))

    backfill(
        gallery,
        to_version="v1",
        embed=embed,
        policy=RandomOrder(7),
        batch_size=24,
        job="crash",
        progress=False,
        on_batch=on_batch,
    )
    say("finished")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
