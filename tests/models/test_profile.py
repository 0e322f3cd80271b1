import dataclasses
import math
import random

import pytest
import torch
from torch import nn

from graceful.errors import InputError
from graceful.models import (
    EdgeCNN,
    ModelCost,
    SmallCNN,
    count_flops,
    count_parameters,
    measure_latency,
    pareto_front,
    profile_model,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# -- parameters ------------------------------------------------------------------------


def test_count_parameters_counts_frozen_and_shared_once():
    layer = nn.Linear(4, 3)
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(3, 2))
    assert count_parameters(model) == 4 * 3 + 3 + 3 * 2 + 2
    for p in layer.parameters():
        p.requires_grad_(False)
    assert count_parameters(model) == 4 * 3 + 3 + 3 * 2 + 2
    assert count_parameters(nn.Sequential(layer, layer)) == 4 * 3 + 3
    assert count_parameters(nn.BatchNorm2d(5)) == 10  # running stats are buffers


# -- FLOPs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "stride", "padding", "size", "out"),
    [(3, 5, 3, 1, 1, 7, 7), (2, 4, 3, 2, 0, 9, 4), (1, 6, 1, 1, 0, 5, 5), (4, 2, 5, 1, 2, 6, 6)],
)
def test_conv_flops_closed_form(c_in, c_out, k, stride, padding, size, out):
    conv = nn.Conv2d(c_in, c_out, kernel_size=k, stride=stride, padding=padding)
    expected = 2 * c_in * c_out * k * k * out * out
    assert count_flops(conv, (c_in, size, size), method="forward") == expected


def test_depthwise_conv_flops_closed_form():
    conv = nn.Conv2d(6, 6, kernel_size=3, padding=1, groups=6, bias=False)
    assert count_flops(conv, (6, 10, 10), method="forward") == 2 * 6 * 3 * 3 * 10 * 10


@pytest.mark.parametrize(("n_in", "n_out"), [(8, 3), (1, 1), (64, 10)])
def test_linear_flops_closed_form(n_in, n_out):
    assert count_flops(nn.Linear(n_in, n_out), (n_in,), method="forward") == 2 * n_in * n_out


def test_elementwise_ops_are_not_counted():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2))
    assert count_flops(model, (3, 8, 8), method="forward") == 0


def test_edge_cnn_flops_by_hand():
    # width 2, depth 1, 28x28: each stage's conv costs 2 * c_in * c_out * 9 * H * W
    convs = 2 * 1 * 2 * 9 * 28 * 28 + 2 * 2 * 4 * 9 * 14 * 14 + 2 * 4 * 8 * 9 * 7 * 7
    assert count_flops(EdgeCNN(width=2), (1, 28, 28)) == convs == 84672
    assert count_flops(EdgeCNN(width=2), (1, 28, 28), method="forward") == convs + 2 * 8 * 10
    projected = EdgeCNN(width=2, embedding_dim=64)
    assert count_flops(projected, (1, 28, 28)) == convs + 2 * 8 * 64
    # dwsep: the plain stem, then depthwise 2 * c * 9 * H * W and pointwise 2 * c_in * c_out * H * W
    dwsep = (
        2 * 1 * 2 * 9 * 28 * 28
        + (2 * 2 * 9 + 2 * 2 * 4) * 14 * 14
        + (2 * 4 * 9 + 2 * 4 * 8) * 7 * 7
    )
    assert count_flops(EdgeCNN(width=2, block="dwsep"), (1, 28, 28)) == dwsep


@pytest.mark.parametrize("width", [4, 8])
@pytest.mark.parametrize("depth", [1, 2])
def test_cheaper_blocks_cost_fewer_flops(width, depth):
    flops = {
        block: count_flops(EdgeCNN(width=width, depth=depth, block=block), (1, 28, 28))
        for block in ("conv", "dwsep", "inverted")
    }
    assert flops["dwsep"] < flops["conv"]
    assert flops["inverted"] < flops["conv"]


@pytest.mark.parametrize("block", ["conv", "dwsep", "inverted"])
def test_flops_and_parameters_grow_with_width_and_depth(block):
    for size in (28, 8):
        by_width = [count_flops(EdgeCNN(width=w, block=block), (1, size, size)) for w in (2, 4, 8)]
        by_depth = [
            count_flops(EdgeCNN(width=4, depth=d, block=block), (1, size, size)) for d in (1, 2, 3)
        ]
        assert by_width == sorted(set(by_width))
        assert by_depth == sorted(set(by_depth))
    params = [count_parameters(EdgeCNN(width=w, depth=w // 2, block=block)) for w in (2, 4, 8)]
    assert params == sorted(set(params))


def test_flops_do_not_depend_on_batch_statistics_and_restore_modes():
    model = SmallCNN(width=2)
    model.train()
    model.head.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert count_flops(model, (1, 28, 28)) == count_flops(model.eval().train(), (1, 28, 28))
    model.head.eval()
    count_flops(model, (1, 28, 28))
    assert model.training
    assert model.features.training
    assert not model.head.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


# -- latency ---------------------------------------------------------------------------


def test_latency_is_positive_and_restores_threads_and_mode():
    model = EdgeCNN(width=2).train()
    threads = torch.get_num_threads()
    other = 2 if threads == 1 else 1
    latency = measure_latency(
        model, (1, 8, 8), batch_size=2, warmup=1, repeats=3, num_threads=other
    )
    assert set(latency) == {"median_ms", "p90_ms"}
    assert all(isinstance(v, float) and v > 0 for v in latency.values())
    assert latency["median_ms"] <= latency["p90_ms"]
    assert torch.get_num_threads() == threads
    assert model.training
    assert all(m.training for m in model.modules())


def test_latency_restores_threads_when_the_model_fails():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(Broken(), (3,), method="forward", num_threads=2 if threads == 1 else 1)
    assert torch.get_num_threads() == threads


def test_profile_model_combines_the_measurements():
    model = EdgeCNN(width=2, block="dwsep", embedding_dim=16)
    cost = profile_model(model, (1, 28, 28), warmup=0, repeats=2)
    assert isinstance(cost, ModelCost)
    assert cost.parameters == count_parameters(model)
    assert cost.flops == count_flops(model, (1, 28, 28))
    assert 0 < cost.latency_ms_median <= cost.latency_ms_p90
    assert set(dataclasses.asdict(cost)) == {
        "parameters",
        "flops",
        "latency_ms_median",
        "latency_ms_p90",
    }


# -- Pareto front ----------------------------------------------------------------------


def _point(c, v):
    return {"cost": c, "value": v}


def test_pareto_front_by_hand():
    points = [
        _point(30, 0.9),  # 0: on the front
        _point(10, 0.7),  # 1: on the front
        _point(20, 0.6),  # 2: dominated by 1
        _point(10, 0.5),  # 3: same cost as 1, lower value
        _point(40, 0.9),  # 4: same value as 0, higher cost
        _point(30, 0.9),  # 5: exact tie with 0: both on the front
        _point(5, math.nan),  # 6: NaN value: never on the front, dominates nothing
        _point(math.nan, 1.0),  # 7: NaN cost
        _point(50, 0.95),  # 8: on the front
    ]
    assert pareto_front(points, cost="cost", value="value") == [1, 0, 5, 8]


def test_pareto_front_edge_cases():
    assert pareto_front([], cost="cost", value="value") == []
    assert pareto_front([_point(1, 0.5)], cost="cost", value="value") == [0]
    assert pareto_front([_point(1, math.nan)], cost="cost", value="value") == []
    ties = [_point(2, 0.5), _point(2, 0.5), _point(2, 0.5)]
    assert pareto_front(ties, cost="cost", value="value") == [0, 1, 2]
    infinite = [_point(math.inf, 1.0), _point(1, -math.inf), _point(2, 0.0)]
    assert pareto_front(infinite, cost="cost", value="value") == [1, 2, 0]
    # other keys and numeric types (ints, tensors) are fine
    rows = [{"flops": 3, "acc": torch.tensor(0.5)}, {"flops": 1, "acc": 0.5, "extra": "x"}]
    assert pareto_front(rows, cost="flops", value="acc") == [1]


def _reference_front(points):
    def dominates(q, p):
        return (
            q["cost"] <= p["cost"]
            and q["value"] >= p["value"]
            and (q["cost"] < p["cost"] or q["value"] > p["value"])
        )

    def finite(p):
        return not (math.isnan(p["cost"]) or math.isnan(p["value"]))

    front = [
        i
        for i, p in enumerate(points)
        if finite(p) and not any(finite(q) and dominates(q, p) for q in points)
    ]
    return sorted(front, key=lambda i: (points[i]["cost"], i))


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_matches_brute_force(seed):
    rng = random.Random(seed)
    grid = [*range(6), math.nan]
    points = [_point(rng.choice(grid), rng.choice(grid)) for _ in range(40)]
    assert pareto_front(points, cost="cost", value="value") == _reference_front(points)


# -- bad arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: count_parameters("model"), "model"),
        (lambda: count_flops("model", (1, 8, 8)), "model"),
        (lambda: count_flops(EdgeCNN(width=2), ()), "input_shape"),
        (lambda: count_flops(EdgeCNN(width=2), (1, 0, 8)), "input_shape"),
        (lambda: count_flops(EdgeCNN(width=2), "1x8x8"), "input_shape"),
        (lambda: count_flops(EdgeCNN(width=2), 8), "input_shape"),
        (lambda: count_flops(EdgeCNN(width=2), (1, 8, 8), method="predict"), "method"),
        (lambda: count_flops(nn.Linear(2, 2), (2,)), "method"),
        (lambda: measure_latency(nn.Linear(2, 2), (2,)), "method"),
        (lambda: measure_latency("model", (2,)), "model"),
        (lambda: measure_latency(EdgeCNN(width=2), (1, 8, 8), batch_size=0), "batch_size"),
        (lambda: measure_latency(EdgeCNN(width=2), (1, 8, 8), warmup=-1), "warmup"),
        (lambda: measure_latency(EdgeCNN(width=2), (1, 8, 8), repeats=0), "repeats"),
        (lambda: measure_latency(EdgeCNN(width=2), (1, 8, 8), num_threads=0), "num_threads"),
        (lambda: measure_latency(EdgeCNN(width=2), [1, 8.0, 8]), "input_shape"),
        (lambda: profile_model(EdgeCNN(width=2), (1, 8, 8), repeats=0), "repeats"),
        (lambda: pareto_front({"cost": 1}, cost="cost", value="value"), "points"),
        (lambda: pareto_front([1, 2], cost="cost", value="value"), "points"),
        (lambda: pareto_front([{"value": 1}], cost="cost", value="value"), "cost"),
        (lambda: pareto_front([_point(1, 1), {"cost": 1}], cost="cost", value="value"), "value"),
        (lambda: pareto_front([_point("a", 1)], cost="cost", value="value"), "points"),
        (lambda: pareto_front([_point(None, 1)], cost="cost", value="value"), "points"),
        (lambda: pareto_front([_point(1, 1)], cost=1, value="value"), "cost"),
    ],
)
def test_bad_arguments_name_themselves(call, name):
    with pytest.raises(InputError, match=f"`{name}`"):
        call()
