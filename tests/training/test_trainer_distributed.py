"""The trainer under torch.distributed (2 CPU processes, gloo): identical weights, exact resume."""

import dataclasses
import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import TensorDataset

from graceful.errors import TrainingCollapsedError
from graceful.metrics import error_rate, negative_flip_rate
from graceful.training import OnlineTeacher, TrainConfig, Trainer

WORLD_SIZE = 2
D, C = 6, 3


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g)
    y = (x[:, :C] + 0.5 * torch.randn(n, C, generator=g)).argmax(1)
    return TensorDataset(x, y, torch.arange(n))


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, C))


class OneClass(nn.Module):
    """Cross-entropy towards class 0 for every sample: a run that collapses."""

    def forward(self, new, old, target):
        return nn.functional.cross_entropy(new, torch.zeros_like(target))


class CrashAt(nn.Module):
    """Cross-entropy that raises on call ``n`` (every rank makes the same calls)."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, new, old, target):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("simulated crash")
        return nn.functional.cross_entropy(new, target)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        torch.set_num_threads(1)
        train, val = _data(64, 0), _data(27, 1)  # 27: the shards are unequal (14 + 13)
        old = _mlp(100)
        old_val = OnlineTeacher(old)(val.tensors[0], val.tensors[2])
        # different initial weights per rank: DDP broadcasts rank 0's
        model = _mlp(rank)
        config = TrainConfig(
            epochs=2,
            batch_size=8,
            progress=False,
            checkpoint_dir=str(Path(out_dir) / "ckpt"),
        )
        result = Trainer(model, config, old_val_logits=old_val).fit(train, val)
        torch.save(model.state_dict(), Path(out_dir) / f"rank{rank}.pt")
        logits = Trainer(model, config).predict(val)
        summary = {
            "history": [{k: v for k, v in h.items() if "seconds" not in k} for h in result.history],
            "error": error_rate(val.tensors[1], logits),
            "nfr": negative_flip_rate(val.tensors[1], old_val, logits),
        }
        counts = torch.bincount(logits.argmax(1), minlength=C)
        summary["top_class_share"] = int(counts.max()) / len(val)
        summary["predicted_classes"] = int((counts > 0).sum())
        # fewer validation samples than processes: rank 1's shard is empty
        tiny = TensorDataset(*(t[:1] for t in val.tensors))
        no_ckpt = dataclasses.replace(config, checkpoint_dir=None)
        last = Trainer(_mlp(rank), no_ckpt, old_val_logits=old_val[:1]).fit(train, tiny).history[-1]
        summary["tiny"] = [last["top_class_share"], last["predicted_classes"]]
        # a collapse is decided on the synchronised counts: every rank raises at once
        # (4 steps per epoch: epoch 24 is the first to end after 100 steps)
        collapsing = dataclasses.replace(no_ckpt, epochs=25, on_collapse="raise")
        try:
            Trainer(_mlp(rank), collapsing, loss=OneClass()).fit(train, val)
        except TrainingCollapsedError as exc:
            summary["collapse"] = str(exc)
        # crash in the 2nd epoch (4 steps per epoch per rank), then resume in a new Trainer
        crashed = dataclasses.replace(config, checkpoint_dir=str(Path(out_dir) / "crashed"))
        try:
            Trainer(_mlp(rank), crashed, loss=CrashAt(6), old_val_logits=old_val).fit(train, val)
        except RuntimeError as exc:
            assert "simulated crash" in str(exc)
        resumed = _mlp(5)
        Trainer(resumed, crashed, old_val_logits=old_val).fit(train, val)
        summary["resumed_equal"] = all(
            torch.equal(p, q) for p, q in zip(resumed.parameters(), model.parameters(), strict=True)
        )
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(summary))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name]), name
    summaries = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    assert summaries[0]["history"] == summaries[1]["history"]
    assert summaries[0]["resumed_equal"] and summaries[1]["resumed_equal"]
    last = summaries[0]["history"][-1]
    # validation was sharded across ranks and synced: it equals the whole-set functions
    assert last["val_error"] == summaries[0]["error"]
    assert last["val_nfr"] == summaries[0]["nfr"]
    assert last["top_class_share"] == summaries[0]["top_class_share"]
    assert last["predicted_classes"] == summaries[0]["predicted_classes"]
    assert summaries[0]["tiny"] == summaries[1]["tiny"] == [1.0, 1]
    share = f"{100 * int((_data(27, 1).tensors[1] == 0).sum()) / 27:.0f} %"
    want = f"epoch 24: training collapsed: 100 % of predictions are class 0 ({share} of the labels)"
    assert summaries[0]["collapse"] == summaries[1]["collapse"] == want
    checkpoint = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert checkpoint["epochs_done"] == 2
    for name, tensor in states[0].items():
        assert torch.equal(checkpoint["model"][name], tensor), name
