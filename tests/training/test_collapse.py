"""Collapse detection: the rule on counts, and the Trainer's warn / stop / raise on real digits."""

import dataclasses
import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import TensorDataset

from graceful.data import load_digits
from graceful.errors import (
    InputError,
    TrainingCollapsedError,
    TrainingCollapseWarning,
    TrainingDivergedError,
)
from graceful.metrics import error_rate
from graceful.models import MLPHead, SmallCNN
from graceful.training import (
    CachedTeacher,
    TrainConfig,
    Trainer,
    collapse_reason,
    predict,
    seed_everything,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small models train faster on one thread than on threads that share busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the rule, on constructed counts ------------------------------------------------------


def test_one_class_taking_over_balanced_labels_exact_threshold():
    labels = [10] * 10  # N = 100
    # p - t > max(1/4, (1 - t) / 2) = 0.45: 55 % is not above it, 56 % is
    assert collapse_reason([55] + [5] * 9, labels, error=0.5) is None
    reason = collapse_reason([56, 4] + [5] * 8, labels, error=0.5)
    assert reason == "56 % of predictions are class 0 (10 % of the labels)"


def test_two_classes():
    balanced = [50, 50]
    assert collapse_reason([75, 25], balanced, error=0.3) is None  # 3/4 exactly: not above
    assert collapse_reason([25, 75], balanced, error=0.3) is None
    assert collapse_reason([24, 76], balanced, error=0.3) == (
        "76 % of predictions are class 1 (50 % of the labels)"
    )
    assert collapse_reason([0, 100], balanced, error=0.5) == (
        "100 % of predictions are class 1 (50 % of the labels)"
    )
    # the minority of 90/10 labels predicted everywhere: taken over (and few classes)
    assert collapse_reason([0, 100], [90, 10], error=0.9) == (
        "100 % of predictions are class 1 (10 % of the labels)"
    )


@pytest.mark.parametrize("labels", [[75, 25], [80, 20], [90, 10], [99, 1]])
def test_imbalanced_majority_everywhere_is_not_a_collapse(labels):
    # a class holding 75 % of the labels or more never takes over: at most 25 % error
    assert collapse_reason([100, 0], labels, error=labels[1] / 100) is None


def test_imbalanced_labels_with_a_long_tail_of_rare_classes():
    labels = [30, 30, 30, 2, 2, 2, 2, 2]  # 3 of 8 classes hold 90 % of the labels
    # a normal early model predicts the 3 big classes only: not few classes
    assert collapse_reason([34, 33, 33, 0, 0, 0, 0, 0], labels, error=0.12) is None
    # a rare class taking over is
    assert collapse_reason([10, 10, 10, 70, 0, 0, 0, 0], labels, error=0.72) == (
        "70 % of predictions are class 3 (2 % of the labels)"
    )
    # and predicting rare classes only leaves few classes
    assert collapse_reason([0, 0, 40, 30, 30, 0, 0, 0], labels, error=0.66) == (
        "only 3 of the 8 classes in the labels are predicted (34 % of the labels)"
    )


def test_few_classes_predicted():
    labels = [2] * 10
    assert collapse_reason([0, 0, 5, 5, 0, 0, 5, 5, 0, 0], labels, error=0.9) == (
        "only 4 of the 10 classes in the labels are predicted (40 % of the labels)"
    )
    assert collapse_reason([0, 0, 4, 4, 0, 0, 4, 4, 4, 0], labels, error=0.75) is None  # 5 of 10
    assert collapse_reason([2] * 10, labels, error=0.0) is None


def test_one_class_in_the_labels_never_collapses():
    assert collapse_reason([0, 7, 0], [0, 7, 0], error=0.0) is None


def test_ties_for_the_top_class_go_to_the_lowest_index():
    # a class that takes over has more than half of the predictions: no tie there, but the
    # history's top_class needs the rule
    import numpy as np

    from graceful.training.collapse import _spread

    spread = _spread(np.array([0.0, 40, 0, 40, 0, 20]), np.array([25.0, 15, 15, 15, 15, 15]))
    assert (spread.top_class, spread.top_share, spread.predicted, spread.present) == (
        1,
        0.4,
        3,
        6,
    )


def test_error_rule_needs_an_old_error_and_a_margin():
    preds = labels = [10, 10, 10]
    assert collapse_reason(preds, labels, error=0.5, old_error=0.1) == (
        "validation error 0.500 against the old model's 0.100 (margin 0.25)"
    )
    assert collapse_reason(preds, labels, error=0.3, old_error=0.1) is None
    assert collapse_reason(preds, labels, error=0.3, old_error=0.1, margin=0.1) == (
        "validation error 0.300 against the old model's 0.100 (margin 0.1)"
    )
    assert collapse_reason(preds, labels, error=0.9, old_error=0.1, margin=None) is None
    assert collapse_reason(preds, labels, error=0.9) is None  # no old model


def test_every_rule_that_fired_is_named_in_order():
    reason = collapse_reason([0, 92, 8], [30, 40, 30], error=0.55, old_error=0.12)
    assert reason == (
        "validation error 0.550 against the old model's 0.120 (margin 0.25); "
        "92 % of predictions are class 1 (40 % of the labels)"
    )


def test_counts_may_be_tensors_or_arrays():
    import numpy as np

    want = collapse_reason([0, 100], [50, 50], error=0.5)
    assert collapse_reason(torch.tensor([0, 100]), np.array([50.0, 50.0]), error=0.5) == want


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"pred_counts": [[1, 2]]}, "pred_counts"),
        ({"pred_counts": []}, "pred_counts"),
        ({"pred_counts": ["a", "b"]}, "pred_counts"),
        ({"pred_counts": [-1, 5]}, "pred_counts"),
        ({"label_counts": [2, math.nan]}, "label_counts"),
        ({"label_counts": [1, 2, 1]}, "pred_counts"),  # a count per class each
        ({"label_counts": [1, 2]}, "pred_counts"),  # other totals
        ({"pred_counts": [0, 0], "label_counts": [0, 0]}, "label_counts"),
        ({"error": 1.5}, "error"),
        ({"error": math.nan}, "error"),
        ({"old_error": -0.1}, "old_error"),
        ({"margin": 2}, "margin"),
    ],
)
def test_bad_arguments_name_them(kwargs, name):
    args = {"pred_counts": [1, 3], "label_counts": [2, 2], "error": 0.5} | kwargs
    with pytest.raises(InputError, match=f"`{name}`") as info:
        collapse_reason(**args)
    assert "\n" not in str(info.value)


# -- the config fields -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("collapse_margin", -0.1),
        ("collapse_margin", 1.5),
        ("collapse_margin", math.nan),
        ("collapse_margin", "0.25"),
        ("collapse_warmup", -0.1),
        ("collapse_warmup", 2.0),
        ("collapse_warmup", None),
        ("on_collapse", "ignore"),
        ("on_collapse", None),
    ],
)
def test_bad_collapse_config_names_the_field(field, value):
    with pytest.raises(InputError, match=rf"`TrainConfig\.{field}`") as info:
        TrainConfig(epochs=1, **{field: value})
    assert "\n" not in str(info.value)


def test_collapse_config_defaults_and_plain_values():
    config = TrainConfig(epochs=2)
    assert (config.collapse_margin, config.collapse_warmup, config.on_collapse) == (
        0.25,
        0.3,
        "warn",
    )
    config = TrainConfig(epochs=2, collapse_margin=None, collapse_warmup=0)
    assert config.collapse_margin is None and type(config.collapse_warmup) is float


@pytest.mark.parametrize(
    ("epochs", "steps", "first"),
    [
        (10, 390, 2),  # 30 % of 3900 steps: 1170, where epoch 2 ends
        (30, 390, 8),
        (10, 17, 5),  # 100 steps: epoch 5 is the first to end after them (102)
        (3, 1000, 1),  # never the first epoch
        (1, 1000, 1),  # a one-epoch run is never checked
        (6, 34, 2),
    ],
)
def test_first_collapse_check(epochs, steps, first):
    config = TrainConfig(epochs=epochs)
    assert config.first_collapse_check(steps) == first
    done = (first + 1) * steps  # steps behind the first checked epoch
    assert done >= max(100, 0.3 * steps * epochs) - 1e-9
    if first > 1:
        assert first * steps < max(100, 0.3 * steps * epochs)
    assert TrainConfig(epochs=epochs, collapse_warmup=1.0).first_collapse_check(steps) >= (
        epochs - 1
    )


# -- the Trainer on digits ---------------------------------------------------------------

SPLITS = load_digits(seed=0)
TRAIN = SPLITS.train.to_tensor_dataset()
VAL = SPLITS.val.to_tensor_dataset()
Y_VAL = VAL.tensors[1]
C = 10
BATCH = 32  # 34 steps per epoch: 6 epochs check from epoch 2 (the 100th step)
STEPS = 34


def _binary(data: TensorDataset, positive) -> TensorDataset:
    x, y, ids = data.tensors
    return TensorDataset(x, positive(y).long(), ids)


def _mlp(seed: int, classes: int = C) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), MLPHead(64, classes, hidden=32, dropout=0.0))


def _config(tmp_path=None, **kw) -> TrainConfig:
    base = {"epochs": 6, "batch_size": BATCH, "lr": 0.05, "progress": False}
    if tmp_path is not None:
        base["checkpoint_dir"] = str(tmp_path)
    return TrainConfig(**(base | kw))


class OneClass(nn.Module):
    """Cross-entropy towards ``target`` for every sample, after ``after`` calls of plain CE.

    A loss that collapses the run onto one class; with ``after`` the run is healthy first.
    """

    def __init__(self, target: int, after: int = 0) -> None:
        super().__init__()
        self.target, self.after, self.calls = target, after, 0

    def forward(self, new, old, target):
        self.calls += 1
        if self.calls <= self.after:
            return F.cross_entropy(new, target)
        return F.cross_entropy(new, torch.full_like(target, self.target))


class CrashAt(nn.Module):
    def __init__(self, inner: nn.Module, n: int) -> None:
        super().__init__()
        self.inner, self.n, self.calls = inner, n, 0

    def forward(self, new, old, target):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("simulated crash")
        return self.inner(new, old, target)


@pytest.fixture(scope="module")
def old():
    """An old MLP trained on the digits, and its validation logits and error."""
    model = _mlp(100)
    Trainer(model, _config(epochs=8, batch_size=64)).fit(TRAIN, VAL)
    logits = predict(model, VAL)
    return model, logits, error_rate(Y_VAL, logits)


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.0f} %"


def _one_class_message(epoch: int, old_error: float, cls: int = 4) -> str:
    count = int(Y_VAL.eq(cls).sum())  # 36 of 360
    error = 1 - count / len(Y_VAL)
    return (
        f"epoch {epoch}: training collapsed: validation error {error:.3f} against the old "
        f"model's {old_error:.3f} (margin 0.25); 100 % of predictions are class {cls} "
        f"({_share(count, len(Y_VAL))} of the labels)"
    )


def _messages(caught) -> list[str]:
    return [str(w.message) for w in caught if w.category is TrainingCollapseWarning]


def _no_seconds(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def _same(a: dict, b: dict) -> bool:
    return repr(a) == repr(b)  # NaN equals NaN


def test_warn_flags_every_collapsed_epoch_after_the_warmup(old):
    _, old_val, old_error = old
    config = _config()
    first = config.first_collapse_check(STEPS)
    assert first == 2
    trainer = Trainer(_mlp(0), config, loss=OneClass(4), old_val_logits=old_val)
    with pytest.warns(TrainingCollapseWarning) as caught:
        result = trainer.fit(TRAIN, VAL)
    messages = _messages(caught)
    # the signs show from the first checked epoch; a flag needs them twice in a row
    assert messages == [_one_class_message(e, old_error) for e in range(first + 1, 6)]
    assert all("\n" not in m for m in messages)
    assert caught[0].filename == __file__  # points at the fit call
    assert result.collapse == messages[0]
    assert [h["collapse_signs"] for h in result.history] == [0, 0, 1, 1, 1, 1]
    assert [h["collapsed"] for h in result.history] == [0, 0, 0, 1, 1, 1]
    for h in result.history[first:]:
        assert (h["top_class"], h["top_class_share"], h["predicted_classes"]) == (4, 1.0, 1)
        assert h["val_error_old"] == old_error
    assert len(result.history) == 6  # warn trains on


def test_stop_keeps_the_epoch_select_chooses(old):
    _, old_val, old_error = old
    # healthy for 2 epochs (68 steps), then onto class 4: best_error is a healthy epoch
    config = _config(on_collapse="stop", select="best_error")
    model = _mlp(0)
    trainer = Trainer(model, config, loss=OneClass(4, after=2 * STEPS), old_val_logits=old_val)
    with pytest.warns(TrainingCollapseWarning) as caught:
        result = trainer.fit(TRAIN, VAL)
    history = result.history
    assert len(history) == 4  # stopped at the second checked epoch with the signs, epoch 3
    assert [h["collapsed"] for h in history] == [0, 0, 0, 1]
    best = result.best_epoch
    assert best in (0, 1) and history[best]["val_error"] < 0.5
    assert result.collapse == _one_class_message(3, old_error)
    assert _messages(caught) == [
        f"{result.collapse}; training stopped, the model keeps epoch {best} (select='best_error')"
    ]
    # the model holds the chosen epoch's weights, not the collapsed ones
    assert error_rate(Y_VAL, trainer.predict(VAL)) == history[best]["val_error"]


def test_stop_with_select_last_keeps_the_collapsed_epoch(old):
    _, old_val, _ = old
    trainer = Trainer(
        _mlp(0), _config(on_collapse="stop"), loss=OneClass(4), old_val_logits=old_val
    )
    with pytest.warns(TrainingCollapseWarning, match="keeps epoch 3 \\(select='last'\\)$"):
        result = trainer.fit(TRAIN, VAL)
    assert len(result.history) == 4 and result.best_epoch == 3
    assert trainer.predict(VAL).argmax(1).eq(4).all()


def test_raise_stops_with_the_message_before_the_checkpoint(old, tmp_path):
    _, old_val, old_error = old
    config = _config(tmp_path, on_collapse="raise")
    trainer = Trainer(_mlp(0), config, loss=OneClass(4), old_val_logits=old_val)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingCollapseWarning)  # raise does not warn
        with pytest.raises(TrainingCollapsedError) as info:
            trainer.fit(TRAIN, VAL)
    assert str(info.value) == _one_class_message(3, old_error)
    assert isinstance(info.value, TrainingDivergedError)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epochs_done"] == 3
    # a resumed run trains the collapsed epoch again, and raises again
    again = Trainer(_mlp(5), config, loss=OneClass(4), old_val_logits=old_val)
    with pytest.raises(TrainingCollapsedError) as info_again:
        again.fit(TRAIN, VAL)
    assert str(info_again.value) == str(info.value)


def test_margin_none_leaves_the_prediction_rules(old):
    _, old_val, _ = old
    config = _config(collapse_margin=None)
    with pytest.warns(TrainingCollapseWarning) as caught:
        Trainer(_mlp(0), config, loss=OneClass(4), old_val_logits=old_val).fit(TRAIN, VAL)
    assert _messages(caught)[0] == (
        "epoch 3: training collapsed: 100 % of predictions are class 4 (10 % of the labels)"
    )


def test_without_an_old_model_the_prediction_rules_still_apply():
    with pytest.warns(TrainingCollapseWarning) as caught:
        result = Trainer(_mlp(0), _config(), loss=OneClass(7)).fit(TRAIN, VAL)
    count = int((Y_VAL == 7).sum())
    assert result.collapse == (
        f"epoch 3: training collapsed: 100 % of predictions are class 7 "
        f"({_share(count, len(Y_VAL))} of the labels)"
    )
    assert len(_messages(caught)) == 3
    assert all(math.isnan(h["val_error_old"]) for h in result.history)


def test_logit_matching_at_a_large_weight_against_large_teacher_logits_is_flagged(old):
    """The collapse this check is for: logit matching, lam=1, teacher logits x10."""
    from graceful.losses import FocalDistillationLoss, PositiveCongruentLoss

    old_model, old_val, old_error = old

    class Scaled(nn.Module):
        def forward(self, x):
            return 10 * old_model(x)

    teacher = CachedTeacher.build(Scaled().eval(), TRAIN)
    loss = PositiveCongruentLoss(
        FocalDistillationLoss(alpha=1.0, beta=5.0, distance="logit_matching"), lam=1.0
    )
    trainer = Trainer(
        _mlp(1, classes=C), _config(), loss=loss, teacher=teacher, old_val_logits=10 * old_val
    )
    with pytest.warns(TrainingCollapseWarning):
        result = trainer.fit(TRAIN, VAL)
    assert result.collapse is not None
    assert result.collapse.startswith("epoch 3: training collapsed: validation error 0.")
    assert f"against the old model's {old_error:.3f} (margin 0.25)" in result.collapse
    assert result.history[-1]["val_error"] > 0.8


def test_two_class_collapse_and_imbalanced_majority():
    balanced = _binary(TRAIN, lambda y: y >= 5), _binary(VAL, lambda y: y >= 5)
    with pytest.warns(TrainingCollapseWarning) as caught:
        result = Trainer(_mlp(0, classes=2), _config(), loss=OneClass(1)).fit(*balanced)
    count = int((balanced[1].tensors[1] == 1).sum())
    assert _messages(caught)[0] == (
        f"epoch 3: training collapsed: 100 % of predictions are class 1 "
        f"({_share(count, len(Y_VAL))} of the labels)"
    )
    assert result.history[-1]["predicted_classes"] == 1
    # 90/10 labels ("is it a 0?"): the minority everywhere is a collapse ...
    rare = _binary(TRAIN, lambda y: y == 0), _binary(VAL, lambda y: y == 0)
    with pytest.warns(TrainingCollapseWarning, match="100 % of predictions are class 1 \\(10 %"):
        Trainer(_mlp(0, classes=2), _config(), loss=OneClass(1)).fit(*rare)
    # ... the majority everywhere is not (it costs 10 % error)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingCollapseWarning)
        result = Trainer(_mlp(0, classes=2), _config(), loss=OneClass(0)).fit(*rare)
    assert result.collapse is None and result.history[-1]["top_class_share"] == 1.0


def _mlp_model(seed: int) -> nn.Module:
    return _mlp(seed)


def _cnn_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return SmallCNN(width=4, num_classes=C)


@pytest.mark.parametrize(
    ("make", "settings", "with_old", "distill"),
    [
        (_mlp_model, {"epochs": 16, "batch_size": 64, "lr": 0.1, "schedule": "cosine"}, True, 0),
        (_mlp_model, {"epochs": 10, "batch_size": 64, "lr": 0.01}, True, 0.1),
        (_mlp_model, {"epochs": 6, "batch_size": 32, "lr": 0.05}, False, 0),
        (_mlp_model, {"epochs": 30, "batch_size": 256, "lr": 0.02}, True, 0),
        (_mlp_model, {"epochs": 8, "batch_size": 64, "lr": 0.01, "optimizer": "adam"}, True, 0),
        (_cnn_model, {"epochs": 12, "batch_size": 32, "lr": 0.05}, True, 0.1),
    ],
)
def test_normal_runs_are_never_flagged(old, make, settings, with_old, distill):
    from graceful.losses import FocalDistillationLoss, PositiveCongruentLoss

    old_model, old_val, _ = old
    config = TrainConfig(progress=False, **settings)
    steps = math.ceil(len(TRAIN) / config.batch_size)
    assert config.first_collapse_check(steps) < config.epochs  # some epochs are checked
    kwargs = {"old_val_logits": old_val} if with_old else {}
    if distill:
        kwargs["teacher"] = CachedTeacher.build(old_model, TRAIN)
        kwargs["loss"] = PositiveCongruentLoss(
            FocalDistillationLoss(alpha=1.0, beta=5.0, distance="logit_matching"), lam=distill
        )
    seed_everything(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingCollapseWarning)
        result = Trainer(make(1), config, **kwargs).fit(TRAIN, VAL)
    assert result.collapse is None
    assert all(h["collapsed"] == 0 for h in result.history)


def test_normal_runs_on_two_and_imbalanced_classes_are_never_flagged():
    for positive in (lambda y: y >= 5, lambda y: y == 0):
        data = _binary(TRAIN, positive), _binary(VAL, positive)
        with warnings.catch_warnings():
            warnings.simplefilter("error", TrainingCollapseWarning)
            result = Trainer(_mlp(0, classes=2), _config(epochs=8)).fit(*data)
        assert all(h["collapsed"] == 0 for h in result.history)
        assert result.history[-1]["predicted_classes"] == 2


# -- history, result, checkpoints --------------------------------------------------------


def test_history_figures_match_the_predictions(old):
    _, old_val, old_error = old
    trainer = Trainer(_mlp(0), _config(epochs=2), old_val_logits=old_val)
    result = trainer.fit(TRAIN, VAL)
    last = result.history[-1]
    top = trainer.predict(VAL).argmax(1)
    counts = torch.bincount(top, minlength=C)
    assert last["top_class"] == int(counts.argmax())
    assert last["top_class_share"] == int(counts.max()) / len(Y_VAL)
    assert last["predicted_classes"] == int((counts > 0).sum())
    assert last["val_error_old"] == old_error
    assert result.collapse is None and last["collapsed"] == 0


def test_history_without_validation_data_has_nan_figures():
    result = Trainer(_mlp(0), _config(epochs=4)).fit(TRAIN)
    for h in result.history:
        for key in ("val_error_old", "top_class", "top_class_share", "predicted_classes"):
            assert math.isnan(h[key]), key
        assert h["collapsed"] == 0
    assert result.collapse is None


def test_resume_after_a_crash_past_the_collapse_equals_the_uninterrupted_run(old, tmp_path):
    _, old_val, _ = old
    make_loss = lambda: OneClass(4, after=STEPS)  # noqa: E731
    straight_model = _mlp(0)
    config = _config(tmp_path / "straight")
    with pytest.warns(TrainingCollapseWarning):
        want = Trainer(straight_model, config, loss=make_loss(), old_val_logits=old_val).fit(
            TRAIN, VAL
        )
    assert want.collapse is not None

    config = _config(tmp_path / "crashed")
    crashing = Trainer(
        _mlp(0), config, loss=CrashAt(make_loss(), 4 * STEPS + 5), old_val_logits=old_val
    )
    with pytest.warns(TrainingCollapseWarning), pytest.raises(RuntimeError, match="simulated"):
        crashing.fit(TRAIN, VAL)  # in epoch 4, after the collapse of epochs 2 and 3

    resumed_model = _mlp(7)
    resumed = Trainer(resumed_model, config, loss=make_loss(), old_val_logits=old_val)
    resumed.loss.calls = 4 * STEPS  # the loss's own counter: where the crash left it
    with pytest.warns(TrainingCollapseWarning) as caught:
        result = resumed.fit(TRAIN, VAL)
    assert [m[:7] for m in _messages(caught)] == ["epoch 4", "epoch 5"]  # not 2 and 3 again
    for (name, p), q in zip(
        resumed_model.state_dict().items(), straight_model.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q), name
    assert _same(_no_seconds(result.history), _no_seconds(want.history))
    assert result.collapse == want.collapse  # the first flagged epoch's, from the checkpoint


def test_a_stopped_run_resumes_to_the_same_result(old, tmp_path):
    _, old_val, _ = old
    config = _config(tmp_path, on_collapse="stop", select="best_error")
    with pytest.warns(TrainingCollapseWarning):
        first = Trainer(_mlp(0), config, loss=OneClass(4), old_val_logits=old_val).fit(TRAIN, VAL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingCollapseWarning)
        again = Trainer(_mlp(3), config, loss=OneClass(4), old_val_logits=old_val).fit(TRAIN, VAL)
    assert repr(again.history) == repr(first.history)  # nothing was trained again
    assert (again.collapse, again.best_epoch) == (first.collapse, first.best_epoch)


@pytest.mark.parametrize(
    ("field", "value"),
    [("on_collapse", "stop"), ("collapse_margin", 0.1), ("collapse_warmup", 0.5)],
)
def test_resume_with_other_collapse_settings_names_the_field(tmp_path, field, value):
    Trainer(_mlp(0), _config(tmp_path, epochs=1)).fit(TRAIN)
    with pytest.raises(InputError, match=rf"`config\.{field}`.*last\.pt"):
        Trainer(_mlp(0), _config(tmp_path, epochs=1, **{field: value})).fit(TRAIN)


def test_a_checkpoint_from_before_collapse_detection_is_refused(tmp_path):
    Trainer(_mlp(0), _config(tmp_path, epochs=1)).fit(TRAIN)
    path = tmp_path / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    for name in ("collapse_margin", "collapse_warmup", "on_collapse"):
        del ckpt["config"][name]
    del ckpt["collapse"]
    torch.save(ckpt, path)
    with pytest.raises(InputError, match=r"last\.pt.*earlier graceful.*resume=False") as info:
        Trainer(_mlp(0), _config(tmp_path, epochs=1)).fit(TRAIN)
    assert "\n" not in str(info.value)
    result = Trainer(_mlp(0), _config(tmp_path, epochs=1)).fit(TRAIN, resume=False)
    assert len(result.history) == 1


def test_config_replace_keeps_validation():
    with pytest.raises(InputError, match=r"`TrainConfig\.on_collapse`"):
        dataclasses.replace(_config(), on_collapse="loud")


def test_a_passing_spike_is_not_a_collapse(old):
    """Signs in one epoch that are gone in the next (a peak learning rate's spike) pass."""
    _, old_val, _ = old

    class OneEpochSpike(nn.Module):
        """Onto class 4 in the last steps of epoch 2, plain cross-entropy otherwise."""

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, new, old_logits, target):
            self.calls += 1
            epoch = (self.calls - 1) // STEPS
            if epoch == 2 and (self.calls - 1) % STEPS >= STEPS - 3:  # its last 3 steps
                return -torch.log_softmax(new, dim=1)[:, 4].mean()
            return nn.functional.cross_entropy(new, target)

    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingCollapseWarning)
        result = Trainer(_mlp(0), _config(), loss=OneEpochSpike(), old_val_logits=old_val).fit(
            TRAIN, VAL
        )
    signs = [h["collapse_signs"] for h in result.history]
    assert signs[2] == 1 and sum(signs) == 1, signs
    assert result.collapse is None
