"""The Metric classes under torch.distributed (2 CPU processes, gloo) equal one process."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from graceful.metrics import ModelUpdateMetrics, NegativeFlipRate, model_update_metrics

WORLD_SIZE = 2
N, CUT = 157, 41  # rank 0 gets 41 samples, rank 1 gets 116


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    target = rng.integers(0, 5, N)
    old = rng.normal(size=(N, 5))
    old[np.arange(N), target] += rng.random(N) * 2.5
    new = rng.normal(size=(N, 5))
    new[np.arange(N), target] += rng.random(N) * 3.0
    weight = rng.integers(1, 9, N) / 4  # dyadic: sums are exact in any order
    return target, old, new, weight


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        target, old, new, weight = _data()
        shard = slice(0, CUT) if rank == 0 else slice(CUT, N)
        every = ModelUpdateMetrics(top_k=2)
        nfr = NegativeFlipRate()
        weighted = NegativeFlipRate()
        # several unequal batches per rank, incl. one of a single sample
        idx = np.arange(N)[shard]
        for batch in np.split(idx, [1, 7]):
            t, o, n = torch.from_numpy(target[batch]), old[batch], new[batch]
            every.update(t, torch.from_numpy(o), torch.from_numpy(n))
            nfr.update(t, o, n)
            weighted.update(t, o, n, sample_weight=weight[batch])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = {
                "every": {k: float(v) for k, v in every.compute().items()},
                "nfr": float(nfr.compute()),
                "weighted": float(weighted.compute()),
                "local_n": int(every.counts[4:8].sum()),
            }
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_sync_equals_single_process(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    target, old, new, weight = _data()
    want = model_update_metrics(target, old, new, top_k=2)
    want_nfr = model_update_metrics(target, old, new)["negative_flip_rate"]
    want_weighted = model_update_metrics(target, old, new, sample_weight=weight)
    for rank in range(WORLD_SIZE):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["every"] == want  # exact: synced counts are sums
        assert got["nfr"] == want_nfr
        assert got["weighted"] == want_weighted["negative_flip_rate"]
        # compute() syncs a copy; each rank keeps its own shard's state afterwards
        assert got["local_n"] == (CUT if rank == 0 else N - CUT)
