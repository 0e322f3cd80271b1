"""The settings of ``python -m benchmarks pct``: which data, which old and new model, which recipe.

* ``animal_mnist``: Animal-MNIST (7,000 train / 1,000 val / 2,000 test, seeded stratified
  split), old = a small CNN (width 8), new = a larger CNN (width 12), both from scratch.
* ``rotten_tomatoes``: Rotten Tomatoes snippets (fresh/rotten), old = an MLP head on
  frozen MiniLM-L6 sentence embeddings, new = an MLP head on frozen MPNet embeddings.
* ``digits``: scikit-learn's digits with tiny CNNs and one epoch; a smoke test of the
  whole pipeline (seconds), not a result.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from benchmarks.data import load_animal_mnist, load_rotten_tomatoes
from graceful.data import Splits, load_digits
from graceful.models import MLPHead, SmallCNN
from graceful.training import TrainConfig

from ._common import setting_from
from .pct import PCTSetting

__all__ = ["SETTINGS", "get_setting"]


def _animal_mnist() -> PCTSetting:
    data: Callable[[], Splits] = cache(load_animal_mnist)
    config = TrainConfig(epochs=10, batch_size=128, lr=0.05, progress=False)
    return PCTSetting(
        name="animal_mnist",
        title="Animal-MNIST: CNN width 8 (old) -> CNN width 12 (new), from scratch",
        description=(
            "10 animal silhouette classes; 7,000 train / 1,000 val / 2,000 test (seeded "
            "stratified split). Both models: 3 conv blocks with BatchNorm, SGD + one-cycle "
            "(peak lr 0.05), 10 epochs, batch 128, no augmentation. Focal distillation reads "
            "the old model's logits from a table cached once per seed. The logit-based "
            "losses (FD-LM, LDI, ELODI) use lambda = 0.1: at 1 they dominate cross-entropy."
        ),
        load_old=data,
        load_new=data,
        make_old=lambda: SmallCNN(width=8, num_classes=10),
        make_new=lambda: SmallCNN(width=12, num_classes=10),
        old_config=config,
        new_config=config,
        ensemble_size=3,
        temperature=1.0,
        fd_alpha=1.0,
        fd_beta=5.0,
        lam_kd=1.0,
        lam_fd_kl=1.0,
        lam_fd_lm=0.1,
        lam_ldi=0.1,
        lam_elodi=0.1,
        sweep_beta=(0.0, 1.0, 5.0, 10.0),
        sweep_lambda=(0.0, 0.1, 1.0),
    )


def _rotten_tomatoes() -> PCTSetting:
    return PCTSetting(
        name="rotten_tomatoes",
        title="Rotten Tomatoes: head on MiniLM-L6 embeddings (old) -> head on MPNet (new)",
        description=(
            "12,808 review snippets, fresh vs rotten; 70/10/20 seeded stratified split. "
            "Sentence embeddings are frozen and cached; each model is an MLP head "
            "(256 hidden units, dropout 0.1) trained with Adam."
        ),
        load_old=cache(lambda: load_rotten_tomatoes("minilm-l6")),
        load_new=cache(lambda: load_rotten_tomatoes("mpnet")),
        make_old=lambda: MLPHead(384, 2, hidden=256),
        make_new=lambda: MLPHead(768, 2, hidden=256),
        old_config=TrainConfig(
            epochs=10,
            batch_size=128,
            lr=1e-3,
            optimizer="adam",
            schedule="cosine",
            weight_decay=0.0,
            progress=False,
        ),
        new_config=TrainConfig(
            epochs=10,
            batch_size=128,
            lr=1e-3,
            optimizer="adam",
            schedule="cosine",
            weight_decay=0.0,
            progress=False,
        ),
        ensemble_size=3,
    )


def _digits() -> PCTSetting:
    data: Callable[[], Splits] = cache(load_digits)
    config = TrainConfig(epochs=1, batch_size=64, lr=0.05, progress=False)
    return PCTSetting(
        name="digits",
        title="Digits smoke test: CNN width 2 -> CNN width 4, one epoch",
        description="A seconds-long run of the whole pipeline; not a result.",
        load_old=data,
        load_new=data,
        make_old=lambda: SmallCNN(width=2, num_classes=10),
        make_new=lambda: SmallCNN(width=4, num_classes=10),
        old_config=config,
        new_config=config,
        ensemble_size=2,
        sweep_beta=(0.0, 5.0),
        sweep_lambda=(0.0, 1.0),
    )


SETTINGS: dict[str, Callable[[], PCTSetting]] = {
    "animal_mnist": _animal_mnist,
    "rotten_tomatoes": _rotten_tomatoes,
    "digits": _digits,
}
"""Setting name -> factory."""


def get_setting(name: str) -> PCTSetting:
    """The setting called ``name``.

    Example:
        >>> get_setting("digits").ensemble_size
        2
    """
    return setting_from(SETTINGS, name)
