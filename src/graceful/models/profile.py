"""The cost of a model: parameters, FLOPs and CPU latency, and the Pareto front of cost vs value.

All costs are of the model's ``embed`` by default (``method="embed"``): on a device, the
edge model computes embeddings and the search runs elsewhere, so the classifier head is
not part of the deployed cost. Pass ``method="forward"`` for the logits.

Example:
    >>> from graceful.models import EdgeCNN
    >>> model = EdgeCNN(width=2)
    >>> count_parameters(model), count_flops(model, (1, 28, 28))
    (496, 84672)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from graceful._eval_mode import eval_mode
from graceful._validation import check_instance, check_int
from graceful.errors import InputError

__all__ = [
    "ModelCost",
    "count_flops",
    "count_parameters",
    "measure_latency",
    "pareto_front",
    "profile_model",
]

_METHODS = ("embed", "forward")


def _check_input_shape(input_shape: object) -> tuple[int, ...]:
    if (
        not isinstance(input_shape, Sequence)
        or isinstance(input_shape, str)
        or len(input_shape) == 0
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in input_shape)
    ):
        raise InputError(
            "Expected argument `input_shape` to be a non-empty tuple of positive ints"
            f" (one sample, without the batch dimension), but got {input_shape!r}"
        )
    return tuple(input_shape)


def _method(model: nn.Module, method: object) -> Callable[[torch.Tensor], object]:
    if method not in _METHODS:
        raise InputError(
            f"Expected argument `method` to be 'embed' or 'forward', but got {method!r}"
        )
    if method == "embed" and not callable(getattr(model, "embed", None)):
        raise InputError(
            "Expected argument `method` to name a method of `model`, but"
            f" {type(model).__name__} has no `embed`"
        )
    return cast("Callable[[torch.Tensor], object]", model if method == "forward" else model.embed)


def _zeros_like_model(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    first = next(model.parameters(), None)
    if first is None:
        return torch.zeros(shape)
    return torch.zeros(shape, device=first.device, dtype=first.dtype)


def count_parameters(model: nn.Module) -> int:
    """The number of parameters of ``model``, trainable and frozen (shared ones once).

    Buffers (e.g. BatchNorm's running statistics) are not parameters and are not counted.

    Args:
        model: any module.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(
        p.numel()
        for p in check_instance("model", model, nn.Module, "a torch.nn.Module").parameters()
    )


def count_flops(model: nn.Module, input_shape: Sequence[int], *, method: str = "embed") -> int:
    """FLOPs of one sample through ``model.embed`` (default) or ``model.forward``.

    Measured with :class:`torch.utils.flop_counter.FlopCounterMode` on a zero tensor of
    shape ``(1, *input_shape)``, in eval mode and without gradients; the model's
    train/eval modes are restored afterwards. FlopCounterMode counts the FLOPs of
    matrix multiplications and convolutions, 2 per multiply-add (``2 * C_in * C_out * k *
    k * H_out * W_out`` for a conv, ``C_in / groups`` for a grouped one; ``2 * in * out``
    for a linear layer), and not elementwise operations (bias, BatchNorm, activations,
    pooling, residual additions), which are cheap next to them in a CNN.

    Args:
        model: a module (with an ``embed`` method for ``method="embed"``).
        input_shape: the shape of one sample, without the batch dimension, e.g.
            ``(1, 28, 28)``.
        method: ``"embed"`` or ``"forward"``.

    Returns:
        The FLOPs of one sample.

    Example:
        >>> conv = nn.Conv2d(2, 4, kernel_size=3, padding=1)
        >>> count_flops(conv, (2, 5, 5), method="forward") == 2 * 2 * 4 * 3 * 3 * 5 * 5
        True
        >>> count_flops(nn.Linear(8, 3), (8,), method="forward")
        48
    """
    model = check_instance("model", model, nn.Module, "a torch.nn.Module")
    shape = _check_input_shape(input_shape)
    run = _method(model, method)
    x = _zeros_like_model(model, (1, *shape))
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        run(x)
    return int(counter.get_total_flops())


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    method: str = "embed",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    num_threads: int = 1,
) -> dict[str, float]:
    """Wall-clock milliseconds per call of ``model.embed`` (default) or ``forward`` on CPU.

    Runs ``warmup`` untimed calls, then times ``repeats`` calls on a zero batch of shape
    ``(batch_size, *input_shape)`` with :func:`time.perf_counter`, in eval mode under
    :func:`torch.inference_mode`. Single-threaded by default, as on one phone core:
    :func:`torch.set_num_threads` is set to ``num_threads`` for the measurement and
    restored afterwards, and so are the model's train/eval modes. Latencies are noisy:
    compare models measured on the same machine, in one session, while it is otherwise
    idle.

    Args:
        model: a module on the CPU (with an ``embed`` method for ``method="embed"``).
        input_shape: the shape of one sample, without the batch dimension.
        method: ``"embed"`` or ``"forward"``.
        batch_size: samples per call.
        warmup: untimed calls first (>= 0).
        repeats: timed calls (>= 1).
        num_threads: intra-op threads during the measurement.

    Returns:
        ``{"median_ms": ..., "p90_ms": ...}``: the median and the 90th percentile (linear
        interpolation) of the time per call, in milliseconds.

    Example:
        >>> latency = measure_latency(nn.Linear(8, 3), (8,), method="forward", repeats=3)
        >>> sorted(latency), 0 < latency["median_ms"] <= latency["p90_ms"]
        (['median_ms', 'p90_ms'], True)
    """
    model = check_instance("model", model, nn.Module, "a torch.nn.Module")
    shape = _check_input_shape(input_shape)
    run = _method(model, method)
    batch_size = check_int("batch_size", batch_size, low=1)
    warmup = check_int("warmup", warmup, low=0)
    repeats = check_int("repeats", repeats, low=1)
    num_threads = check_int("num_threads", num_threads, low=1)
    devices = {t.device.type for t in (*model.parameters(), *model.buffers())}
    if devices - {"cpu"}:
        raise InputError(
            "Expected argument `model` to be on the CPU, but it has tensors on"
            f" {', '.join(sorted(devices - {'cpu'}))}"
        )
    first = next(model.parameters(), None)
    x = torch.zeros((batch_size, *shape), dtype=torch.float32 if first is None else first.dtype)
    threads = torch.get_num_threads()
    times: list[float] = []
    try:
        torch.set_num_threads(num_threads)
        with eval_mode(model), torch.inference_mode():
            for _ in range(warmup):
                run(x)
            for _ in range(repeats):
                start = time.perf_counter()
                run(x)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    milliseconds = np.asarray(times) * 1000.0
    return {
        "median_ms": float(np.median(milliseconds)),
        "p90_ms": float(np.percentile(milliseconds, 90)),
    }


@dataclass(frozen=True)
class ModelCost:
    """The cost of a model (see :func:`profile_model`).

    Attributes:
        parameters: all parameters (:func:`count_parameters`).
        flops: FLOPs of one sample (:func:`count_flops`).
        latency_ms_median: median milliseconds per call (:func:`measure_latency`).
        latency_ms_p90: 90th percentile of milliseconds per call.

    Example:
        >>> import dataclasses
        >>> dataclasses.asdict(ModelCost(10, 200, 0.5, 0.7))["flops"]
        200
    """

    parameters: int
    flops: int
    latency_ms_median: float
    latency_ms_p90: float


def profile_model(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    method: str = "embed",
    **latency_options: Any,
) -> ModelCost:
    """Parameters, FLOPs of one sample and CPU latency of ``model``, in one record.

    ``model``, ``input_shape`` and ``method`` are those of :func:`count_flops`;
    ``latency_options`` are the other keyword arguments of :func:`measure_latency`
    (``batch_size``, ``warmup``, ``repeats``, ``num_threads``). Use
    :func:`dataclasses.asdict` on the result to feed :func:`pareto_front`.

    Example:
        >>> from graceful.models import EdgeCNN
        >>> cost = profile_model(EdgeCNN(width=2), (1, 8, 8), warmup=0, repeats=2)
        >>> cost.parameters, cost.flops, cost.latency_ms_median > 0
        (496, 6912, True)
    """
    latency = measure_latency(model, input_shape, method=method, **latency_options)
    return ModelCost(
        parameters=count_parameters(model),
        flops=count_flops(model, input_shape, method=method),
        latency_ms_median=latency["median_ms"],
        latency_ms_p90=latency["p90_ms"],
    )


def _number(point: Mapping[str, object], key: str, index: int) -> float:
    raw = point[key]
    try:
        if isinstance(raw, (bool, str, bytes)):
            raise TypeError
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(
            f"Expected argument `points` to hold numbers, but points[{index}][{key!r}] is {raw!r}"
        ) from None


def pareto_front(points: Sequence[Mapping[str, float]], *, cost: str, value: str) -> list[int]:
    """Indices of the points on the Pareto front of low ``cost`` and high ``value``.

    A point is *dominated* when another has a lower-or-equal cost and a higher-or-equal
    value, and is strictly better in one; the front is the points that are not
    dominated, sorted by cost (then by index). Points with equal cost and value are all
    on the front or all off it. A point with a NaN cost or value is never on the front
    and dominates nothing.

    Args:
        points: mappings that hold ``cost`` and ``value`` (e.g. rows of a table, or
            :func:`dataclasses.asdict` of a :class:`ModelCost` with an accuracy added).
        cost: the key of the cost (lower is better), e.g. ``"flops"``.
        value: the key of the value (higher is better), e.g. ``"accuracy"``.

    Returns:
        Indices into ``points``.

    Example:
        >>> points = [
        ...     {"flops": 30, "accuracy": 0.9},
        ...     {"flops": 10, "accuracy": 0.7},
        ...     {"flops": 20, "accuracy": 0.6},  # dominated by the second
        ...     {"flops": 40, "accuracy": float("nan")},
        ... ]
        >>> pareto_front(points, cost="flops", value="accuracy")
        [1, 0]
    """
    if not isinstance(points, Sequence) or isinstance(points, (str, bytes)):
        raise InputError(
            f"Expected argument `points` to be a sequence of mappings, but got"
            f" {type(points).__name__}"
        )
    for key, name in ((cost, "cost"), (value, "value")):
        if not isinstance(key, str):
            raise InputError(f"Expected argument `{name}` to be a str key, but got {key!r}")
    rows: list[tuple[float, float, int]] = []
    for i, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise InputError(
                f"Expected argument `points` to be a sequence of mappings, but points[{i}]"
                f" is {type(point).__name__}"
            )
        for key, name in ((cost, "cost"), (value, "value")):
            if key not in point:
                raise InputError(
                    f"Expected argument `{name}` to be a key of every point, but points[{i}]"
                    f" lacks {key!r}"
                )
        c, v = _number(point, cost, i), _number(point, value, i)
        if not (math.isnan(c) or math.isnan(v)):
            rows.append((c, v, i))
    # Sweep by increasing cost: a point is on the front when its value beats every point of
    # strictly lower cost and is the highest among the points of its own cost.
    rows.sort(key=lambda r: (r[0], -r[1], r[2]))
    front: list[int] = []
    best: float | None = None  # the highest value at a strictly lower cost
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and rows[end][0] == rows[start][0]:
            end += 1
        top = rows[start][1]
        if best is None or top > best:
            front.extend(i for _, v, i in rows[start:end] if v == top)
            best = top
        start = end
    return front
