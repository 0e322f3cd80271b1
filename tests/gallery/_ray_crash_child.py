"""Driver process of the Ray crash test: backfill a PostgreSQL gallery on a Ray cluster.

Usage: python _ray_crash_child.py CONNINFO SCHEMA RAY_ADDRESS PID_FOLDER RUN SECONDS

Connects to the running Ray cluster at RAY_ADDRESS, opens the gallery in SCHEMA and runs
``ray_backfill`` with two workers until done or killed. Prints ``ready`` once connected,
``done ID...`` after each committed batch (the ids it moved) and ``ack ID...`` after each
acknowledged add the driver makes between batches, each line flushed in one write so that
a kill never leaves half a line; ``finished`` at the end.
"""

import sys
from pathlib import Path

import numpy as np
import ray

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _ray_embed import DIM, Recording  # noqa: E402

from graceful.gallery import Gallery, PostgresStore, RandomOrder, ray_backfill  # noqa: E402


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(conninfo, schema, address, folder, run, seconds):
    ray.init(
        address=address,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}},
    )
    gallery = Gallery(store=PostgresStore(conninfo, schema=schema))
    say("ready")

    def on_batch(info):
        say("done " + " ".join(info.ids))
        if info.batch % 3 == 0:  # the driver adds too, between its commits
            new = [f"item{(run + 1) * 100_000 + info.batch * 10 + j}" for j in range(2)]
            rng = np.random.default_rng(run * 1000 + info.batch)
            gallery.add_with_ids(rng.standard_normal((2, DIM)), new, version="v0")
            say("ack " + " ".join(new))

    ray_backfill(
        gallery,
        to_version="v1",
        make_embed=Recording(folder, seconds),
        policy=RandomOrder(7),
        batch_size=16,
        job="crash",
        num_workers=2,
        on_batch=on_batch,
    )
    say("finished")


if __name__ == "__main__":
    main(*sys.argv[1:5], int(sys.argv[5]), float(sys.argv[6]))
