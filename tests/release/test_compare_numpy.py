"""compare() builds its frame in NumPy: the frame of FlipFrame's torch path, without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.io.predictions import ComparisonInputs
from graceful.metrics import FlipFrame
from graceful.release import compare


def _inputs(seed: int, *, class_map: bool, k: int = 3) -> ComparisonInputs:
    rng = np.random.default_rng(seed)
    n, c_new = 400, 5
    c_old = 4 if class_map else c_new
    target = rng.integers(0, c_new, n)
    old = np.argsort(rng.random((n, c_old)), axis=1)[:, :k]
    new = np.argsort(rng.random((n, c_new)), axis=1)[:, :k]
    # both models right often enough to fill every cell (a swap keeps each row distinct)
    for top, aim in ((old, np.minimum(target, c_old - 1)), (new, target)):
        hit = rng.random(n) < 0.6
        rows = np.flatnonzero(hit)
        for r in rows:
            row = list(top[r])
            if aim[r] in row:
                row.remove(aim[r])
            top[r] = [aim[r], *row[: k - 1]]
    lut = np.array([0, 1, -1, 2], dtype=np.int64) if class_map else None
    return ComparisonInputs(
        ids=np.arange(n),
        id_source="position",
        target=target.astype(np.int64),
        old_topk=old.astype(np.int64),
        new_topk=new.astype(np.int64),
        old_confidence=None,
        new_confidence=None,
        class_names=[f"c{i}" for i in range(c_new)],
        old_class_names=[f"o{i}" for i in range(c_old)],
        class_map=lut,
        groups={"g": rng.choice(np.array(["x", "y"], dtype=object), n)},
        n_rows_old=n,
        n_rows_new=n,
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("class_map", [False, True])
@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_compare_frame_equals_torch_frame(seed, class_map, top_k):
    inputs = _inputs(seed, class_map=class_map)
    ref = FlipFrame(
        inputs.target,
        inputs.old_topk,
        inputs.new_topk,
        groups=inputs.groups,
        class_names=inputs.class_names,
        top_k=top_k,
        class_map=inputs.class_map,
        num_classes=len(inputs.class_names),
        ranked=True,
    )
    frame = compare(inputs, top_k=top_k, n_resamples=100).frame
    assert frame.counts == ref.counts
    np.testing.assert_array_equal(frame.cells(), ref.cells())
    pd.testing.assert_frame_equal(frame.by_class, ref.by_class)
    pd.testing.assert_frame_equal(frame.by_group, ref.by_group)
    pd.testing.assert_frame_equal(frame.flip_matrix, ref.flip_matrix)


def test_compare_top_k_beyond_the_inputs():
    with pytest.raises(InputError, match="at most the 3 ranked predictions the inputs hold"):
        compare(_inputs(0, class_map=False), top_k=4)


def test_command_line_compare_never_imports_torch(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    for name in ("old", "new"):
        logits = rng.standard_normal((300, 3))
        frame = pd.DataFrame({"id": np.arange(300), "label": y})
        for c in range(3):
            frame[f"logit_{c}"] = logits[:, c]
        frame.to_parquet(tmp_path / f"{name}.parquet")
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TORCH', 'torch' in sys.modules, "
        "'torchmetrics' in sys.modules))\n"
        "from graceful.cli.app import main\n"
        "sys.argv = ['graceful', 'compare', *sys.argv[1:]]\n"
        "main()\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "old.parquet"),
            str(tmp_path / "new.parquet"),
            "--out",
            str(tmp_path / "report"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "TORCH False False" in proc.stdout
    assert (tmp_path / "report" / "summary.json").is_file()
