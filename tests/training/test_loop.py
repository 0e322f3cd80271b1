"""The shared epoch core: the sample-weighted mean, the penalty, steps, schedule, divergence."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from graceful.errors import InputError, TrainingDivergedError
from graceful.training import Batch, OptimizerStep, train_epoch

D, C = 4, 3


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(D, C).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (8,), generator=g)
    batches = [Batch(x[:5], y[:5]), Batch(x[5:], y[5:])]  # a small last batch
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
    return model, batches, optimizer, scheduler


def test_the_mean_weights_each_batch_by_its_samples_and_the_schedule_steps_per_batch():
    model, batches, optimizer, scheduler = _setup()
    seen: list[float] = []

    def objective(out, batch):
        loss = F.cross_entropy(out, batch.y)
        seen.append(float(loss.detach()))
        return loss

    calls = []
    mean = train_epoch(
        model,
        batches,
        objective,
        OptimizerStep(optimizer),
        scheduler,
        epoch=0,
        on_batch=lambda: calls.append(1),
    )
    assert mean == (seen[0] * 5 + seen[1] * 3) / 8  # not the mean of the two batch means
    assert len(calls) == 2 and scheduler.last_epoch == 2
    assert optimizer.param_groups[0]["lr"] == 0.1 * 0.25


def test_one_step_is_plain_sgd_on_the_loss_plus_the_penalty_which_is_not_reported():
    def run(with_penalty: bool):
        model, batches, optimizer, scheduler = _setup()
        start = model.weight.detach().clone()
        penalty = (lambda: 2.0 * model.weight.pow(2).sum()) if with_penalty else None
        mean = train_epoch(
            model,
            batches[:1],
            lambda out, b: F.cross_entropy(out, b.y),
            OptimizerStep(optimizer),
            scheduler,
            epoch=0,
            penalty=penalty,
        )
        return mean, start, model.weight.detach()

    plain, start, moved = run(False)
    penalised, _, pulled = run(True)
    assert plain == penalised  # the same reported loss: the penalty is minimised only
    # the penalty's gradient 4 w adds -lr * 4 w to the step
    torch.testing.assert_close(pulled, moved - 0.1 * 4.0 * start, rtol=0, atol=1e-12)


class _Recorder:
    """A Step that records what it is given and moves nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def zero_grad(self) -> None:
        self.calls.append(("zero_grad", None))

    def __call__(self, batch, loss) -> None:
        self.calls.append(("step", (len(batch), float(loss.detach()))))


class _NoSchedule:
    def step(self) -> None:
        pass


def test_a_step_gets_the_batch_and_the_minimised_loss_after_zero_grad():
    model, batches, _optimizer, _scheduler = _setup()
    step = _Recorder()
    before = model.weight.detach().clone()
    train_epoch(
        model,
        batches,
        lambda out, b: out.pow(2).mean(),
        step,
        _NoSchedule(),
        epoch=0,
        penalty=lambda: torch.tensor(1.0, dtype=torch.float64),
    )
    kinds = [kind for kind, _ in step.calls]
    assert kinds == ["zero_grad", "step", "zero_grad", "step"]
    sizes = [value[0] for kind, value in step.calls if kind == "step"]
    assert sizes == [5, 3]
    assert torch.equal(model.weight, before)  # the step decides whether anything moves
    assert model.weight.grad is not None  # the backward pass ran


def test_gradient_clipping_bounds_the_norm():
    model, batches, optimizer, _scheduler = _setup()
    clip = OptimizerStep(optimizer, max_grad_norm=1e-3)
    clip.zero_grad()
    (1e3 * model(batches[0].x).sum()).backward()
    clip(batches[0], torch.zeros(()))
    norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert float(norm) <= 1e-3 * (1 + 1e-6)
    with pytest.raises(InputError, match="`max_grad_norm`"):
        OptimizerStep(optimizer, max_grad_norm=0.0)


def test_divergence_names_the_epoch_and_the_advice():
    model, batches, optimizer, scheduler = _setup()
    with pytest.raises(TrainingDivergedError, match=r"epoch 4: the loss is nan; lower `lr`"):
        train_epoch(
            model,
            batches,
            lambda out, b: out.sum() * math.nan,
            OptimizerStep(optimizer),
            scheduler,
            epoch=4,
            advice="lower `lr`",
        )


def test_a_loss_that_is_not_a_scalar_or_no_batch_at_all_is_an_input_error():
    model, batches, optimizer, scheduler = _setup()
    step = OptimizerStep(optimizer)
    with pytest.raises(InputError, match=r"`loss`.*scalar.*\(5,\)"):
        train_epoch(model, batches, lambda out, b: out.sum(1), step, scheduler, epoch=0)
    with pytest.raises(InputError, match="epoch 0"):
        train_epoch(model, [], lambda out, b: out.sum(), step, scheduler, epoch=0)
