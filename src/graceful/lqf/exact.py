r"""K-FAC with the exact step of the quadratic model: LQF trained to convergence, no learning rate.

With the squared loss a :class:`~graceful.lqf.LinearizedModel` has an exactly quadratic
objective in its weights :math:`w`,

.. math:: L(w) = \frac1{2N}\sum_i \lVert f(x_i; w_0) + J_i (w - w_0) - s\,e_{y_i}\rVert^2
          + \frac\mu2 \lVert w - w_0\rVert^2,

whose Hessian is the Gauss-Newton matrix :math:`H = \frac1N \sum_i J_i^\top J_i + \mu I`,
the same at every :math:`w`. Along directions :math:`d_k`, :math:`d_k^\top H d_l =
\frac1N \sum_i (J_i d_k)^\top (J_i d_l) + \mu\, d_k^\top d_l` needs one Jacobian-vector
product per direction (:meth:`~graceful.lqf.LinearizedModel.jacobian_vector_products`).

Each step on a minibatch :math:`B` (Martens and Grosse 2015, sections 6.4 and 7): the
directions are the K-FAC direction :math:`\Delta = -(G + rI)^{-1} \nabla_W (A + rI)^{-1}`
(per factored layer, :math:`r = \sqrt{\lambda + \mu}`), the negative gradient of the
trainable parameters outside the factored layers (batch-norm affine weights) when they are
not frozen, and the previous step :math:`\delta_{t-1}` (momentum). The step
:math:`\delta_t = \sum_k c_k d_k` minimises the damped quadratic model of the batch,

.. math:: M(\delta) = L_B(w) + g^\top\delta + \tfrac12\,\delta^\top (H_B + \lambda I)\,\delta,
          \qquad c = -(D^\top (H_B + \lambda I) D)^{+}\, D^\top g,

so without damping and with one direction :math:`c = -g^\top d / d^\top H_B d`, the exact
minimiser along :math:`d`. The damping :math:`\lambda` is a trust region, adapted every
``period`` steps by the Levenberg-Marquardt rule on the reduction ratio
:math:`\rho` (:func:`adapt_damping`).

The reduction ratio :math:`\rho` of a period is the sum of its steps' actual changes of the
objective over the sum of the changes :math:`M(\delta) - M(0)` predicted on their batches,
the actual change of step :math:`t` being measured on the *next* batch. On its own batch the
model is exact and :math:`\rho \ge 1` always (with :math:`K = D^\top(H_B + \lambda I)D`,
:math:`\rho = 1 + b^\top K^{-1} \lambda D^\top D K^{-1} b / b^\top K^{-1} b`), so only a
held-out batch says anything; it costs nothing extra, the objective being quadratic:
:math:`L_{B'}(w_t) = L_{B'}(w_{t+1}) - g'^\top\delta_t + \frac12 \delta_t^\top H_{B'}
\delta_t`, and :math:`J_{B'}\delta_t` is the momentum direction's product, computed anyway.
:math:`\rho > 3/4` lowers the damping (:func:`adapt_damping`). With minibatches
:math:`\rho < 1/4` means the step fits the batch's noise, which more damping cannot cure
(the ratio then stays near the signal's share of the batch gradient whatever the damping;
tried, raising the damping froze training at a loss 65 % above the tuned K-FAC run's): the
batch size doubles at the end of the epoch instead. With full batches the rule is the
textbook one both ways.

Stopping: when the epoch's mean objective (loss plus the pull towards :math:`w_0`, each
batch's at the weights before its step) has decreased by less than ``tol`` relative to the
previous epoch's ``patience`` epochs in a row, the batch size doubles (up to the whole
data); once it is the whole data, the same test stops training: each step is then exact
(with momentum, the minimisation over the plane of the K-FAC direction and the previous
step is a preconditioned conjugate-gradient method), so training ends at the minimiser of
the training objective, within ``tol``. ``max_epochs`` is a cap, and the history says
which of the two ended the training.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, cast

import torch

from graceful._validation import (
    check_bool,
    check_callable,
    check_choice,
    check_fields,
    check_instance,
    check_int,
    check_optional,
    check_real,
    check_seed,
    fail,
)
from graceful.errors import InputError
from graceful.training import Batch, train_epoch

# the package's K-FAC core: the factored layers, their damped inverses, applying them
from .finetune import _batches, _check_data, _pull, squared_loss
from .kfac import KFACFactors, _apply, _damped_inverses, _layers, kfac_factors
from .linearize import LinearizedModel

__all__ = [
    "ExactConfig",
    "ExactHistory",
    "adapt_damping",
    "curvature",
    "finetune_exact",
]

Others = Literal["own_step", "frozen"]
_OTHERS: tuple[Others, ...] = ("own_step", "frozen")
MIN_DAMPING, MAX_DAMPING = 1e-8, 1e8
"""The damping is kept in this range."""


def adapt_damping(damping: float, rho: float, *, omega: float) -> float:
    r"""The damping after a period whose reduction ratio was ``rho`` (Levenberg-Marquardt).

    :math:`\lambda\omega` when :math:`\rho > 3/4`, :math:`\lambda/\omega` when
    :math:`\rho < 1/4`, else :math:`\lambda`; clipped to ``[MIN_DAMPING, MAX_DAMPING]``
    (1e-8, 1e8). A NaN ratio counts as bad.

    Args:
        damping: the current :math:`\lambda > 0`.
        rho: the reduction ratio, actual over predicted decrease.
        omega: the factor, in ``(0, 1)``; Martens and Grosse use :math:`(19/20)^T` for a
            period of :math:`T` steps.

    Example:
        >>> adapt_damping(1.0, 0.9, omega=0.5), adapt_damping(1.0, 0.5, omega=0.5)
        (0.5, 1.0)
        >>> adapt_damping(1.0, -3.0, omega=0.5)
        2.0
    """
    damping = check_real("damping", damping, low=0.0, low_open=True)
    if not isinstance(rho, numbers.Real) or isinstance(rho, bool):
        raise fail("rho", "a real number", rho)
    rho = float(rho)
    omega = check_real("omega", omega, low=0.0, high=1.0, low_open=True, high_open=True)
    if rho > 0.75:
        damping *= omega
    elif not rho >= 0.25:  # also NaN
        damping /= omega
    return min(max(damping, MIN_DAMPING), MAX_DAMPING)


@dataclass(frozen=True)
class ExactConfig:
    r"""How :func:`finetune_exact` trains: the squared loss, K-FAC, exact steps, no learning rate.

    Attributes:
        max_epochs: the cap on passes over the data (the stopping rule usually ends
            training before).
        batch_size: samples per step at first; it doubles on each plateau, up to the
            whole data.
        damping: the initial damping :math:`\lambda` (adapted; see :func:`adapt_damping`).
        period: :math:`T`, steps between damping updates.
        omega: the damping factor; ``None``: :math:`(19/20)^T`.
        momentum: add the previous step to the directions the quadratic model combines
            (its coefficient chosen by the model, not fixed).
        others: the trainable parameters outside K-FAC's linear and conv layers (batch-norm
            affine weights): ``"own_step"`` moves them along their own negative gradient,
            a separate direction whose step size the quadratic model chooses jointly with
            the others (a per-group scalar preconditioner, exact for the batch);
            ``"frozen"`` holds them at :math:`w_0`.
        tol: the relative decrease of the epoch's mean objective under which an epoch
            counts as a plateau.
        patience: plateau epochs in a row that double the batch size, or, with full
            batches, stop the training.
        weight_decay: :math:`\mu` of :math:`\frac\mu2\lVert w - w_0\rVert^2`.
        target_scale: the squared loss's target value of the true class.
        factor_samples: samples the K-FAC factors are computed from, once (the curvature
            of a linearized model is constant).
        seed: seed of the data order and of the factors' samples.

    Raises:
        InputError: naming the first field with a bad value.

    Example:
        >>> ExactConfig(period=10).omega_value() == (19 / 20) ** 10
        True
        >>> ExactConfig(tol=0)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected `ExactConfig.tol` to be a finite number > 0, but got 0
    """

    max_epochs: int = 100
    batch_size: int = 256
    damping: float = 1.0
    period: int = 5
    omega: float | None = None
    momentum: bool = True
    others: Others = "own_step"
    tol: float = 1e-3
    patience: int = 2
    weight_decay: float = 0.0
    target_scale: float = 5.0
    factor_samples: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        positive = partial(check_real, low=0.0, low_open=True)
        check_fields(
            self,
            {
                "max_epochs": partial(check_int, low=1),
                "batch_size": partial(check_int, low=1),
                "damping": partial(check_real, low=MIN_DAMPING, high=MAX_DAMPING, low_open=False),
                "period": partial(check_int, low=1),
                "omega": partial(
                    check_optional, check_real, low=0.0, high=1.0, low_open=True, high_open=True
                ),
                "momentum": check_bool,
                "others": partial(check_choice, choices=_OTHERS),
                "tol": positive,
                "patience": partial(check_int, low=1),
                "weight_decay": partial(check_real, low=0.0),
                "target_scale": positive,
                "factor_samples": partial(check_int, low=1),
                "seed": check_seed,
            },
        )

    def omega_value(self) -> float:
        """:attr:`omega`, or :math:`(19/20)^T` when it is ``None``."""
        return (19 / 20) ** self.period if self.omega is None else self.omega


@dataclass
class ExactHistory:
    r"""What :func:`finetune_exact` did, epoch by epoch and step by step.

    Attributes:
        losses: the mean training loss of each epoch (without the pull towards
            :math:`w_0`), as :func:`~graceful.lqf.finetune` returns.
        objectives: each epoch's mean objective (loss plus pull), the stopping rule's input.
        step_sizes: per step, the coefficient of the K-FAC direction.
        other_step_sizes: per step, the coefficient of the other parameters' negative
            gradient (0 when they are frozen or there are none).
        momenta: per step, the coefficient of the previous step (0 without momentum and at
            the first step).
        dampings: per step, the damping :math:`\lambda` it was taken with.
        rhos: per damping update (every ``period`` steps), the reduction ratio it used.
        batch_sizes: the batch size of each epoch (it doubles on each plateau).
        converged: whether the stopping rule ended training (else the cap did).
        reason: a sentence saying why training stopped.
    """

    losses: list[float] = field(default_factory=list)
    objectives: list[float] = field(default_factory=list)
    step_sizes: list[float] = field(default_factory=list)
    other_step_sizes: list[float] = field(default_factory=list)
    momenta: list[float] = field(default_factory=list)
    dampings: list[float] = field(default_factory=list)
    rhos: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    converged: bool = False
    reason: str = ""

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.losses)


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors]).double()


def _products(
    jd: torch.Tensor, flat: torch.Tensor, weight_decay: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(d_k^T H d_l, d_k^T d_l)`` from ``J d`` (K, N, ...) and the flat directions (K, P)."""
    n = jd.shape[1]
    j = jd.reshape(jd.shape[0], -1).double()
    dots = flat @ flat.T
    return j @ j.T / n + weight_decay * dots, dots


def curvature(
    model: LinearizedModel,
    x: torch.Tensor,
    directions: list[list[torch.Tensor]],
    *,
    weight_decay: float = 0.0,
) -> torch.Tensor:
    r"""The squared-loss Hessian of ``model`` on ``x`` between directions, ``(K, K)`` float64.

    Entry :math:`(k, l)` is :math:`d_k^\top H d_l` with :math:`H = \frac1N \sum_i
    J_i^\top J_i + \mu I` (:math:`J_i` the Jacobian of the C outputs of sample :math:`i`
    at :math:`w_0`): the exact Hessian of
    :func:`~graceful.lqf.squared_loss` (mean reduction) plus the pull
    :math:`\frac\mu2\lVert w - w_0\rVert^2`, whatever the targets, scale and weights.
    One Jacobian-vector product per direction.

    Args:
        model: the linearized network.
        x: inputs, ``(N, ...)``.
        directions: ``K`` directions, each a tensor per trainable weight in
            :attr:`~graceful.lqf.LinearizedModel.weights` order.
        weight_decay: :math:`\mu \ge 0`.

    Example:
        >>> lin = LinearizedModel(torch.nn.Linear(2, 1, bias=False))
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
        >>> curvature(lin, x, [[torch.tensor([[1.0, 1.0]])]])  # (1 + 9) / 2
        tensor([[5.]], dtype=torch.float64)
    """
    check_instance("model", model, LinearizedModel, "a LinearizedModel")
    check_instance("x", x, torch.Tensor, "a tensor")
    weight_decay = check_real("weight_decay", weight_decay, low=0.0)
    jd = model.jacobian_vector_products(x, directions)
    flat = torch.stack([_flat(list(d)) for d in directions])
    return _products(jd, flat, weight_decay)[0]


class _ExactStep:
    """The :class:`~graceful.training.Step` of :func:`finetune_exact` (see the module)."""

    def __init__(self, model: LinearizedModel, factors: KFACFactors, config: ExactConfig) -> None:
        self.model, self.config = model, config
        self.params = list(model.weights)
        self.layers = _layers(model, None)
        factored = {id(layer.weight) for layer in self.layers.values()}
        factored |= {id(lay.bias) for lay in self.layers.values() if lay.bias is not None}
        self.factored = [id(p) in factored for p in self.params]
        self.has_others = config.others == "own_step" and not all(self.factored)
        self.factors, self.damping = factors, config.damping
        self.omega = config.omega_value()
        self._invert()
        self.history = ExactHistory()
        self.previous: list[torch.Tensor] | None = None  # the last step
        self.predicted = 0.0  # M(delta) - M(0) of the last step, on its batch
        self.full_batch = False  # set by the loop: batches are the whole data
        self.noisy = False  # a period's ratio asked for a bigger batch
        self.period_actual = self.period_predicted = 0.0
        self.steps = 0
        self.optimizer = torch.optim.SGD(self.params, lr=1.0)
        self.objective_sum, self.samples = 0.0, 0

    def _invert(self) -> None:
        self.inverses = {
            name: tuple(f.to(self.layers[name].weight.dtype) for f in pair)
            for name, pair in _damped_inverses(
                self.factors, self.damping + self.config.weight_decay
            ).items()
        }

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def __call__(self, batch: Batch, loss: torch.Tensor) -> None:
        grads = [
            torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in self.params
        ]
        _apply(self.layers, self.inverses)  # type: ignore[arg-type]  # .grad <- K-FAC step
        directions = [
            [-cast(torch.Tensor, p.grad) if f else torch.zeros_like(p) for p, f in
             zip(self.params, self.factored, strict=True)]
        ]  # fmt: skip
        if self.has_others:
            directions.append(
                [torch.zeros_like(g) if f else -g for g, f in
                 zip(grads, self.factored, strict=True)]
            )  # fmt: skip
        tangents = directions + ([self.previous] if self.previous is not None else [])
        jd = self.model.jacobian_vector_products(batch.x, tangents)
        flat = torch.stack([_flat(t) for t in tangents])
        hessian, dots = _products(jd, flat, self.config.weight_decay)
        b = flat @ _flat(grads)  # g . d_k
        if self.previous is not None:  # the last step's change of this batch's objective
            last = len(tangents) - 1
            self.period_actual += float(b[last] - 0.5 * hessian[last, last])
            self.period_predicted += self.predicted
        use = list(range(len(directions)))
        if self.config.momentum and self.previous is not None:
            use.append(len(tangents) - 1)
        model_matrix = (hessian + self.damping * dots)[use][:, use]
        coefficients = -torch.linalg.pinv(model_matrix, hermitian=True) @ b[use]
        self.predicted = 0.5 * float(b[use] @ coefficients)  # M(delta) - M(0), this batch
        c = coefficients.tolist()
        step = [
            sum((c[i] * tangents[k][j] for i, k in enumerate(use)), torch.zeros_like(p))
            for j, p in enumerate(self.params)
        ]
        for p, s in zip(self.params, step, strict=True):
            p.grad = -s
        self.optimizer.step()  # plain SGD with lr 1 on -step: w <- w + step
        h = self.history
        h.step_sizes.append(c[0])
        h.other_step_sizes.append(c[1] if self.has_others else 0.0)
        h.momenta.append(c[-1] if len(use) > len(directions) else 0.0)
        h.dampings.append(self.damping)
        self.previous = [s.detach() for s in step]
        self.objective_sum += float(loss.detach()) * len(batch)
        self.samples += len(batch)
        self.steps += 1
        if self.steps % self.config.period == 0 and self.period_predicted < 0:
            rho = self.period_actual / self.period_predicted
            h.rhos.append(rho)
            if rho < 0.25 and not self.full_batch:
                self.noisy = True  # the remedy is a bigger batch, not more damping
            else:
                damping = adapt_damping(self.damping, rho, omega=self.omega)
                if damping != self.damping:
                    self.damping = damping
                    self._invert()
            self.period_actual = self.period_predicted = 0.0

    def epoch_objective(self) -> float:
        """The mean objective since the last call, and reset."""
        mean = self.objective_sum / max(self.samples, 1)
        self.objective_sum, self.samples = 0.0, 0
        return mean


def finetune_exact(
    model: LinearizedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    config: ExactConfig | None = None,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> ExactHistory:
    r"""Train a linearized ``model`` on the squared loss to convergence, in place.

    K-FAC directions with the exact step size and momentum of the quadratic model on each
    minibatch, the damping adapted by the reduction ratio, the batch size doubled when the
    objective stops decreasing, and training stopped when it stops decreasing with full
    batches (the module's docstring has the rules). No learning rate. The K-FAC factors
    are computed once, from ``config.factor_samples`` samples. Each epoch is one
    :func:`graceful.training.train_epoch` over a fresh permutation of the data.

    Args:
        model: a :class:`~graceful.lqf.LinearizedModel` (the objective is quadratic only
            for a linearized network) with at least one trainable linear or conv layer.
        x: inputs, ``(N, ...)``.
        y: class indices, ``(N,)``.
        config: the rules' settings; ``None``: ``ExactConfig()``.
        on_epoch: called with ``(epoch, mean loss)`` after each epoch.

    Returns:
        The :class:`ExactHistory`: losses, step sizes, dampings, ratios, why it stopped.

    Raises:
        InputError: on a model that is not linearized, mismatched or empty data.
        TrainingDivergedError: when an epoch's mean loss is not finite.

    Example:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> x = torch.randn(64, 5)
        >>> y = (x[:, 0] > 0).long()
        >>> net = LinearizedModel(torch.nn.Sequential(
        ...     torch.nn.Linear(5, 8), torch.nn.LeakyReLU(0.1), torch.nn.Linear(8, 2)))
        >>> config = ExactConfig(batch_size=16, weight_decay=0.1, max_epochs=300)
        >>> history = finetune_exact(net, x, y, config)
        >>> history.converged, history.losses[-1] < history.losses[0]
        (True, True)
    """
    if not isinstance(model, LinearizedModel):
        raise fail("model", "a LinearizedModel (its squared loss is quadratic)", model)
    config = ExactConfig() if config is None else config
    check_instance("config", config, ExactConfig)
    check_callable("on_epoch", on_epoch, optional=True)
    _check_data(x, y)
    if not any(p.requires_grad for p in model.parameters()):
        raise InputError("Expected argument `model` to have trainable parameters")
    generator = torch.Generator().manual_seed(config.seed + 1_000_003)
    pick = torch.randperm(len(x), generator=generator)[: config.factor_samples]
    factors = kfac_factors(model, [x[c] for c in pick.split(256)], loss="squared")  # type: ignore[no-untyped-call]
    step = _ExactStep(model, factors, config)
    scale = config.target_scale
    penalty = _pull(model, config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(step.optimizer, lambda _: 1.0)  # none
    generator = torch.Generator().manual_seed(config.seed)
    history = step.history
    calm, batch_size = 0, min(config.batch_size, len(x))
    step.full_batch = batch_size == len(x)
    was_training = model.training
    model.eval()
    try:
        for epoch in range(config.max_epochs):
            mean = train_epoch(
                model,
                _batches(x, y, batch_size, generator),
                lambda out, batch: squared_loss(out, batch.y, scale=scale),
                step,
                schedule,
                epoch=epoch,
                penalty=penalty,
                advice="raise `ExactConfig.damping`",
            )
            history.losses.append(mean)
            history.objectives.append(step.epoch_objective())
            history.batch_sizes.append(batch_size)
            if on_epoch is not None:
                on_epoch(epoch, mean)
            if len(history.objectives) > 1:
                before, now = history.objectives[-2], history.objectives[-1]
                calm = calm + 1 if before - now < config.tol * abs(before) else 0
            if batch_size < len(x) and (step.noisy or calm >= config.patience):
                batch_size, calm = min(2 * batch_size, len(x)), 0
                step.full_batch, step.noisy = batch_size == len(x), False
                continue
            if calm < config.patience or batch_size < len(x):
                continue
            history.converged = True
            history.reason = (
                f"converged: with full batches the objective fell by less than"
                f" tol={config.tol:g} (relative) in {config.patience} epochs in a row"
            )
            break
        else:
            history.reason = (
                f"stopped at max_epochs={config.max_epochs} before the objective converged"
            )
    finally:
        model.train(was_training)
    model.eval()
    return history
