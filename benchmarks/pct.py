"""``python -m benchmarks pct``: positive-congruent training on real data, in the papers' form.

For each setting and seed it trains an old model, then new models without treatment and
with each regression-aware loss, and reports ER_old, ER_new, NFR and relative NFR on the
test split (mean ± std over seeds), as in Yan et al., "Positive-congruent training",
CVPR 2021, Table 1:

* **no treatment**: cross-entropy only;
* **KD**: plain distillation from the old model (``alpha=1, beta=0``);
* **FD-KL / FD-LM**: focal distillation (weight ``alpha + beta * 1[old right]``) with the
  KL or logit-matching distance, old logits from a cached table (no extra forward pass);
* **LDI**: logit difference inhibition against the old model;
* **ELODI**: LDI against an ensemble of independently trained new-architecture models;
* **ensemble paragon**: an ensemble of old models vs an ensemble of new ones.

Every model's test predictions are saved as Parquet (``id``, ``label``, ``logit_*``), so
``graceful compare <dir>/seed0/old.parquet <dir>/seed0/fd_lm.parquet`` opens the report of
any pair.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from graceful.data import Splits
from graceful.errors import TrainingDivergedError
from graceful.io.atomic import atomic_open
from graceful.losses import (
    DistillationLoss,
    FocalDistillationLoss,
    LogitDifferenceInhibitionLoss,
    PositiveCongruentLoss,
)
from graceful.metrics import model_update_metrics
from graceful.training import (
    CachedTeacher,
    EnsembleTeacher,
    TrainConfig,
    Trainer,
    seed_everything,
)

from ._common import stat

__all__ = ["METHODS", "PCTSetting", "run_pct_setting", "summarise"]

METHODS: dict[str, str] = {
    "no_treatment": "No treatment",
    "kd": "KD",
    "fd_kl": "FD-KL",
    "fd_lm": "FD-LM",
    "ldi": "LDI",
    "elodi": "ELODI (ensemble teacher)",
    "paragon": "Ensemble paragon",
}
"""Method key -> label, in table order."""

_REPORTED = (
    "error_rate_old",
    "error_rate_new",
    "negative_flip_rate",
    "relative_negative_flip_rate",
)


@dataclass(frozen=True)
class PCTSetting:
    """One benchmark setting: data, the two architectures, training recipes and loss weights.

    ``load_old`` and ``load_new`` return the same samples (same ids, same order) as seen by
    each model: for images both are the pixels; for text, the old model's and the new
    model's sentence embeddings.
    """

    name: str
    title: str
    description: str
    load_old: Callable[[], Splits]
    load_new: Callable[[], Splits]
    make_old: Callable[[], nn.Module]
    make_new: Callable[[], nn.Module]
    old_config: TrainConfig
    new_config: TrainConfig
    ensemble_size: int = 3
    temperature: float = 1.0
    fd_alpha: float = 1.0
    fd_beta: float = 5.0
    lam_kd: float = 1.0
    lam_fd_kl: float = 1.0
    lam_fd_lm: float = 1.0
    lam_ldi: float = 1.0
    lam_elodi: float = 1.0
    ldi_margin: float = 0.0
    ldi_p: int = 2
    sweep_beta: Sequence[float] = (0.0, 1.0, 2.0, 5.0, 10.0)
    sweep_lambda: Sequence[float] = (0.0, 0.1, 0.3, 1.0, 3.0)
    extra: dict[str, Any] = field(default_factory=dict)


def _regression(setting: PCTSetting, method: str, *, beta: float | None = None) -> nn.Module:
    t = setting.temperature
    if method == "kd":
        return DistillationLoss(temperature=t)
    if method in ("fd_kl", "fd_lm"):
        return FocalDistillationLoss(
            alpha=setting.fd_alpha,
            beta=setting.fd_beta if beta is None else beta,
            distance="kl" if method == "fd_kl" else "logit_matching",
            temperature=t,
            filter="old_correct",
        )
    if method in ("ldi", "elodi"):
        return LogitDifferenceInhibitionLoss(margin=setting.ldi_margin, p=setting.ldi_p)
    raise ValueError(f"no regression loss for method {method!r}")


def _lam(setting: PCTSetting, method: str) -> float:
    return float(getattr(setting, f"lam_{method}"))


def _sweep_reuse(setting: PCTSetting, parameter: str, value: float) -> str | None:
    """The method whose run is this sweep point, or None when the point must be trained."""
    if parameter == "lambda" and value == 0:
        return "no_treatment"
    if (parameter == "lambda" and value == setting.lam_fd_lm) or (
        parameter == "beta" and value == setting.fd_beta
    ):
        return "fd_lm"
    return None


def _save_predictions(
    path: Path, ids: np.ndarray, labels: np.ndarray, logits: torch.Tensor, classes: Sequence[str]
) -> None:
    frame = pd.DataFrame({"id": ids, "label": [classes[i] for i in labels]})
    values = logits.detach().float().cpu().numpy()
    for c, name in enumerate(classes):
        frame[f"logit_{name}"] = values[:, c]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        frame.to_parquet(handle, index=False)  # type: ignore[arg-type]


def _epoch_seconds(history: Sequence[dict[str, Any]]) -> float:
    """Median seconds per epoch (the median shrugs off a slow first epoch or a hiccup)."""
    return float(np.median([h["seconds"] for h in history]))


def run_pct_setting(
    setting: PCTSetting,
    seeds: Sequence[int],
    *,
    out_dir: Path | None = None,
    sweep_seeds: Sequence[int] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and evaluate every method of :data:`METHODS` for each seed.

    Args:
        setting: the setting.
        seeds: model seeds (data split fixed; init and data order vary).
        out_dir: where to save test predictions (``<out_dir>/seed<k>/<method>.parquet``).
        sweep_seeds: seeds on which to also sweep FD-LM's ``beta`` and ``lambda``.
        log: where progress lines go.

    Returns:
        The per-seed raw results: ``{"per_seed": {seed: {method: metrics}}, "epoch_time":
        [...], "sweep": [...], "seconds": float}``; :func:`summarise` turns them into
        the table.
    """
    start = time.perf_counter()
    old_data, new_data = setting.load_old(), setting.load_new()
    if not np.array_equal(old_data.test.ids, new_data.test.ids) or not np.array_equal(
        old_data.train.ids, new_data.train.ids
    ):
        raise ValueError(f"setting {setting.name}: old and new data must hold the same samples")
    classes = list(new_data.test.classes)
    y_test = torch.as_tensor(new_data.test.y)
    old_train, old_val, old_test = (
        old_data.train.to_tensor_dataset(),
        old_data.val.to_tensor_dataset(),
        old_data.test.to_tensor_dataset(),
    )
    new_train, new_val, new_test = (
        new_data.train.to_tensor_dataset(),
        new_data.val.to_tensor_dataset(),
        new_data.test.to_tensor_dataset(),
    )
    per_seed: dict[int, dict[str, dict[str, float]]] = {}
    epoch_times: list[dict[str, float]] = []
    sweep: list[dict[str, Any]] = []

    for seed in seeds:
        log(f"[{setting.name}] seed {seed}: old models")
        old_models = []
        for j in range(setting.ensemble_size):
            model_seed = 1000 * seed + j
            seed_everything(model_seed)  # the weights' init, not only the data order
            trainer = Trainer(setting.make_old(), replace(setting.old_config, seed=model_seed))
            trainer.fit(old_train, old_val)
            old_models.append(trainer)
        old = old_models[0]
        old_test_logits = old.predict(old_test)
        old_val_logits = old.predict(old_val)
        teacher = CachedTeacher.build(old.model, old_train)

        def train_new(
            method: str,
            seed_offset: int,
            *,
            loss: nn.Module | None = None,
            teacher_: Any = None,
            seed: int = seed,
            old_val_logits: torch.Tensor = old_val_logits,
        ) -> Trainer:
            seed_everything(1000 * seed + 100 + seed_offset)
            trainer = Trainer(
                setting.make_new(),
                replace(setting.new_config, seed=1000 * seed + 100 + seed_offset),
                loss=loss,
                teacher=teacher_,
                old_val_logits=old_val_logits,
            )
            trainer.fit(new_train, new_val)
            return trainer

        log(f"[{setting.name}] seed {seed}: new models without treatment")
        new_models = [train_new("no_treatment", j) for j in range(setting.ensemble_size)]
        logits: dict[str, torch.Tensor] = {"no_treatment": new_models[0].predict(new_test)}
        plain_epoch = _epoch_seconds(new_models[0].history)

        ensemble_teacher = EnsembleTeacher(
            [CachedTeacher.build(m.model, new_train) for m in new_models]
        )
        fd_epoch = math.nan
        diverged: list[str] = []
        for method in ("kd", "fd_kl", "fd_lm", "ldi", "elodi"):
            log(f"[{setting.name}] seed {seed}: {METHODS[method]}")
            loss = PositiveCongruentLoss(_regression(setting, method), lam=_lam(setting, method))
            try:
                trainer = train_new(
                    method,
                    0,
                    loss=loss,
                    teacher_=ensemble_teacher if method == "elodi" else teacher,
                )
            except TrainingDivergedError as exc:
                log(f"[{setting.name}] seed {seed}: {METHODS[method]} diverged: {exc}")
                diverged.append(method)
                continue
            logits[method] = trainer.predict(new_test)
            if method == "fd_kl":
                fd_epoch = _epoch_seconds(trainer.history)
        epoch_times.append(
            {"plain_s": plain_epoch, "fd_cached_s": fd_epoch, "ratio": fd_epoch / plain_epoch}
        )

        results = {
            method: model_update_metrics(y_test, old_test_logits, method_logits)
            for method, method_logits in logits.items()
        }
        for method in diverged:  # reported as n/a with a count, never as a number
            results[method] = dict.fromkeys(_REPORTED, math.nan)
        old_ensemble = torch.stack([m.predict(old_test) for m in old_models]).mean(0)
        new_ensemble = torch.stack([m.predict(new_test) for m in new_models]).mean(0)
        results["paragon"] = model_update_metrics(y_test, old_ensemble, new_ensemble)
        per_seed[seed] = {m: {k: results[m][k] for k in _REPORTED} for m in METHODS}

        if out_dir is not None:
            folder = out_dir / f"seed{seed}"
            ids, labels = new_data.test.ids, new_data.test.y
            _save_predictions(folder / "old.parquet", ids, labels, old_test_logits, classes)
            _save_predictions(folder / "old_ensemble.parquet", ids, labels, old_ensemble, classes)
            _save_predictions(folder / "paragon.parquet", ids, labels, new_ensemble, classes)
            for method, method_logits in logits.items():
                _save_predictions(folder / f"{method}.parquet", ids, labels, method_logits, classes)

        if seed in sweep_seeds:
            swept = (("beta", setting.sweep_beta), ("lambda", setting.sweep_lambda))
            for parameter, values in swept:
                for value in values:
                    beta = value if parameter == "beta" else None
                    lam = value if parameter == "lambda" else setting.lam_fd_lm
                    # A point that is a run already made (same seed, same data order) is
                    # reused rather than retrained: lambda = 0 is no treatment, and the
                    # setting's own beta and lambda are the FD-LM row.
                    reused = _sweep_reuse(setting, parameter, value)
                    if reused is not None:
                        m = results[reused]
                        log(f"[{setting.name}] seed {seed}: sweep {parameter}={value:g} = {reused}")
                    else:
                        log(f"[{setting.name}] seed {seed}: sweep FD-LM {parameter}={value:g}")
                        loss = PositiveCongruentLoss(
                            _regression(setting, "fd_lm", beta=beta), lam=lam
                        )
                        try:
                            trainer = train_new("fd_lm", 0, loss=loss, teacher_=teacher)
                        except TrainingDivergedError as exc:
                            log(f"[{setting.name}] seed {seed}: diverged: {exc}")
                            m = dict.fromkeys(_REPORTED, math.nan)
                        else:
                            m = model_update_metrics(
                                y_test, old_test_logits, trainer.predict(new_test)
                            )
                    sweep.append(
                        {
                            "seed": seed,
                            "parameter": parameter,
                            "value": float(value),
                            "method": "fd_lm",
                            "error_rate_new": m["error_rate_new"],
                            "negative_flip_rate": m["negative_flip_rate"],
                        }
                    )
    return {
        "per_seed": per_seed,
        "epoch_time": epoch_times,
        "sweep": sweep,
        "seconds": time.perf_counter() - start,
    }


def summarise(setting: PCTSetting, raw: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std table, the issue's targets, the epoch-time ratio and the sweep curve.

    Targets (means over seeds):

    * FD-LM NFR <= 0.6 x the no-treatment NFR, with ER_new <= no-treatment ER_new + 0.5 pt;
    * the best single-model method's NFR <= 1.3 x the ensemble paragon's;
    * focal distillation with the cached teacher <= 1.15 x plain training's time per epoch.
    """
    per_seed: dict[int, dict[str, dict[str, float]]] = raw["per_seed"]
    seeds = sorted(per_seed)
    rows = []
    for method, label in METHODS.items():
        row: dict[str, Any] = {
            "method": method,
            "label": label,
            "n_models": setting.ensemble_size if method == "paragon" else 1,
        }
        for key in _REPORTED:
            row[key] = stat([per_seed[s][method][key] for s in seeds])
        row["diverged"] = sum(
            not math.isfinite(per_seed[s][method]["error_rate_new"]) for s in seeds
        )
        rows.append(row)
    by = {r["method"]: r for r in rows}

    def mean(method: str, key: str) -> float:
        value = by[method][key]["mean"]
        return math.nan if value is None else float(value)

    base_nfr, base_err = (
        mean("no_treatment", "negative_flip_rate"),
        mean("no_treatment", "error_rate_new"),
    )
    fd_nfr, fd_err = mean("fd_lm", "negative_flip_rate"), mean("fd_lm", "error_rate_new")
    singles = [m for m in METHODS if m not in ("paragon", "no_treatment")]
    best = min(singles, key=lambda m: mean(m, "negative_flip_rate"))
    paragon_nfr = mean("paragon", "negative_flip_rate")
    ratios = [e["ratio"] for e in raw["epoch_time"]]
    time_ratio = float(np.mean(ratios)) if ratios else math.nan
    targets = [
        {
            "name": "FD-LM NFR <= 0.6 x no-treatment NFR",
            "value": fd_nfr / base_nfr if base_nfr > 0 else None,
            "threshold": 0.6,
            "passed": bool(fd_nfr <= 0.6 * base_nfr),
            "detail": f"NFR {100 * fd_nfr:.2f}% vs {100 * base_nfr:.2f}%",
        },
        {
            "name": "FD-LM ER_new <= no-treatment ER_new + 0.5 pt",
            "value": 100 * (fd_err - base_err),
            "threshold": 0.5,
            "passed": bool(fd_err <= base_err + 0.005),
            "detail": f"ER_new {100 * fd_err:.2f}% vs {100 * base_err:.2f}% (difference in pt)",
        },
        {
            "name": "best single-model NFR <= 1.3 x ensemble paragon NFR",
            "value": mean(best, "negative_flip_rate") / paragon_nfr if paragon_nfr > 0 else None,
            "threshold": 1.3,
            "passed": bool(mean(best, "negative_flip_rate") <= 1.3 * paragon_nfr),
            "detail": f"{METHODS[best]} {100 * mean(best, 'negative_flip_rate'):.2f}% vs "
            f"paragon {100 * paragon_nfr:.2f}%",
        },
        {
            "name": "FD with cached teacher <= 1.15 x plain time per epoch",
            "value": time_ratio,
            "threshold": 1.15,
            "passed": bool(time_ratio <= 1.15),
            "detail": f"ratio of median epoch times in the same run, mean over {len(ratios)} seeds",
        },
    ]
    sweep_points: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for point in raw["sweep"]:
        sweep_points.setdefault((point["parameter"], point["value"]), []).append(point)
    sweep = [
        {
            "parameter": parameter,
            "value": value,
            "method": "fd_lm",
            "error_rate_new": stat([p["error_rate_new"] for p in points]),
            "negative_flip_rate": stat([p["negative_flip_rate"] for p in points]),
            "seeds": sorted(p["seed"] for p in points),
        }
        for (parameter, value), points in sweep_points.items()
    ]
    return {
        "name": setting.name,
        "title": setting.title,
        "description": setting.description,
        "seeds": seeds,
        "seconds": raw["seconds"],
        "rows": rows,
        "targets": targets,
        "epoch_time": {
            "plain_s": stat([e["plain_s"] for e in raw["epoch_time"]]),
            "fd_cached_s": stat([e["fd_cached_s"] for e in raw["epoch_time"]]),
            "ratio": stat(ratios),
        },
        "sweep": sweep,
    }
