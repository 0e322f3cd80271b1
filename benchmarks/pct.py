"""``python -m benchmarks pct``: positive-congruent training on real data, in the papers' form.

For each scenario and seed it trains an old model, then new models without treatment and
with each regression-aware objective, and reports ER_old, ER_new, NFR and relative NFR on
the test split (mean ± std over seeds, a paired t-test of each method against no
treatment), as in Yan et al., "Positive-congruent training", CVPR 2021, Table 1:

* **no treatment**: cross-entropy only;
* **default recipe**: :func:`graceful.losses.recommended_pct_loss`, the same weights in
  every scenario;
* **FD-LM / FD-KL**: the paper's recipes exactly (:func:`graceful.losses.paper_fd_lm`,
  :func:`graceful.losses.paper_fd_kl`), and the reference code's convex mix;
* **KD**: plain distillation from the old model;
* **ELODI**: logit-difference inhibition (target class excluded) against a homogeneous
  ensemble of new-architecture models (:func:`graceful.losses.elodi_loss`);
* **Bayesian prediction update**: no retraining; the stored predictions are updated from
  each model's confusion matrix with the cost-ratio rule (Träuble et al., NeurIPS 2021);
* **ensemble paragon**: an ensemble of old models vs an ensemble of new ones.

The old model's logits come from a table cached once per training sample (no extra
forward pass); each scenario records the old model's training accuracy (a memorised
teacher makes "old right" select every sample) and any run the Trainer flags as collapsed.
Every model's test predictions are saved as Parquet (``id``, ``label``, ``logit_*``), so
``graceful compare <dir>/seed0/old.parquet <dir>/seed0/default.parquet`` opens the report
of any pair.
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
    PositiveCongruentLoss,
    elodi_loss,
    paper_fd_kl,
    paper_fd_lm,
    recommended_pct_loss,
    reference_code_fd,
)
from graceful.metrics import error_rate, flip_counts, model_update_metrics
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
    "default": "Default recipe (recommended_pct_loss)",
    "fd_lm": "FD-LM (paper: alpha 1, beta 5, lambda 1)",
    "fd_kl": "FD-KL (paper: tau 100)",
    "reference_mix": "FD-LM, reference code's mix (0.1 CE + 0.9 FD)",
    "kd": "KD",
    "elodi": "ELODI (ensemble teacher)",
    "bayes": "Bayesian prediction update, CR-10 (no retraining)",
    "paragon": "Ensemble paragon",
}
"""Method key -> label, in table order."""

_TRAINED = ("default", "fd_lm", "fd_kl", "reference_mix", "kd", "elodi")
"""Methods that train a new model with a regression-aware loss."""

_REPORTED = (
    "error_rate_old",
    "error_rate_new",
    "negative_flip_rate",
    "relative_negative_flip_rate",
)


@dataclass(frozen=True)
class PCTSetting:
    """One benchmark scenario: data, the two architectures, training recipes.

    ``load_old`` and ``load_new`` return the same samples (same ids, same order) as seen by
    each model: for images both are the pixels; for text, the old model's and the new
    model's sentence embeddings. ``old_train_fraction`` < 1 trains the old model on a
    seeded random part of the training split (the new one always sees all of it).
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
    ensemble_size: int = 4
    old_train_fraction: float = 1.0
    methods: Sequence[str] = tuple(METHODS)
    cost_ratio: float = 10.0
    sweep_lambda: Sequence[float] = (0.05, 0.1, 0.15, 0.3, 1.0)
    extra: dict[str, Any] = field(default_factory=dict)


def _loss(method: str, lam: float | None = None) -> nn.Module:
    """The objective of a trained method (``lam`` overrides the default recipe's weight)."""
    if method == "default":
        loss = recommended_pct_loss()
        return loss if lam is None else PositiveCongruentLoss(loss.regression, lam=lam)
    if method == "fd_lm":
        return paper_fd_lm()
    if method == "fd_kl":
        return paper_fd_kl()
    if method == "reference_mix":
        return reference_code_fd()
    if method == "kd":
        return PositiveCongruentLoss(DistillationLoss(), lam=1.0)
    if method == "elodi":
        return elodi_loss()
    raise ValueError(f"no loss for method {method!r}")


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
    """Train and evaluate every method of the setting for each seed.

    Per seed: ``ensemble_size`` old models (the first is *the* old model, the rest make
    the paragon's old ensemble) and ``ensemble_size`` new models without treatment (the
    first is the no-treatment row; all of them are ELODI's homogeneous teacher and the
    paragon's new ensemble), then one new model per regression-aware loss, with the old
    model's logits cached once per training sample; the Bayesian update needs no
    training. Every new model starts from the same seed as the no-treatment one.

    Args:
        setting: the setting.
        seeds: model seeds (data split fixed; init, data order and the old model's
            training part vary).
        out_dir: where to save test predictions (``<out_dir>/seed<k>/<method>.parquet``).
        sweep_seeds: seeds on which to also sweep the default recipe's ``lambda``.
        log: where progress lines go.

    Returns:
        The per-seed raw results; :func:`summarise` turns them into the table.
    """
    start = time.perf_counter()
    old_data, new_data = setting.load_old(), setting.load_new()
    if not np.array_equal(old_data.test.ids, new_data.test.ids) or not np.array_equal(
        old_data.train.ids, new_data.train.ids
    ):
        raise ValueError(f"setting {setting.name}: old and new data must hold the same samples")
    unknown = [m for m in setting.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"setting {setting.name}: unknown methods {unknown}")
    classes = list(new_data.test.classes)
    y_test = torch.as_tensor(new_data.test.y)
    old_val_set, old_test_set = old_data.val.to_tensor_dataset(), old_data.test.to_tensor_dataset()
    new_train, new_val, new_test = (
        new_data.train.to_tensor_dataset(),
        new_data.val.to_tensor_dataset(),
        new_data.test.to_tensor_dataset(),
    )
    old_train_full = old_data.train.to_tensor_dataset()
    per_seed: dict[int, dict[str, dict[str, float]]] = {}
    extras: dict[int, dict[str, Any]] = {}
    epoch_times: list[dict[str, float]] = []
    sweep: list[dict[str, Any]] = []

    for seed in seeds:
        log(f"[{setting.name}] seed {seed}: old models")
        old_train = old_train_full
        if setting.old_train_fraction < 1:
            rng = np.random.default_rng(10_000 + seed)
            keep = np.sort(
                rng.permutation(len(old_data.train))[
                    : round(setting.old_train_fraction * len(old_data.train))
                ]
            )
            old_train = old_data.train.subset(keep).to_tensor_dataset()
        old_models = []
        for j in range(setting.ensemble_size):
            model_seed = 1000 * seed + j
            seed_everything(model_seed)  # the weights' init, not only the data order
            trainer = Trainer(setting.make_old(), replace(setting.old_config, seed=model_seed))
            trainer.fit(old_train, old_val_set)
            old_models.append(trainer)
        old = old_models[0]
        old_test_logits = old.predict(old_test_set)
        old_val_logits = old.predict(old_val_set)
        teacher = CachedTeacher.build(old.model, old_train_full)
        old_train_accuracy = 1.0 - error_rate(old_train.tensors[1], old.predict(old_train))

        def train_new(
            loss: nn.Module | None = None,
            teacher_: Any = None,
            offset: int = 0,
            *,
            seed: int = seed,
            old_val_logits: torch.Tensor = old_val_logits,
        ) -> tuple[Trainer, str | None]:
            model_seed = 1000 * seed + 100 + offset
            seed_everything(model_seed)
            trainer = Trainer(
                setting.make_new(),
                replace(setting.new_config, seed=model_seed),
                loss=loss,
                teacher=teacher_,
                old_val_logits=old_val_logits,
            )
            result = trainer.fit(new_train, new_val)
            return trainer, getattr(result, "collapse", None)

        log(f"[{setting.name}] seed {seed}: new models without treatment")
        new_models = [train_new(offset=j)[0] for j in range(setting.ensemble_size)]
        logits: dict[str, torch.Tensor] = {"no_treatment": new_models[0].predict(new_test)}
        plain_epoch = _epoch_seconds(new_models[0].history)
        collapses: dict[str, str] = {}
        default_epoch = math.nan
        diverged: list[str] = []
        ensemble_teacher: EnsembleTeacher | None = None
        for method in (m for m in _TRAINED if m in setting.methods):
            log(f"[{setting.name}] seed {seed}: {METHODS[method]}")
            if method == "elodi" and ensemble_teacher is None:
                ensemble_teacher = EnsembleTeacher(
                    [CachedTeacher.build(m.model, new_train) for m in new_models]
                )
            try:
                trainer, collapse = train_new(
                    _loss(method), ensemble_teacher if method == "elodi" else teacher
                )
            except TrainingDivergedError as exc:
                log(f"[{setting.name}] seed {seed}: {METHODS[method]} diverged: {exc}")
                diverged.append(method)
                continue
            if collapse is not None:
                log(f"[{setting.name}] seed {seed}: {METHODS[method]}: {collapse}")
                collapses[method] = collapse
            logits[method] = trainer.predict(new_test)
            if method == "default":
                default_epoch = _epoch_seconds(trainer.history)
        epoch_times.append(
            {
                "plain_s": plain_epoch,
                "fd_cached_s": default_epoch,
                "ratio": default_epoch / plain_epoch,
            }
        )

        results = {
            method: model_update_metrics(y_test, old_test_logits, method_logits)
            for method, method_logits in logits.items()
        }
        if "bayes" in setting.methods:
            updated = _bayes_update(
                old_val_logits,
                new_models[0].predict(new_val),
                torch.as_tensor(new_data.val.y),
                old_test_logits,
                logits["no_treatment"],
                cost_ratio=setting.cost_ratio,
            )
            results["bayes"] = model_update_metrics(
                y_test, old_test_logits, torch.from_numpy(updated)
            )
        for method in diverged:  # reported as n/a with a count, never as a number
            results[method] = dict.fromkeys(_REPORTED, math.nan)
        old_ensemble = torch.stack([m.predict(old_test_set) for m in old_models]).mean(0)
        new_ensemble = torch.stack([m.predict(new_test) for m in new_models]).mean(0)
        results["paragon"] = model_update_metrics(y_test, old_ensemble, new_ensemble)
        per_seed[seed] = {
            m: {k: float(results[m][k]) for k in _REPORTED} for m in METHODS if m in setting.methods
        }
        flips = flip_counts(y_test, old_test_logits, logits["no_treatment"]).n_negative_flips
        extras[seed] = {
            "old_train_accuracy": old_train_accuracy,
            "no_treatment_negative_flips": flips,
            "n_test": len(y_test),
            "collapsed": collapses,
        }
        log(
            f"[{setting.name}] seed {seed}: old train accuracy {old_train_accuracy:.4f}, "
            f"no-treatment negative flips {flips}"
        )

        if out_dir is not None:
            folder = out_dir / f"seed{seed}"
            ids, labels = new_data.test.ids, new_data.test.y
            _save_predictions(folder / "old.parquet", ids, labels, old_test_logits, classes)
            _save_predictions(folder / "old_ensemble.parquet", ids, labels, old_ensemble, classes)
            _save_predictions(folder / "paragon.parquet", ids, labels, new_ensemble, classes)
            for method, method_logits in logits.items():
                _save_predictions(folder / f"{method}.parquet", ids, labels, method_logits, classes)

        if seed in sweep_seeds and "default" in setting.methods:
            default_lam = recommended_pct_loss().lam
            for value in setting.sweep_lambda:
                if value == default_lam:
                    m = results["default"]
                    log(f"[{setting.name}] seed {seed}: sweep lambda={value:g} = default")
                else:
                    log(f"[{setting.name}] seed {seed}: sweep default recipe lambda={value:g}")
                    try:
                        trainer, _ = train_new(_loss("default", value), teacher)
                    except TrainingDivergedError as exc:
                        log(f"[{setting.name}] seed {seed}: diverged: {exc}")
                        m = dict.fromkeys(_REPORTED, math.nan)
                    else:
                        m = model_update_metrics(y_test, old_test_logits, trainer.predict(new_test))
                sweep.append(
                    {
                        "seed": seed,
                        "parameter": "lambda",
                        "value": float(value),
                        "method": "default",
                        "error_rate_new": float(m["error_rate_new"]),
                        "negative_flip_rate": float(m["negative_flip_rate"]),
                    }
                )
    return {
        "per_seed": per_seed,
        "extras": extras,
        "epoch_time": epoch_times,
        "sweep": sweep,
        "seconds": time.perf_counter() - start,
    }


def _bayes_update(
    old_val: torch.Tensor,
    new_val: torch.Tensor,
    y_val: torch.Tensor,
    old_test: torch.Tensor,
    new_test: torch.Tensor,
    *,
    cost_ratio: float,
) -> np.ndarray:
    """Stored test labels after the Bayesian update with the cost-ratio rule (Träuble et al.).

    Each model's likelihood is the paper's diagonal form estimated on the validation
    split, the prior the validation class frequencies; the stored labels start as the old
    model's predictions and take in the new model's with ``rule="cost_ratio"``.
    """
    from graceful.release.prediction_update import (
        class_prior,
        estimate_confusion,
        update_predictions,
    )

    classes = int(old_val.shape[1])
    y = y_val.numpy()
    confusion = {
        name: estimate_confusion(y, logits.numpy(), num_classes=classes, form="diagonal")
        for name, logits in (("old", old_val), ("new", new_val))
    }
    prior = class_prior(y, num_classes=classes)
    state = update_predictions(None, old_test.numpy(), confusion["old"], prior=prior)
    state = update_predictions(
        state, new_test.numpy(), confusion["new"], rule="cost_ratio", cost_ratio=cost_ratio
    )
    one_hot: np.ndarray = np.eye(classes, dtype=np.float32)[np.asarray(state.labels)]
    return one_hot


def _paired(values: Sequence[float], base: Sequence[float]) -> dict[str, Any]:
    """Paired t-test over seeds of ``values`` against ``base`` (mean difference, p-value)."""
    from scipy.stats import ttest_rel

    pairs = [(v, b) for v, b in zip(values, base, strict=True) if math.isfinite(v)]
    diff = [v - b for v, b in pairs]
    if len(pairs) < 2 or all(d == diff[0] for d in diff):
        return {"mean_difference": float(np.mean(diff)) if diff else None, "p_value": None}
    result = ttest_rel([v for v, _ in pairs], [b for _, b in pairs])
    return {"mean_difference": float(np.mean(diff)), "p_value": float(result.pvalue)}


def _target(name: str, value: float, threshold: float, passed: bool, detail: str) -> dict[str, Any]:
    return {
        "name": name,
        "value": value if math.isfinite(value) else None,
        "threshold": threshold,
        "passed": bool(passed),
        "detail": detail,
    }


def summarise(setting: PCTSetting, raw: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std table with paired tests against no treatment, the targets, the sweep.

    Targets (means over seeds), for the scenarios' methods that ran:

    * the scenario regresses: no-treatment NFR >= 3 % and >= 100 negative flips per seed;
    * the default recipe: NFR <= 0.6 x no treatment, ER_new <= no treatment + 0.5 pt;
    * ELODI: NFR <= 0.5 x no treatment and <= 1.2 x the ensemble paragon's;
    * the cached teacher: <= 1.15 x plain training's time per epoch.
    """
    per_seed: dict[int, dict[str, dict[str, float]]] = raw["per_seed"]
    seeds = sorted(per_seed)
    methods = [m for m in METHODS if m in setting.methods]
    base = {k: [per_seed[s]["no_treatment"][k] for s in seeds] for k in _REPORTED}
    rows = []
    for method in methods:
        row: dict[str, Any] = {
            "method": method,
            "label": METHODS[method],
            "n_models": setting.ensemble_size if method == "paragon" else 1,
        }
        for key in _REPORTED:
            row[key] = stat([per_seed[s][method][key] for s in seeds])
        row["diverged"] = sum(
            not math.isfinite(per_seed[s][method]["error_rate_new"]) for s in seeds
        )
        if method != "no_treatment":
            row["paired"] = {
                key: _paired([per_seed[s][method][key] for s in seeds], base[key])
                for key in ("error_rate_new", "negative_flip_rate")
            }
        rows.append(row)
    by = {r["method"]: r for r in rows}

    def mean(method: str, key: str) -> float:
        value = by[method][key]["mean"] if method in by else None
        return math.nan if value is None else float(value)

    extras = raw.get("extras", {})
    flips = [extras[s]["no_treatment_negative_flips"] for s in seeds if s in extras]
    train_acc = [extras[s]["old_train_accuracy"] for s in seeds if s in extras]
    collapsed = {m: sum(m in extras[s]["collapsed"] for s in seeds if s in extras) for m in methods}
    base_nfr, base_err = (
        mean("no_treatment", "negative_flip_rate"),
        mean("no_treatment", "error_rate_new"),
    )
    targets = [
        _target(
            "scenario: no-treatment NFR >= 3 %",
            100 * base_nfr,
            3.0,
            base_nfr >= 0.03,
            f"NFR {100 * base_nfr:.2f}%",
        ),
        _target(
            "scenario: >= 100 negative flips per seed",
            float(min(flips)) if flips else math.nan,
            100,
            bool(flips) and min(flips) >= 100,
            f"fewest over seeds; counts {flips}",
        ),
    ]
    if "default" in by:
        nfr, err = mean("default", "negative_flip_rate"), mean("default", "error_rate_new")
        targets += [
            _target(
                "default recipe NFR <= 0.6 x no-treatment NFR",
                nfr / base_nfr if base_nfr > 0 else math.nan,
                0.6,
                nfr <= 0.6 * base_nfr,
                f"NFR {100 * nfr:.2f}% vs {100 * base_nfr:.2f}%",
            ),
            _target(
                "default recipe ER_new <= no-treatment ER_new + 0.5 pt",
                100 * (err - base_err),
                0.5,
                err <= base_err + 0.005,
                f"ER_new {100 * err:.2f}% vs {100 * base_err:.2f}% (difference in pt)",
            ),
        ]
    if "elodi" in by and "paragon" in by:
        nfr, paragon = mean("elodi", "negative_flip_rate"), mean("paragon", "negative_flip_rate")
        targets += [
            _target(
                "ELODI NFR <= 0.5 x no-treatment NFR",
                nfr / base_nfr if base_nfr > 0 else math.nan,
                0.5,
                nfr <= 0.5 * base_nfr,
                f"NFR {100 * nfr:.2f}% vs {100 * base_nfr:.2f}%",
            ),
            _target(
                "ELODI NFR <= 1.2 x ensemble paragon NFR",
                nfr / paragon if paragon > 0 else math.nan,
                1.2,
                nfr <= 1.2 * paragon,
                f"NFR {100 * nfr:.2f}% vs paragon {100 * paragon:.2f}% "
                f"({setting.ensemble_size} vs {setting.ensemble_size})",
            ),
        ]
    ratios = [e["ratio"] for e in raw["epoch_time"] if math.isfinite(e["ratio"])]
    time_ratio = float(np.mean(ratios)) if ratios else math.nan
    targets.append(
        _target(
            "default recipe with cached teacher <= 1.15 x plain time per epoch",
            time_ratio,
            1.15,
            time_ratio <= 1.15,
            f"ratio of median epoch times in the same run, mean over {len(ratios)} seeds",
        )
    )
    sweep_points: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for point in raw["sweep"]:
        sweep_points.setdefault((point["parameter"], point["value"]), []).append(point)
    sweep = [
        {
            "parameter": parameter,
            "value": value,
            "method": "default",
            "error_rate_new": stat([p["error_rate_new"] for p in points]),
            "negative_flip_rate": stat([p["negative_flip_rate"] for p in points]),
            "seeds": sorted(p["seed"] for p in points),
        }
        for (parameter, value), points in sorted(sweep_points.items())
    ]
    return {
        "name": setting.name,
        "title": setting.title,
        "description": setting.description,
        "seeds": seeds,
        "seconds": raw["seconds"],
        "rows": rows,
        "targets": targets,
        "old_train_accuracy": stat(train_acc),
        "no_treatment_negative_flips": flips,
        "collapsed": collapsed,
        "epoch_time": {
            "plain_s": stat([e["plain_s"] for e in raw["epoch_time"]]),
            "fd_cached_s": stat([e["fd_cached_s"] for e in raw["epoch_time"]]),
            "ratio": stat(ratios),
        },
        "sweep": sweep,
    }
