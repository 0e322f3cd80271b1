"""``python -m benchmarks kd-control``: does distillation from the old model help at all here?

A control for the positive-congruent benchmark, written without graceful's Trainer, losses
or teachers (a plain PyTorch loop, Adam, cosine schedule, batch 128), so that what it shows
belongs to the setting and not to the library. Per setting and seed it trains an old model,
then a new one from another seed with cross-entropy alone and with cross-entropy plus plain
distillation from the old model's logits on the training inputs
(``T^2 KL(softmax(z_old / T) || softmax(z_new / T))``, ``T = 2``, weight 1), and reports
the test error, the NFR against the old model and the training error of both.

Focal distillation is distillation reweighted; where plain distillation raises the new
model's error, the positive-congruent recipes have nothing cheap to trade.

Settings: ``cnn`` (the ``image_new_seed`` CNN on Animal-MNIST, the scenario's 4 epochs and
12), ``mlp`` (a 2-layer pixel MLP on Animal-MNIST, 10 epochs, no BatchNorm) and ``text``
(the ``text_half_data`` head on MiniLM-L6 embeddings, 10 epochs, the old model on all
the data), and ``digits`` (a seconds-long smoke run, not a result).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from graceful.data import Splits, load_digits
from graceful.metrics import error_rate, negative_flip_rate
from graceful.models import MLPHead, SmallCNN

from ._common import results_header, setting_named, stat, write_json_and_markdown

__all__ = ["KD_SETTINGS", "KDSetting", "kd_markdown", "run_kd_control"]


@dataclass(frozen=True)
class KDSetting:
    """Data, architecture and epoch budget of one control run."""

    name: str
    title: str
    load: Callable[[], Splits]
    make: Callable[[], nn.Module]
    epochs: int
    temperature: float = 2.0
    weight: float = 1.0


def _animal_mnist() -> Splits:
    from benchmarks.data import load_animal_mnist

    return load_animal_mnist(val_size=1000, test_size=4000)


def _rotten_tomatoes() -> Splits:
    from benchmarks.data import load_rotten_tomatoes

    return load_rotten_tomatoes("minilm-l6", val_size=1280, test_size=4000, show_progress=False)


def _pixel_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, 10),
    )  # fmt: skip


KD_SETTINGS: dict[str, KDSetting] = {
    "cnn_4ep": KDSetting(
        "cnn_4ep", "Animal-MNIST, CNN width 16, 4 epochs (the image_new_seed budget)",
        _animal_mnist, lambda: SmallCNN(width=16, num_classes=10), 4,
    ),
    "cnn_12ep": KDSetting(
        "cnn_12ep", "Animal-MNIST, CNN width 16, 12 epochs",
        _animal_mnist, lambda: SmallCNN(width=16, num_classes=10), 12,
    ),
    "mlp": KDSetting(
        "mlp", "Animal-MNIST, pixel MLP (512-512, no BatchNorm), 10 epochs",
        _animal_mnist, _pixel_mlp, 10,
    ),
    "text": KDSetting(
        "text", "Rotten Tomatoes, MLP head (256) on MiniLM-L6 embeddings, 10 epochs",
        _rotten_tomatoes, lambda: MLPHead(384, 2, hidden=256), 10,
    ),
    "digits": KDSetting(
        "digits", "Digits smoke test: CNN width 4, 5 epochs",
        load_digits, lambda: SmallCNN(width=4, num_classes=10), 5,
    ),
}  # fmt: skip
"""Control setting name -> setting."""


def _fit(
    setting: KDSetting, seed: int, x: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None
) -> nn.Module:
    """A plain Adam loop; ``teacher`` (logits per training row) adds the distillation term."""
    torch.manual_seed(seed)
    model = setting.make()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps_per_epoch = -(-len(y) // 128)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, setting.epochs * steps_per_epoch
    )
    order = torch.Generator().manual_seed(seed)
    t = setting.temperature
    for _ in range(setting.epochs):
        model.train()
        for batch in torch.split(torch.randperm(len(y), generator=order), 128):
            logits = model(x[batch])
            loss = F.cross_entropy(logits, y[batch])
            if teacher is not None:
                kl = F.kl_div(
                    F.log_softmax(logits / t, 1),
                    F.log_softmax(teacher[batch] / t, 1),
                    log_target=True,
                    reduction="batchmean",
                )
                loss = loss + setting.weight * t * t * kl
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(part) for part in torch.split(x, 1024)])


def run_kd_control(
    names: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path | None = None,
    stem: str = "kd_control",
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Per setting: mean ± std over ``seeds`` of test error, NFR and training error, CE vs KD.

    Writes ``<stem>.json`` (with the per-seed values and the targets) and ``<stem>.md``
    under ``out_dir`` when it is given.
    """
    specs = [setting_named(KD_SETTINGS, n) for n in names]
    results = results_header(
        "kd_control", "Distillation control (python -m benchmarks kd-control)", command
    )
    out: list[dict[str, Any]] = results["settings"]
    for setting in specs:
        name = setting.name
        start = time.perf_counter()
        data = setting.load()
        x_train, y_train, _ = data.train.to_tensor_dataset().tensors
        x_test, y_test, _ = data.test.to_tensor_dataset().tensors
        raw: dict[str, dict[str, list[float]]] = {"ce": {}, "kd": {}}
        for seed in seeds:
            old = _fit(setting, 10 + seed, x_train, y_train, None)
            old_train, old_test = _logits(old, x_train), _logits(old, x_test)
            for method, teacher in (("ce", None), ("kd", old_train)):
                new = _fit(setting, 100 + seed, x_train, y_train, teacher)
                new_test = _logits(new, x_test)
                values = {
                    "error_rate_old": error_rate(y_test, old_test),
                    "error_rate_new": error_rate(y_test, new_test),
                    "negative_flip_rate": negative_flip_rate(y_test, old_test, new_test),
                    "train_error_new": error_rate(y_train, _logits(new, x_train)),
                }
                for key, value in values.items():
                    raw[method].setdefault(key, []).append(float(value))
            ce, kd = raw["ce"], raw["kd"]
            log(
                f"[kd-control {name}] seed {seed}: CE ER {ce['error_rate_new'][-1]:.4f} "
                f"NFR {ce['negative_flip_rate'][-1]:.4f}; KD ER {kd['error_rate_new'][-1]:.4f} "
                f"NFR {kd['negative_flip_rate'][-1]:.4f}"
            )
        rows = {
            method: {key: stat(values) for key, values in metrics.items()}
            for method, metrics in raw.items()
        }
        er_gap = float(np.mean(raw["kd"]["error_rate_new"]) - np.mean(raw["ce"]["error_rate_new"]))
        ce_nfr = float(np.mean(raw["ce"]["negative_flip_rate"]))
        nfr_ratio = float(np.mean(raw["kd"]["negative_flip_rate"])) / max(ce_nfr, 1e-12)
        out.append(
            {
                "name": name,
                "title": setting.title,
                "epochs": setting.epochs,
                "seeds": list(seeds),
                "seconds": time.perf_counter() - start,
                "rows": rows,
                "raw": raw,
                "targets": [
                    {
                        "name": "KD ER_new <= CE ER_new + 0.5 pt",
                        "value": 100 * er_gap,
                        "threshold": 0.5,
                        "passed": bool(100 * er_gap <= 0.5),
                    },
                    {
                        "name": "KD NFR <= CE NFR",
                        "value": nfr_ratio,
                        "threshold": 1.0,
                        "passed": bool(nfr_ratio <= 1.0),
                    },
                ],
            }
        )
    if out_dir is not None:
        write_json_and_markdown(results, out_dir, stem, [kd_markdown(s) for s in out])
    return results


def kd_markdown(setting: dict[str, Any]) -> str:
    """One setting's rows: CE and KD, test ER, NFR and training error in % (mean ± std)."""

    def cell(s: dict[str, Any]) -> str:
        return f"{100 * s['mean']:.2f} ± {100 * (s['std'] or 0.0):.2f}"

    lines = [
        f"### {setting['title']}",
        "",
        "| new model | ER_old (%) | ER_new (%) | NFR (%) | training error (%) |",
        "|---|---|---|---|---|",
    ]
    for method, label in (("ce", "cross-entropy"), ("kd", "cross-entropy + KD (T 2, weight 1)")):
        row = setting["rows"][method]
        lines.append(
            f"| {label} | {cell(row['error_rate_old'])} | {cell(row['error_rate_new'])} | "
            f"{cell(row['negative_flip_rate'])} | {cell(row['train_error_new'])} |"
        )
    lines += ["", f"Mean ± std over {len(setting['seeds'])} seeds; {setting['seconds']:.0f} s."]
    lines += ["", "| target | value | met |", "|---|---|---|"]
    for t in setting["targets"]:
        lines.append(f"| {t['name']} | {t['value']:.3g} | {'yes' if t['passed'] else '**no**'} |")
    return "\n".join(lines) + "\n"
