"""The settings of ``python -m benchmarks pct``: which data, which old and new model, which recipe.

* ``rotten_tomatoes``: Rotten Tomatoes snippets (fresh/rotten), old = an MLP head on
  frozen MiniLM-L6 sentence embeddings, new = an MLP head on frozen MPNet embeddings.
* ``digits``: scikit-learn's digits with tiny CNNs and one epoch; a smoke test of the
  whole pipeline (seconds), not a result.

The update scenarios of issue 14, each with at least 3 % no-treatment NFR and 100 negative
flips per seed as the aim, on training regimes that do not memorise (the old model's
training accuracy is in each table):

* ``image_new_seed`` (a): Animal-MNIST, the same CNN (width 16) retrained from a new seed,
  4 epochs (about 94 % training accuracy), 4,000 test images;
* ``text_half_data`` (b, d): Rotten Tomatoes on frozen MiniLM-L6 embeddings; the old MLP
  head saw a seeded half of the training split, the new one all of it;
* ``text_larger_head`` (c, d): the same embeddings; a 16-unit MLP head (old) -> a
  1,024-unit one (new), 4,000 test snippets;
* ``mnist1d_new_seed`` (a): MNIST-1D (procedural 40-sample 1-D digits), 50,000 signals
  (38,000 train / 2,000 val / 10,000 test), the same 1-D CNN (3 strided conv layers, 25
  channels) retrained from a new seed, Adam, 10 epochs (about 93 % training accuracy);
* ``mnist1d_half_data`` (b): the same signals; an MLP (256 hidden units, about 64 %
  training accuracy) trained on a seeded half of the training split (old) -> the same MLP
  on all of it (new);
* ``mnist1d_larger_mlp`` (c): the same signals; a 32-unit MLP (old, about 52 % training
  accuracy) -> a 1,024-unit one (new), both Adam, 10 epochs, on the whole training split.
  MLPs on the raw signals are weak (about 35 % test error); the 1-D CNN pairs tried for
  (b) and (c) flipped under 3 % of the test signals unless cut to 6 epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
from torch import nn

from benchmarks.data import load_animal_mnist, load_mnist1d, load_rotten_tomatoes
from graceful.data import Splits, load_digits
from graceful.models import MLPHead, SmallCNN
from graceful.training import TrainConfig

from ._common import setting_from
from .pct import PCTSetting

__all__ = ["MNIST1DCNN", "SETTINGS", "get_setting"]


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
        sweep_lambda=(0.1, 0.15),
    )


_HEAD_CONFIG = TrainConfig(
    epochs=10,
    batch_size=128,
    lr=1e-3,
    optimizer="adam",
    schedule="cosine",
    weight_decay=0.0,
    progress=False,
)


def _image_new_seed() -> PCTSetting:
    data: Callable[[], Splits] = cache(lambda: load_animal_mnist(val_size=1000, test_size=4000))
    config = TrainConfig(epochs=4, batch_size=128, lr=0.05, progress=False)
    return PCTSetting(
        name="image_new_seed",
        title="Animal-MNIST: the same CNN (width 16) from a new seed",
        description=(
            "10 animal silhouette classes; 5,000 train / 1,000 val / 4,000 test (seeded "
            "stratified split). Both models: 3 conv blocks with BatchNorm, SGD + one-cycle "
            "(peak lr 0.05), 4 epochs, batch 128: short enough that the old model does "
            "not memorise its training set."
        ),
        load_old=data,
        load_new=data,
        make_old=lambda: SmallCNN(width=16, num_classes=10),
        make_new=lambda: SmallCNN(width=16, num_classes=10),
        old_config=config,
        new_config=config,
        methods=("no_treatment", "default", "fd_lm", "fd_kl", "elodi", "bayes", "paragon"),
    )


def _rotten_tomatoes_minilm() -> Splits:
    return load_rotten_tomatoes("minilm-l6", val_size=1280, test_size=4000, show_progress=False)


def _text_half_data() -> PCTSetting:
    data: Callable[[], Splits] = cache(_rotten_tomatoes_minilm)
    return PCTSetting(
        name="text_half_data",
        title="Rotten Tomatoes: MLP head on MiniLM-L6, old on half the data -> new on all",
        description=(
            "12,808 review snippets, fresh vs rotten; 7,528 train / 1,280 val / 4,000 test "
            "(seeded stratified split), frozen MiniLM-L6 embeddings (cached). Both models "
            "an MLP head (256 hidden units, dropout 0.1), Adam, 10 epochs; the old one saw a "
            "seeded half of the training split."
        ),
        load_old=data,
        load_new=data,
        make_old=lambda: MLPHead(384, 2, hidden=256),
        make_new=lambda: MLPHead(384, 2, hidden=256),
        old_config=_HEAD_CONFIG,
        new_config=_HEAD_CONFIG,
        old_train_fraction=0.5,
    )


def _text_larger_head() -> PCTSetting:
    data: Callable[[], Splits] = cache(_rotten_tomatoes_minilm)
    return PCTSetting(
        name="text_larger_head",
        title="Rotten Tomatoes on MiniLM-L6: a 16-unit MLP head -> a 1,024-unit one",
        description=(
            "The split and embeddings of text_half_data; old: an MLP head with 16 hidden "
            "units, new: 1,024 hidden units, both Adam, 10 epochs, on the whole training "
            "split."
        ),
        load_old=data,
        load_new=data,
        make_old=lambda: MLPHead(384, 2, hidden=16),
        make_new=lambda: MLPHead(384, 2, hidden=1024),
        old_config=_HEAD_CONFIG,
        new_config=_HEAD_CONFIG,
    )


class MNIST1DCNN(nn.Module):
    """The MNIST-1D reference's small 1-D CNN: three strided convolutions, then a linear layer.

    Conv1d(1, w, 5, stride 2) -> ReLU -> Conv1d(w, w, 3, stride 2) -> ReLU ->
    Conv1d(w, w, 3, stride 2) -> ReLU -> Linear(5 w, classes), on ``(N, 40)`` signals.

    Example:
        >>> MNIST1DCNN(4)(torch.zeros(3, 40)).shape
        torch.Size([3, 10])
    """

    def __init__(self, width: int = 25, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Unflatten(1, (1, 40)),
            nn.Conv1d(1, width, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(width * 5, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        logits: torch.Tensor = self.net(x)
        return logits


_MNIST1D_CONFIG = TrainConfig(
    epochs=10,
    batch_size=128,
    lr=3e-3,
    optimizer="adam",
    schedule="cosine",
    weight_decay=0.0,
    progress=False,
)


def _mnist1d() -> Splits:
    return load_mnist1d(seed=0, num_samples=50_000, val_size=2000)


def _mnist1d_new_seed() -> PCTSetting:
    data: Callable[[], Splits] = cache(_mnist1d)
    return PCTSetting(
        name="mnist1d_new_seed",
        title="MNIST-1D: the same 1-D CNN (25 channels) from a new seed",
        description=(
            "50,000 procedural 40-sample signals of the ten digits (mnist1d, generator "
            "seed 0): 38,000 train / 2,000 val (stratified) / 10,000 test (the generator's "
            "split). Both models: 3 strided Conv1d layers (25 channels) and a linear layer, "
            "Adam (lr 3e-3, cosine), 10 epochs, batch 128: the old model does not memorise."
        ),
        load_old=data,
        load_new=data,
        make_old=lambda: MNIST1DCNN(25),
        make_new=lambda: MNIST1DCNN(25),
        old_config=_MNIST1D_CONFIG,
        new_config=_MNIST1D_CONFIG,
        ensemble_size=3,
        methods=("no_treatment", "default", "fd_lm", "fd_kl", "elodi", "bayes", "paragon"),
    )


def _mnist1d_mlp(
    name: str, title: str, description: str, old_hidden: int, new_hidden: int, fraction: float
) -> PCTSetting:
    data: Callable[[], Splits] = cache(_mnist1d)
    return PCTSetting(
        name=name,
        title=title,
        description=description,
        load_old=data,
        load_new=data,
        make_old=lambda: MLPHead(40, 10, hidden=old_hidden),
        make_new=lambda: MLPHead(40, 10, hidden=new_hidden),
        old_config=_HEAD_CONFIG,
        new_config=_HEAD_CONFIG,
        ensemble_size=3,
        old_train_fraction=fraction,
        methods=("no_treatment", "default", "fd_lm", "fd_kl", "elodi", "bayes", "paragon"),
    )


def _mnist1d_half_data() -> PCTSetting:
    return _mnist1d_mlp(
        "mnist1d_half_data",
        "MNIST-1D: MLP (256 units), old on half the data -> new on all",
        "The signals and split of mnist1d_new_seed. Both models an MLP on the raw 40 "
        "samples (256 hidden units, dropout 0.1), Adam (lr 1e-3, cosine), 10 epochs; the "
        "old one saw a seeded half of the training split.",
        256,
        256,
        0.5,
    )


def _mnist1d_larger_mlp() -> PCTSetting:
    return _mnist1d_mlp(
        "mnist1d_larger_mlp",
        "MNIST-1D: a 32-unit MLP -> a 1,024-unit one",
        "The signals and split of mnist1d_new_seed. Old: an MLP on the raw 40 samples with "
        "32 hidden units, new: 1,024 hidden units, both Adam (lr 1e-3, cosine), 10 epochs, on "
        "the whole training split.",
        32,
        1024,
        1.0,
    )


SETTINGS: dict[str, Callable[[], PCTSetting]] = {
    "image_new_seed": _image_new_seed,
    "mnist1d_new_seed": _mnist1d_new_seed,
    "mnist1d_half_data": _mnist1d_half_data,
    "mnist1d_larger_mlp": _mnist1d_larger_mlp,
    "text_half_data": _text_half_data,
    "text_larger_head": _text_larger_head,
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
