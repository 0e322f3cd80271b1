"""RegressionAwareTrainer and UpdateMetrics in two processes (torch.distributed.run, gloo).

The Trainer runs under ``accelerate`` as ``torchrun`` starts it, with no change to the
graceful code: each process caches the old logits of the whole training set, DDP keeps
the weights equal, and the evaluation metrics (over 11 items: not a multiple of the two
processes) equal the update metrics of the trained model computed here in one process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _ddp_transformers_child as child  # noqa: E402

from graceful.metrics import model_update_metrics  # noqa: E402

pytestmark = pytest.mark.slow


def test_two_processes_train_and_evaluate_as_one(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(HERE / "_ddp_transformers_child.py"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["table"] for r in ranks] == [24, 24]  # every process holds the whole table
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # DDP kept the weights equal
    timing = ("runtime", "_per_second")
    same = [{k: v for k, v in r["metrics"].items() if not k.endswith(timing)} for r in ranks]
    assert same[0] == same[1]  # both processes report the metrics of the whole set

    tokenizer, _, evaluation = child.tables(tmp_path)
    new = child.tiny_bert(1)
    new.load_state_dict(torch.load(tmp_path / "new.pt"))
    new.eval()
    old_logits = child.old_predictions(child.tiny_bert(0).eval(), evaluation, tokenizer)
    new_logits = child.old_predictions(new, evaluation, tokenizer)
    labels = np.array(evaluation["label"])
    expected = model_update_metrics(labels, old_logits.argmax(1), new_logits.argmax(1))
    got = ranks[0]["metrics"]
    assert got["eval_error_rate_new"] < got["eval_error_rate_old"]  # the update learned
    for name in ("error_rate_old", "error_rate_new", "negative_flip_rate", "positive_flip_rate"):
        assert got[f"eval_{name}"] == pytest.approx(float(expected[name]), abs=1e-9), name
