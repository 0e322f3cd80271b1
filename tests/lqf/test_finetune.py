"""The squared loss, and fine-tuning with SGD, Adam and K-FAC on linearized or plain models."""

import numpy as np
import pytest
import torch
from torch import nn

from graceful.errors import InputError, TrainingDivergedError
from graceful.lqf import (
    FinetuneConfig,
    LinearizedModel,
    SquaredLoss,
    finetune,
    predict,
    squared_loss,
)


def test_squared_loss_values_and_reductions():
    out = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    y = torch.tensor([2, 1])
    # sample 0: goal (0, 0, 4): 0.5 * (1 + 0 + 4) = 2.5; sample 1: goal (0, 4, 0): 0.5 * 1
    torch.testing.assert_close(squared_loss(out, y, scale=4.0, reduction="none"),
                               torch.tensor([2.5, 0.5]))  # fmt: skip
    torch.testing.assert_close(squared_loss(out, y, scale=4.0), torch.tensor(1.5))
    torch.testing.assert_close(squared_loss(out, y, scale=4.0, reduction="sum"), torch.tensor(3.0))
    torch.testing.assert_close(SquaredLoss(scale=4.0)(out, y), torch.tensor(1.5))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: squared_loss(torch.zeros(2, 3), torch.zeros(3).long()), "targets"),
        (
            lambda: squared_loss(torch.zeros(2, 3), torch.zeros(2).long(), reduction="max"),
            "reduction",
        ),
        (lambda: SquaredLoss(scale=0), "scale"),
        (lambda: FinetuneConfig(loss="hinge"), "loss"),
        (lambda: FinetuneConfig(optimizer="lbfgs"), "optimizer"),
        (lambda: FinetuneConfig(epochs=0), "epochs"),
        (lambda: FinetuneConfig(lr=-1.0), "lr"),
        (lambda: FinetuneConfig(weight_decay=-1.0), "weight_decay"),
        (lambda: FinetuneConfig(momentum=1.0), "momentum"),
        (lambda: FinetuneConfig(refresh=0), "refresh"),
        (lambda: FinetuneConfig(seed=-1), "seed"),
        (lambda: FinetuneConfig(batch_size=True), "batch_size"),
    ],
)
def test_bad_arguments_name_them(call, match):
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def _data(n: int = 48):
    torch.manual_seed(0)
    x = torch.randn(n, 4, dtype=torch.float64)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def test_one_full_batch_kfac_step_solves_least_squares_on_a_linear_model():
    # the squared loss of a linear model is quadratic and K-FAC's curvature is exact
    x, y = _data()
    lin = LinearizedModel(nn.Linear(4, 2).double())
    config = FinetuneConfig(optimizer="kfac", lr=1.0, momentum=0.0, damping=1e-16, epochs=1,
                            batch_size=len(x), target_scale=3.0)  # fmt: skip
    finetune(lin, x, y, config)
    aug = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    goal = nn.functional.one_hot(y, 2).double() * 3.0
    best = torch.linalg.lstsq(aug, goal).solution.T
    got = torch.cat([lin.weights[0], lin.weights[1][:, None]], 1).detach()
    torch.testing.assert_close(got, best, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "kfac"])
def test_finetune_is_deterministic_and_moves_only_trainable_weights(optimizer):
    x, y = _data()

    def run():
        torch.manual_seed(1)
        net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.LeakyReLU(0.1), nn.Linear(6, 2))
        net = net.double()
        net[0].weight.requires_grad_(False)
        frozen = net[0].weight.detach().clone()
        losses = finetune(net, x, y, FinetuneConfig(optimizer=optimizer, epochs=3,
                                                    batch_size=16, lr=0.01, seed=3))  # fmt: skip
        torch.testing.assert_close(net[0].weight, frozen, rtol=0, atol=0)
        assert not net.training
        return losses, predict(net, x)

    (l1, p1), (l2, p2) = run(), run()
    assert l1 == l2 and len(l1) == 3
    torch.testing.assert_close(p1, p2, rtol=0, atol=0)


def test_weight_decay_pulls_towards_the_pretrained_weights():
    x, y = _data()
    distances = []
    for wd in (0.0, 30.0):
        torch.manual_seed(0)
        lin = LinearizedModel(nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)).double())
        finetune(lin, x, y, FinetuneConfig(optimizer="sgd", lr=0.005, epochs=20,
                                           weight_decay=wd))  # fmt: skip
        distances.append(sum(float(d.pow(2).sum()) for d in lin.delta().values()))
    assert distances[1] < 0.1 * distances[0]


def test_divergence_and_bad_data_are_one_line_errors():
    x, y = _data()
    net = nn.Linear(4, 2).double()
    with pytest.raises(TrainingDivergedError, match=r"diverged in epoch \d+.*FinetuneConfig\.lr"):
        diverging = FinetuneConfig(optimizer="sgd", lr=10.0, momentum=0.99, epochs=20)
        finetune(nn.Linear(4, 2), x.float() * 1e3, y, diverging)
    with pytest.raises(InputError, match="x"):
        finetune(net, x, y[:-1], FinetuneConfig())
    with pytest.raises(InputError, match="`x`"):
        finetune(net, x.numpy(), y, FinetuneConfig())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="config"):
        finetune(net, x, y, {"lr": 0.1})  # type: ignore[arg-type]
    frozen = nn.Linear(4, 2).requires_grad_(False)
    with pytest.raises(InputError, match="trainable"):
        finetune(frozen, x.float(), y, FinetuneConfig())


def test_predict_keeps_the_mode():
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).train()
    out = predict(net, torch.ones(4, 3), batch_size=3)
    assert out.shape == (4, 3) and net.training


def test_on_epoch_sees_each_epoch_mean_and_the_config_holds_plain_values():
    x, y = _data()
    seen = []
    config = FinetuneConfig(optimizer="adam", epochs=np.int64(3), lr=1, batch_size=16)
    assert type(config.epochs) is int and type(config.lr) is float
    losses = finetune(nn.Linear(4, 2).double(), x, y, config, on_epoch=lambda *a: seen.append(a))
    assert seen == list(enumerate(losses)) and len(losses) == 3
