import dataclasses
import io
import math

import pytest
import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import TensorDataset

from graceful.errors import InputError, TrainingDivergedError
from graceful.metrics import error_rate, negative_flip_rate
from graceful.training import (
    CachedTeacher,
    OnlineTeacher,
    TrainConfig,
    Trainer,
    select_epoch,
)

D, C = 8, 3


class DistillLoss(nn.Module):
    """Cross-entropy plus KL to the old model (a stand-in for graceful.losses)."""

    def forward(self, new, old, target):
        kl = F.kl_div(
            F.log_softmax(new, 1), F.log_softmax(old, 1), log_target=True, reduction="batchmean"
        )
        return F.cross_entropy(new, target) + kl


class CrashAfter(nn.Module):
    """Raises on call number ``n`` (simulates a crash mid-epoch)."""

    def __init__(self, inner: nn.Module, n: int):
        super().__init__()
        self.inner, self.n, self.calls = inner, n, 0

    def forward(self, new, old, target):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("simulated crash")
        return self.inner(new, old, target)


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, C))


def _data(n: int, seed: int, id_offset: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g)
    y = (x[:, :C] + 0.5 * torch.randn(n, C, generator=g)).argmax(1)
    return TensorDataset(x, y, torch.arange(n) + id_offset)


TRAIN, VAL = _data(80, 0), _data(40, 1, id_offset=500)
STEPS = 5  # 80 samples / batch 16


def _config(tmp_path=None, **kw) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 16, "lr": 0.05, "progress": False}
    if tmp_path is not None:
        base["checkpoint_dir"] = str(tmp_path)
    return TrainConfig(**(base | kw))


def _old() -> nn.Module:
    return _mlp(100).eval()


def _no_seconds(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def _assert_same_weights(a: nn.Module, b: nn.Module):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize(
    "settings",
    [
        {"select": "last"},
        {"select": "best_error_then_nfr", "schedule": "cosine", "optimizer": "adam"},
    ],
)
def test_resume_after_crash_equals_uninterrupted_run(tmp_path, settings):
    old = _old()
    teacher = CachedTeacher.build(old, TRAIN)
    old_val = OnlineTeacher(old)(VAL.tensors[0], VAL.tensors[2])

    straight = _mlp(0)
    config = _config(tmp_path / "straight", **settings)
    want = Trainer(straight, config, loss=DistillLoss(), teacher=teacher, old_val_logits=old_val)
    want_result = want.fit(TRAIN, VAL)

    config = _config(tmp_path / "crashed", **settings)
    crashing = Trainer(
        _mlp(0),
        config,
        loss=CrashAfter(DistillLoss(), STEPS + 3),  # in the middle of the 2nd epoch
        teacher=teacher,
        old_val_logits=old_val,
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit(TRAIN, VAL)
    assert (tmp_path / "crashed" / "last.pt").exists()

    resumed_model = _mlp(7)  # other initial weights: they come from the checkpoint
    resumed = Trainer(
        resumed_model, config, loss=DistillLoss(), teacher=teacher, old_val_logits=old_val
    )
    result = resumed.fit(TRAIN, VAL, resume=True)
    _assert_same_weights(resumed_model, straight)
    assert _no_seconds(result.history) == _no_seconds(want_result.history)
    assert result.best_epoch == want_result.best_epoch
    assert resumed.history is result.history


def test_fit_again_after_completion_trains_nothing(tmp_path):
    model = _mlp(0)
    first = Trainer(model, _config(tmp_path, epochs=2)).fit(TRAIN, VAL)
    again_model = _mlp(3)
    again = Trainer(again_model, _config(tmp_path, epochs=2)).fit(TRAIN, VAL)
    _assert_same_weights(again_model, model)
    assert repr(again.history) == repr(first.history)  # seconds included: nothing was re-run


def test_resume_false_starts_over(tmp_path):
    a = _mlp(0)
    Trainer(a, _config(tmp_path, epochs=1)).fit(TRAIN)
    b = _mlp(0)
    Trainer(b, _config(tmp_path, epochs=1)).fit(TRAIN, resume=False)
    _assert_same_weights(a, b)


def test_resume_with_other_settings_names_the_field(tmp_path):
    Trainer(_mlp(0), _config(tmp_path, epochs=1)).fit(TRAIN)
    with pytest.raises(InputError, match=r"`config\.lr`.*last\.pt"):
        Trainer(_mlp(0), _config(tmp_path, epochs=1, lr=0.1)).fit(TRAIN)


def test_corrupt_checkpoint_names_the_file(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"last\.pt"):
        Trainer(_mlp(0), _config(tmp_path, epochs=1)).fit(TRAIN)


@pytest.mark.parametrize("select", ["best_error", "best_nfr", "best_error_then_nfr", "last"])
def test_selected_epoch_is_restored_and_metrics_match_functions(select):
    old = _old()
    old_val = OnlineTeacher(old)(VAL.tensors[0], VAL.tensors[2])
    model = _mlp(0)
    # lr so high that epochs differ a lot; the restored weights must be the chosen epoch's
    trainer = Trainer(
        model,
        _config(epochs=4, lr=0.5, schedule="constant", select=select),
        old_val_logits=old_val,
    )
    result = trainer.fit(TRAIN, VAL)
    history = result.history
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert result.best_epoch == select_epoch(history, select) == history[-1]["best_epoch"]
    assert result.selected == select
    chosen = history[result.best_epoch]
    logits = trainer.predict(VAL)
    y = VAL.tensors[1]
    assert error_rate(y, logits) == chosen["val_error"]
    assert negative_flip_rate(y, old_val, logits) == chosen["val_nfr"]
    assert all(math.isfinite(h["train_loss"]) for h in history)


def test_history_records_the_time_of_each_pass():
    history = Trainer(_mlp(0), _config(epochs=2)).fit(TRAIN, VAL).history
    for h in history:  # what the clock says is not checked: only that it was read
        assert math.isfinite(h["seconds"]) and h["seconds"] >= 0
        assert math.isfinite(h["val_seconds"]) and h["val_seconds"] >= 0


def test_teacher_gives_old_val_logits_when_not_passed():
    old = _old()
    both = TensorDataset(
        torch.cat([TRAIN.tensors[0], VAL.tensors[0]]),
        torch.cat([TRAIN.tensors[1], VAL.tensors[1]]),
        torch.cat([TRAIN.tensors[2], VAL.tensors[2]]),
    )
    teacher = CachedTeacher.build(old, both)
    config = _config(epochs=1)
    a = Trainer(_mlp(0), config, loss=DistillLoss(), teacher=teacher).fit(TRAIN, VAL)
    old_val = OnlineTeacher(old)(VAL.tensors[0], VAL.tensors[2])
    b = Trainer(_mlp(0), config, loss=DistillLoss(), teacher=teacher, old_val_logits=old_val).fit(
        TRAIN, VAL
    )
    assert _no_seconds(a.history) == _no_seconds(b.history)


def test_teacher_without_val_ids_asks_for_old_val_logits():
    teacher = CachedTeacher.build(_old(), TRAIN)  # VAL's ids are not cached
    trainer = Trainer(_mlp(0), _config(epochs=1), loss=DistillLoss(), teacher=teacher)
    with pytest.raises(InputError, match="`old_val_logits`"):
        trainer.fit(TRAIN, VAL)


def test_plain_training_without_old_model_has_nan_nfr():
    result = Trainer(_mlp(0), _config(epochs=1)).fit(TRAIN, VAL)
    assert math.isnan(result.history[0]["val_nfr"])
    assert 0 <= result.history[0]["val_error"] <= 1
    no_val = Trainer(_mlp(0), _config(epochs=1)).fit(TRAIN)
    assert math.isnan(no_val.history[0]["val_error"])


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_shows_every_epoch_with_its_figures(terminal):
    console = Console(file=io.StringIO(), force_terminal=terminal, width=150, color_system=None)
    trainer = Trainer(_mlp(0), _config(epochs=2, progress=True), console=console)
    history = trainer.fit(TRAIN, VAL).history
    text = console.file.getvalue()
    for epoch, h in enumerate(history, start=1):
        # the final line of each epoch's bar: its loss, error and NFR, and every step done
        line = f"epoch {epoch}/2 loss {h['train_loss']:.4f} err {h['val_error']:.4f} nfr nan"
        assert line in text
    assert f"{STEPS}/{STEPS}" in text


def test_progress_false_draws_nothing():
    console = Console(file=io.StringIO(), force_terminal=True)
    Trainer(_mlp(0), _config(epochs=1, progress=False), console=console).fit(TRAIN, VAL)
    assert console.file.getvalue() == ""


def test_select_epoch_on_constructed_history():
    nan = math.nan
    history = [
        {"epoch": 0, "val_error": 0.40, "val_nfr": 0.02},
        {"epoch": 1, "val_error": 0.30, "val_nfr": 0.08},
        {"epoch": 2, "val_error": 0.30, "val_nfr": 0.05},
        {"epoch": 3, "val_error": nan, "val_nfr": 0.01},
        {"epoch": 4, "val_error": 0.35, "val_nfr": 0.01},
        {"epoch": 5, "val_error": 0.50, "val_nfr": nan},
    ]
    assert select_epoch(history, "last") == 5
    assert select_epoch(history, "best_error") == 1  # tie with 2: earliest
    assert select_epoch(history, "best_nfr") == 3  # tie with 4: earliest
    assert select_epoch(history, "best_error_then_nfr") == 2
    with pytest.raises(InputError, match="`criterion`"):
        select_epoch(history, "best")
    with pytest.raises(InputError, match="`history`"):
        select_epoch([], "last")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", 2.0),
        ("epochs", True),
        ("batch_size", -1),
        ("lr", 0.0),
        ("lr", math.nan),
        ("momentum", 1.0),
        ("weight_decay", -1e-4),
        ("optimizer", "rmsprop"),
        ("schedule", "step"),
        ("seed", -1),
        ("select", "best"),
        ("checkpoint_dir", 3),
        ("progress", "yes"),
        ("num_threads", 0),
        ("max_grad_norm", 0.0),
        ("max_grad_norm", math.inf),
    ],
)
def test_bad_config_names_the_field(field, value):
    kwargs = {"epochs": 1, field: value}
    with pytest.raises(InputError, match=rf"`TrainConfig\.{field}`") as info:
        TrainConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_holds_plain_python_values():
    import numpy as np

    config = TrainConfig(epochs=np.int64(2), lr=1, seed=np.uint32(3), max_grad_norm=2)
    assert (config.epochs, config.lr, config.seed, config.max_grad_norm) == (2, 1.0, 3, 2.0)
    assert type(config.epochs) is int and type(config.lr) is float and type(config.seed) is int


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        _config().epochs = 5  # type: ignore[misc]


def test_bad_fit_arguments_name_them():
    with pytest.raises(InputError, match="`val`"):
        Trainer(_mlp(0), _config(select="best_error")).fit(TRAIN)
    with pytest.raises(InputError, match="`old_val_logits`"):
        Trainer(_mlp(0), _config(select="best_nfr")).fit(TRAIN, VAL)
    with pytest.raises(InputError, match="`old_val_logits`"):
        Trainer(_mlp(0), _config(), old_val_logits=torch.zeros(3, C)).fit(TRAIN, VAL)
    with pytest.raises(InputError, match="`train`"):
        pairs = TensorDataset(TRAIN.tensors[0], TRAIN.tensors[1])
        Trainer(_mlp(0), _config(epochs=1)).fit(pairs)
    with pytest.raises(InputError, match="`model`"):
        Trainer("model", _config())
    with pytest.raises(InputError, match="`config`"):
        Trainer(_mlp(0), {"epochs": 1})
    with pytest.raises(InputError, match="`console`"):
        Trainer(_mlp(0), _config(), console=io.StringIO())
    with pytest.raises(InputError, match="`loss`"):
        Trainer(_mlp(0), _config(), loss="cross_entropy")

    class PerSample(nn.Module):
        def forward(self, new, old, target):
            return F.cross_entropy(new, target, reduction="none")

    with pytest.raises(InputError, match=r"`loss`.*scalar"):
        Trainer(_mlp(0), _config(epochs=1), loss=PerSample()).fit(TRAIN)


class _NaNAfter(nn.Module):
    """Cross-entropy that turns NaN from a given step on (a diverging run)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, new, old, target):
        self.calls += 1
        loss = F.cross_entropy(new, target)
        return loss * math.nan if self.calls >= self.step else loss


def test_divergence_is_reported_with_its_epoch():
    trainer = Trainer(_mlp(0), _config(), loss=_NaNAfter(STEPS + 2))
    with pytest.raises(TrainingDivergedError, match="epoch 1"):
        trainer.fit(TRAIN, VAL)


def test_gradient_clipping_bounds_the_step():
    big = _config(epochs=1, lr=0.05, momentum=0.0, weight_decay=0.0, schedule="constant")
    clipped = dataclasses.replace(big, max_grad_norm=1e-3)
    moved = []
    for config in (big, clipped):
        model = _mlp(0)
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        Trainer(model, config).fit(TRAIN)
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        moved.append(float((after - before).norm()))
    # each of the 5 steps moves the weights by at most lr * max_grad_norm
    assert moved[1] <= STEPS * 0.05 * 1e-3 + 1e-9
    assert moved[0] > 10 * moved[1]


def test_embedding_model_trains_with_a_compatibility_loss_and_an_embedding_teacher():
    from graceful.embedding import EmbeddingOf, WithEmbedding
    from graceful.losses import BCTInfluenceLoss, CompatibleEmbeddingLoss, EmbeddingRegressionLoss
    from graceful.models import EmbeddingMLP

    torch.manual_seed(0)
    old = EmbeddingMLP(D, 4, C).eval()
    everything = torch.utils.data.ConcatDataset([TRAIN, VAL])
    teacher = CachedTeacher.build(EmbeddingOf(old), everything)  # old embeddings, by id
    assert teacher.num_classes == 4  # a column per embedding dimension, not per class
    loss = CompatibleEmbeddingLoss(
        influence=BCTInfluenceLoss(old.head.weight, old.head.bias),
        regression=EmbeddingRegressionLoss(),
    )
    torch.manual_seed(1)
    new = EmbeddingMLP(D, 4, C)
    trainer = Trainer(WithEmbedding(new), _config(), loss=loss, teacher=teacher)
    result = trainer.fit(TRAIN, VAL)
    assert all(math.isnan(h["val_nfr"]) for h in result.history)  # no logits to flip against
    assert all(0.0 <= h["val_error"] <= 1.0 for h in result.history)
    logits = trainer.predict(VAL)
    torch.testing.assert_close(logits, new.eval()(VAL.tensors[0]))
    with pytest.raises(InputError, match="old_val_logits"):
        Trainer(
            WithEmbedding(EmbeddingMLP(D, 4, C)), _config(), old_val_logits=torch.zeros(40, 4)
        ).fit(TRAIN, VAL)
