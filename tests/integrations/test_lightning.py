"""The Lightning integration against the real Trainer (CPU, no logger, tiny linear models)."""

from __future__ import annotations

import lightning as L  # noqa: N812
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from graceful.errors import InputError
from graceful.integrations.lightning import RegressionLossMixin, UpdateMetricsCallback
from graceful.losses import FocalDistillationLoss, PositiveCongruentLoss
from graceful.metrics import model_update_metrics
from graceful.training import CachedTeacher, OnlineTeacher


class Classifier(RegressionLossMixin, L.LightningModule):
    def __init__(self, teacher, criterion=None):
        super().__init__()
        self.net = torch.nn.Linear(4, 3)
        self.configure_regression(criterion or FocalDistillationLoss(), teacher)

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class PlainModule(L.LightningModule):  # validation_step returns nothing
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.net(x)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.cross_entropy(self(batch[0]), batch[1]))


def trainer(callbacks, epochs=1):
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        callbacks=callbacks,
    )


@pytest.fixture
def data():
    x = torch.randn(30, 4)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long(), torch.arange(30))


@pytest.mark.parametrize("module_kind", ["mixin", "plain"])
def test_the_callback_logs_the_metrics_of_the_whole_validation_set(data, module_kind):
    old = torch.nn.Linear(4, 3)
    module = Classifier(OnlineTeacher(old)) if module_kind == "mixin" else PlainModule()
    callback = UpdateMetricsCallback(old)
    # batches of 8: the last one has 6 rows, counted like the others
    trainer([callback]).validate(module, DataLoader(data, batch_size=8), verbose=False)
    x, y, _ = data.tensors
    with torch.no_grad():
        expected = model_update_metrics(y, old(x), module(x))
    assert len(callback.history) == 1
    got = callback.history[0]
    for name in ("negative_flip_rate", "positive_flip_rate", "error_rate_new", "error_rate_old"):
        assert got[name] == pytest.approx(expected[name], abs=1e-12), name


def test_fit_logs_every_validation_epoch_and_trains_with_the_objective(data):
    old = torch.nn.Linear(4, 3)
    callback = UpdateMetricsCallback(old)
    run = trainer([callback], epochs=2)
    module = Classifier(OnlineTeacher(old))
    before = module.net.weight.detach().clone()
    loaders = DataLoader(data, batch_size=8), DataLoader(data, batch_size=8)
    run.fit(module, *loaders)
    assert len(callback.history) == 2  # the sanity-check batch is not an epoch
    assert {"val_negative_flip_rate", "val_loss", "train_loss"} <= set(run.callback_metrics)
    assert not torch.equal(before, module.net.weight)
    assert all(not p.requires_grad for p in old.parameters())


def test_training_step_is_the_criterion_against_the_cached_teacher(data):
    x, y, ids = data.tensors
    table = CachedTeacher(ids + 5, torch.randn(30, 3))  # ids need not start at 0
    criterion = PositiveCongruentLoss(FocalDistillationLoss(beta=5.0), lam=0.5)
    module = Classifier(table, criterion)
    module.log = lambda *args, **kwargs: None  # outside a Trainer
    batch = (x[:7], y[:7], ids[:7] + 5)
    loss = module.training_step(batch, 0)
    expected = criterion(module(x[:7]), table.logits[:7], y[:7])
    torch.testing.assert_close(loss, expected)
    with pytest.raises(InputError, match="batches \\(x, y, id\\) for a cached teacher"):
        module.training_step((x[:7], y[:7]), 0)
    with pytest.raises(InputError, match="argument `teacher`"):
        Classifier("old model")
