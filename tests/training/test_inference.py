"""The one batched-inference helper: order, batching, modes, embedding outputs, bad input."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import graceful.lqf
from graceful.embedding import EmbeddingOf, WithEmbedding
from graceful.errors import InputError
from graceful.models import EmbeddingMLP
from graceful.training import TrainConfig, Trainer, predict

N, D, C = 11, 5, 3


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, C))


def _x(dtype=torch.float32) -> torch.Tensor:
    return torch.randn(N, D, generator=torch.Generator().manual_seed(1), dtype=dtype)


def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One sample at a time, by hand, in eval mode."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + 1]) for i in range(len(x))])


@pytest.mark.parametrize("batch_size", [1, 4, N, 1024])
def test_outputs_are_in_order_and_equal_eval_mode_outputs(batch_size):
    net = _net().double().train()
    x = _x(torch.float64)
    out = predict(net, x, batch_size=batch_size)
    assert net.training  # restored
    assert out.dtype == torch.float64 and out.shape == (N, C) and not out.requires_grad
    torch.testing.assert_close(out, _reference(net, x), rtol=1e-12, atol=1e-12)


def test_a_dataset_of_items_gives_the_same_outputs_as_its_inputs():
    net, x = _net(), _x()
    items = TensorDataset(x, torch.zeros(N, dtype=torch.long), torch.arange(N) + 100)
    assert torch.equal(predict(net, items, batch_size=4), predict(net, x, batch_size=4))
    assert torch.equal(predict(net, x.numpy(), batch_size=4), predict(net, x, batch_size=4))


def test_each_submodule_gets_its_own_mode_back():
    net = _net().train()
    net[1].eval()  # a frozen batch norm inside a training model
    predict(net, _x())
    assert [m.training for m in net] == [True, False, True, True]


def test_the_mode_is_restored_when_the_model_fails():
    class Failing(nn.Module):
        def forward(self, x):
            raise RuntimeError("broken")

    model = Failing().train()
    with pytest.raises(RuntimeError, match="broken"):
        predict(model, _x())
    assert model.training


def test_embedding_models_give_logits_or_through_embedding_of_embeddings():
    torch.manual_seed(0)
    model = EmbeddingMLP(D, 4, C)
    x = _x()
    torch.testing.assert_close(predict(WithEmbedding(model), x), _reference(model, x))
    embeddings = predict(EmbeddingOf(model), x)
    torch.testing.assert_close(embeddings, _reference(EmbeddingOf(model), x))
    assert embeddings.shape == (N, 4)


def test_outputs_require_no_gradient_even_under_grad_mode():
    x = _x().requires_grad_(True)
    with torch.enable_grad():
        out = predict(nn.Linear(D, 2), x)
    assert not out.requires_grad


def test_trainer_predict_and_lqf_predict_are_this_function():
    assert graceful.lqf.predict is predict
    net = _net()
    items = TensorDataset(_x(), torch.zeros(N, dtype=torch.long), torch.arange(N))
    trainer = Trainer(net, TrainConfig(epochs=1, batch_size=4, progress=False))
    assert torch.equal(trainer.predict(items), predict(net, items, batch_size=4))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: predict(nn.Linear(D, 2), torch.zeros(0, D)), "`data`.*empty"),
        (lambda: predict(nn.Linear(D, 2), torch.tensor(1.0)), "`data`"),
        (lambda: predict(nn.Linear(D, 2), 3), "`data`"),
        (lambda: predict(nn.Linear(D, 2), TensorDataset(torch.zeros(2, D))), "`data`"),
        (lambda: predict(nn.Linear(D, 2), _x(), batch_size=0), "`batch_size`"),
        (lambda: predict("model", _x()), "`model`"),
        (lambda: predict(nn.LSTM(D, 2), _x()), "returned tuple"),
    ],
)
def test_bad_input_is_a_one_line_error_naming_it(call, match):
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_numpy_inputs_give_outputs_on_the_cpu():
    out = predict(nn.Linear(D, 2), np.zeros((3, D), dtype=np.float32))
    assert out.device.type == "cpu" and out.shape == (3, 2)
