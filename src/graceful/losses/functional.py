r"""Functional regression-free training losses.

Every loss takes tensors, never models::

    loss(new_logits, old_logits, target, *, ..., reduction="mean") -> Tensor

``new_logits`` ``(N, C)`` come from the model being trained; ``old_logits`` ``(N, C)`` from
the deployed (old, teacher) model or an ensemble of them, and are always detached, so no
gradient reaches them; ``target`` ``(N,)`` holds integer class indices. ``reduction`` is
``"mean"`` (the plain mean over the N samples, also where a sample's loss is zero by
construction, so ``sum == mean * N``), ``"sum"`` or ``"none"`` (per-sample values, shape
``(N,)``). "Old right" means the old model's top-1 class (:func:`torch.argmax`, first
maximum on ties) equals the target.

The :mod:`graceful.losses` classes call the same private helpers, so a class and its
function always agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch.nn import functional as F  # noqa: N812

from graceful._ranking import in_top_k, rank
from graceful._validation import check_callable, fail
from graceful.embedding import classifier_logits
from graceful.errors import InputError

from ._checks import (
    DISTANCES,
    FILTERS,
    HEADS,
    Reduction,
    check_classifier,
    check_embeddings,
    check_hyperparameters,
    check_inputs,
    check_pair,
    check_target,
    reduce,
)

__all__ = [
    "DISTANCES",
    "FILTERS",
    "HEADS",
    "RegressionFn",
    "bct_influence_loss",
    "distillation_loss",
    "embedding_regression_loss",
    "focal_distillation_loss",
    "logit_difference_inhibition_loss",
    "new_error_loss",
    "positive_congruent_loss",
    "strict_imitation_loss",
]

RegressionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""A regression term ``(new_logits, old_logits, target) -> loss``."""


# --------------------------------------------------------------------------- shared parts


def _old_right(old: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(N,)`` bool: the old model's top-1 class is the target (:mod:`graceful._ranking`)."""
    return in_top_k(old, target, 1)


def _kd_per_sample(new: torch.Tensor, old: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(old / T) || softmax(new / T))`` per sample."""
    log_p_new = F.log_softmax(new / temperature, dim=1)
    log_p_old = F.log_softmax(old / temperature, dim=1)
    kl = F.kl_div(log_p_new, log_p_old, reduction="none", log_target=True).sum(dim=1)
    return kl * (temperature * temperature)


def _teacher_spread(old: torch.Tensor) -> torch.Tensor:
    """The batch mean of each sample's variance of the old logits over the classes; 1 if 0.

    The mean over all entries of the squared deviations from each row's mean: the same
    number as ``old.var(dim=1, unbiased=False).mean()``, in cheaper kernels.
    """
    centred = old - old.mean(dim=1, keepdim=True)
    spread = centred.square().mean()
    return torch.where(spread > 0, spread, 1.0)


def _logit_matching_per_sample(
    new: torch.Tensor, old: torch.Tensor, *, scaled: bool = False
) -> torch.Tensor:
    """``0.5 * sum_c (new - old)^2`` per sample (the paper's); ``scaled``: in teacher units.

    Scaled, the squared difference is averaged over the classes and divided by the spread
    of the teacher's logits, the batch mean of each sample's variance over the classes
    (detached; 1 when the teacher's logits are constant): the term no longer grows with
    the teacher's logit scale, so a memorised, confident teacher does not swamp the
    cross-entropy.
    """
    squared = (new - old).pow(2)
    if not scaled:
        return 0.5 * squared.sum(dim=1)
    spread = _teacher_spread(old.detach())
    return 0.5 * squared.mean(dim=1) / spread


# --------------------------------------------------------------- private implementations
# Inputs unchecked, hyper-parameters already validated: the classes call these directly.


def _distillation(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor | None,
    temperature: float,
    reduction: Reduction,
) -> torch.Tensor:
    new, old = check_pair(new_logits, old_logits, reduction=reduction)
    if target is not None:
        check_target(target, new.shape[0])
    return reduce(_kd_per_sample(new, old, temperature), reduction)


def _focal_distillation(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    beta: float,
    distance: str,
    temperature: float,
    filter: str,
    reduction: Reduction,
) -> torch.Tensor:
    new, old, labels = check_inputs(new_logits, old_logits, target, reduction=reduction)
    with torch.no_grad():
        if filter == "all":
            weight = torch.full((new.shape[0],), alpha + beta, dtype=new.dtype, device=new.device)
        else:
            mask = _old_right(old, labels)
            if filter == "negative_flip":
                mask = mask & ~in_top_k(new.detach(), labels, 1)
            weight = mask.to(new.dtype) * beta + alpha
    if distance == "kl":
        dist = _kd_per_sample(new, old, temperature)
    else:
        dist = _logit_matching_per_sample(new, old, scaled=distance == "scaled_logit_matching")
    return reduce(weight * dist, reduction)


def _logit_difference_inhibition(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor | None,
    margin: float,
    p: float,
    top_k: int | None,
    exclude_target: bool,
    reduction: Reduction,
) -> torch.Tensor:
    new, old = check_pair(new_logits, old_logits, reduction=reduction)
    labels = None if target is None else check_target(target, new.shape[0])
    if exclude_target and labels is None:
        raise InputError("Expected argument `target` to be a tensor with exclude_target=True")
    if exclude_target and new.shape[1] == 2:
        warnings.warn(
            "logit difference inhibition with exclude_target=True on 2 classes holds one logit"
            " and leaves the decision (target logit minus the other) free: it cannot prevent a"
            " flip; use exclude_target=False",
            UserWarning,
            stacklevel=3,
        )
    excess = torch.relu((new - old).abs() - margin).pow(p)
    n = new.shape[0]
    keep = torch.ones_like(excess, dtype=torch.bool)
    if exclude_target and labels is not None:
        keep[torch.arange(n, device=new.device), labels] = False
    if top_k is not None and top_k < int(keep.sum(dim=1).min()):
        # the top_k classes of each sample by the reference logits, among those kept
        reference = old.detach().masked_fill(~keep, -torch.inf)
        chosen = torch.zeros_like(keep)
        chosen.scatter_(1, rank(reference, top_k), True)
        keep = chosen
    count = keep.sum(dim=1).clamp(min=1).to(excess.dtype)
    return reduce((excess * keep).sum(dim=1) / count, reduction)


def _new_error(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor,
    reduction: Reduction,
) -> torch.Tensor:
    new, old, labels = check_inputs(new_logits, old_logits, target, reduction=reduction)
    ce = F.cross_entropy(new, labels, reduction="none")
    return reduce(torch.where(_old_right(old, labels), ce, ce.new_zeros(())), reduction)


def _strict_imitation(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor,
    reduction: Reduction,
) -> torch.Tensor:
    new, old, labels = check_inputs(new_logits, old_logits, target, reduction=reduction)
    ce = F.cross_entropy(new, F.softmax(old, dim=1), reduction="none")
    return reduce(torch.where(_old_right(old, labels), ce, ce.new_zeros(())), reduction)


def _check_regression_reduction(regression: object, name: str, reduction: Reduction) -> None:
    own = getattr(regression, "reduction", reduction)
    if own != reduction:
        raise InputError(
            f"Expected argument `{name}` to use reduction={reduction!r} like the cross-entropy"
            f" term, but got a loss with reduction={own!r}"
        )


def _positive_congruent(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor | None,
    target: torch.Tensor,
    regression_fn: RegressionFn | None,
    lam: float,
    label_smoothing: float,
    reduction: Reduction,
    mixing: str = "add",
) -> torch.Tensor:
    if mixing == "convex" and lam > 1:
        raise InputError(
            f"Expected argument `lam` to be in [0, 1] with mixing='convex', but got {lam}"
        )
    if old_logits is None:
        if regression_fn is not None:
            raise InputError(
                "Expected argument `old_logits` to be a tensor when there is a regression term,"
                " but got None"
            )
        new, _ = check_pair(new_logits, new_logits, reduction=reduction)
        labels = check_target(target, new.shape[0])
        return F.cross_entropy(new, labels, reduction=reduction, label_smoothing=label_smoothing)
    new, old, labels = check_inputs(new_logits, old_logits, target, reduction=reduction)
    ce = F.cross_entropy(new, labels, reduction=reduction, label_smoothing=label_smoothing)
    if regression_fn is None:
        return ce
    term: torch.Tensor = regression_fn(new, old, labels)
    if mixing == "convex":
        return (1.0 - lam) * ce + lam * term
    return ce + lam * term


class _FusedFocalObjective(torch.autograd.Function):
    """``a CE + b FD`` and its gradient in one pass: one autograd node, not a graph of many.

    The forward computes the per-sample cross-entropy and focal-distillation terms under
    ``no_grad`` together with their closed-form gradient with respect to the new logits,
    and the backward scales that gradient: on a small model the dispatch of the unfused
    graph costs as much as the model's own step. A backward that builds a graph itself
    (``create_graph=True``, e.g. a gradient penalty) differentiates the unfused graph
    instead, so higher derivatives stay exact.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        new: torch.Tensor,
        old: torch.Tensor,
        labels: torch.Tensor,
        ce_weight: float,
        fd_weight: float,
        label_smoothing: float,
        mean: bool,
        hp: dict[str, object],
        spec: tuple[float, str, str],
    ) -> torch.Tensor:
        n, n_classes = new.shape
        # the reduction's 1/N (and the class mean of the scaled distance) are folded into
        # the scalar factors below: fewer kernels
        ce_scale = 1.0 / n if mean else 1.0
        fd_scale = ce_scale
        # softmax and log-softmax from one exp (cheaper than the log_softmax kernel on
        # a few classes)
        log_p = new - new.amax(dim=1, keepdim=True)
        grad = log_p.exp()
        total_exp = grad.sum(dim=1, keepdim=True)
        grad /= total_exp
        log_p -= total_exp.log_()
        picked = labels.unsqueeze(1)
        ce = log_p.gather(1, picked).sum()  # minus the summed cross-entropy
        if label_smoothing > 0:
            ce = ce.mul_(1.0 - label_smoothing).add_(log_p.sum(), alpha=label_smoothing / n_classes)
            grad -= label_smoothing / n_classes
        grad.scatter_add_(
            1, picked, torch.full((n, 1), label_smoothing - 1.0, dtype=new.dtype, device=new.device)
        )
        alpha, beta = float(hp["alpha"]), float(hp["beta"])  # type: ignore[arg-type]
        filter_, distance = hp["filter"], hp["distance"]
        weight: torch.Tensor | float  # per sample, or one number for every sample
        column: torch.Tensor | float  # the weight against the (N, C) terms
        if filter_ == "all":
            weight = column = alpha + beta
        else:
            mask = _old_right(old, labels)
            if filter_ == "negative_flip":
                mask &= new.argmax(dim=1) != labels
            weight = mask.to(new.dtype).mul_(beta).add_(alpha)
            column = weight.unsqueeze(1)
        if distance == "kl":
            t = float(hp["temperature"])  # type: ignore[arg-type]
            log_q_new = F.log_softmax(new / t, dim=1)
            log_q_old = F.log_softmax(old / t, dim=1)
            q_old = log_q_old.exp()
            dist = (q_old * (log_q_old - log_q_new)).sum(dim=1)
            step = log_q_new.exp_().sub_(q_old).mul_(column)
            if isinstance(weight, torch.Tensor):
                fd = torch.dot(weight, dist)
            else:
                fd = dist.sum().mul_(weight)
            grad.mul_(ce_weight * ce_scale).add_(step, alpha=fd_weight * t * fd_scale)
            total = ce.mul_(-ce_weight * ce_scale).add_(fd, alpha=fd_weight * t * t * fd_scale)
        else:
            diff = new - old
            coef = column
            if distance == "scaled_logit_matching":  # in units of the teacher's spread
                coef = column / _teacher_spread(old)
                fd_scale /= n_classes  # the mean over the classes
            weighted = diff * coef
            fd = torch.dot(weighted.view(-1), diff.view(-1))  # sum of coef * diff^2
            grad.mul_(ce_weight * ce_scale).add_(weighted, alpha=fd_weight * fd_scale)
            total = ce.mul_(-ce_weight * ce_scale).add_(fd, alpha=0.5 * fd_weight * fd_scale)
        ctx.save_for_backward(grad, new, old, labels)
        ctx.graph = (hp, label_smoothing, *spec)  # type: ignore[attr-defined]
        return total

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_output: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        grad, new, old, labels = ctx.saved_tensors  # type: ignore[attr-defined]
        nones = (None,) * 8
        if not torch.is_grad_enabled():
            return (grad * grad_output, *nones)
        hp, label_smoothing, lam, reduction, mixing = ctx.graph  # type: ignore[attr-defined]
        value = _positive_congruent(
            new,
            old,
            labels,
            lambda n, o, t: _focal_distillation(n, o, t, **hp),
            lam,
            label_smoothing,
            reduction,
            mixing,
        )
        (again,) = torch.autograd.grad(value, new, grad_output, create_graph=True)
        return (again, *nones)


def _fused_focal_objective(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor,
    hp: dict[str, object],
    lam: float,
    label_smoothing: float,
    reduction: Reduction,
    mixing: str,
) -> torch.Tensor:
    """:func:`_positive_congruent` with a focal-distillation term, fused.

    The same value and gradient; ``reduction`` is ``"mean"`` or ``"sum"``.
    """
    new, old, labels = check_inputs(new_logits, old_logits, target, reduction=reduction)
    ce_weight = 1.0 - lam if mixing == "convex" else 1.0
    out: torch.Tensor = _FusedFocalObjective.apply(  # type: ignore[no-untyped-call]
        new,
        old,
        labels,
        ce_weight,
        lam,
        label_smoothing,
        reduction == "mean",
        hp,
        (lam, reduction, mixing),
    )
    return out


def _bct_influence(
    new_embeddings: torch.Tensor,
    target: torch.Tensor,
    old_weight: torch.Tensor,
    old_bias: torch.Tensor | None,
    head: str,
    scale: float,
    reduction: Reduction,
) -> torch.Tensor:
    new = check_embeddings("new_embeddings", new_embeddings, reduction=reduction)
    labels = check_target(target, new.shape[0])
    weight, bias = check_classifier(old_weight, old_bias)
    if weight.shape[1] != new.shape[1]:
        raise InputError(
            f"Expected argument `old_weight` to have D = {new.shape[1]} columns like"
            f" `new_embeddings`, but got shape {tuple(old_weight.shape)}"
        )
    weight = weight.to(dtype=new.dtype)
    bias = None if bias is None or head != "linear" else bias.to(dtype=new.dtype)
    logits = classifier_logits(new, weight, bias, head=head, scale=scale)
    return F.cross_entropy(logits, labels, reduction=reduction)


def _embedding_regression(
    new_embeddings: torch.Tensor,
    old_embeddings: torch.Tensor,
    normalize: bool,
    reduction: Reduction,
) -> torch.Tensor:
    new = check_embeddings("new_embeddings", new_embeddings, reduction=reduction)
    if not isinstance(old_embeddings, torch.Tensor) or tuple(old_embeddings.shape) != tuple(
        new.shape
    ):
        raise fail("old_embeddings", f"a tensor of shape {tuple(new.shape)}", old_embeddings)
    old = old_embeddings.detach().to(dtype=new.dtype)
    if normalize:
        new, old = F.normalize(new, dim=1), F.normalize(old, dim=1)
    return reduce((new - old).pow(2).sum(dim=1), reduction)


# -------------------------------------------------------------------- public functions


def distillation_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Knowledge distillation from the old model: match its softened class distribution.

    Formula, per sample :math:`i` with :math:`p = \mathrm{softmax}(z / T)`:

    .. math:: \ell_i = T^2 \, \mathrm{KL}\big(p^{old}_i \,\|\, p^{new}_i\big)
              = T^2 \sum_c p^{old}_{ic} (\log p^{old}_{ic} - \log p^{new}_{ic})

    computed with ``log_softmax`` for stability. The ``T^2`` keeps gradient magnitudes
    comparable across temperatures (Hinton et al., 2015).

    Args:
        new_logits: ``(N, C)`` logits of the model being trained.
        old_logits: ``(N, C)`` logits of the old (teacher) model; detached.
        target: ignored (validated if given); accepted so that every loss shares one
            signature.
        temperature: softening temperature ``T > 0``.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Returns:
        The reduced loss (a scalar) or per-sample losses ``(N,)``.

    Example:
        >>> new = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> old = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> distillation_loss(new, old, reduction="none")
        tensor([0.0826, 0.0000])
        >>> distillation_loss(old, old)
        tensor(0.)
    """
    hp = check_hyperparameters(temperature=temperature, reduction=reduction)
    return _distillation(new_logits, old_logits, target, **hp)


def focal_distillation_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 5.0,
    distance: str = "kl",
    temperature: float = 1.0,
    filter: str = "old_correct",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Focal distillation (Yan et al., CVPR 2021): distil harder where the old model was right.

    Formula, per sample :math:`i`:

    .. math:: \ell_i = (\alpha + \beta f_i) \, d_i

    with the filter :math:`f_i` one of

    * ``"old_correct"``: :math:`f_i = 1[\hat y^{old}_i = y_i]` (the paper's choice);
    * ``"negative_flip"``: :math:`f_i = 1[\hat y^{old}_i = y_i \wedge \hat y^{new}_i \ne y_i]`,
      the current negative flips (the new top-1 is read without gradient);
    * ``"all"``: :math:`f_i = 1`;

    and the distance :math:`d_i` one of

    * ``"kl"``: :math:`T^2\,\mathrm{KL}(\mathrm{softmax}(z^{old}_i/T) \,\|\,
      \mathrm{softmax}(z^{new}_i/T))`, as in :func:`distillation_loss`;
    * ``"logit_matching"``: :math:`\tfrac12 \lVert z^{new}_i - z^{old}_i \rVert_2^2`, half
      the squared difference *summed* over the classes, as in the paper (FD-LM). Tempering
      cancels out here (:math:`T^2 \lVert (z^{new}_i - z^{old}_i)/T \rVert^2` is the same
      for every :math:`T`), so ``temperature`` does not change this distance;
    * ``"scaled_logit_matching"``: :math:`\tfrac{1}{2 C s^2} \lVert z^{new}_i - z^{old}_i
      \rVert_2^2` with :math:`s^2` the batch mean of the variance of each sample's old
      logits over the classes (detached): the logit difference in units of the teacher's
      own spread, so the term keeps the size of a cross-entropy whatever the scale of the
      teacher's logits (a memorised teacher's are large) and ``lam = 1`` does not swamp
      the cross-entropy. Its per-sample values depend on the batch through :math:`s^2`.

    With ``alpha=1, beta=0, distance="kl"`` this is :func:`distillation_loss`.

    Args:
        new_logits: ``(N, C)`` logits of the model being trained.
        old_logits: ``(N, C)`` logits of the old (teacher) model; detached.
        target: ``(N,)`` integer class indices.
        alpha: weight of every sample, ``>= 0``.
        beta: extra weight of filtered samples, ``>= 0``.
        distance: ``"kl"``, ``"logit_matching"`` or ``"scaled_logit_matching"``.
        temperature: ``T > 0``; cancels out for the logit-matching distances. The paper
            needs a large one for ``"kl"`` (``T = 100`` on ImageNet).
        filter: ``"old_correct"``, ``"negative_flip"`` or ``"all"``.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Returns:
        The reduced loss (a scalar) or per-sample losses ``(N,)``.

    Example:
        >>> new = torch.tensor([[0.0, 2.0], [0.0, 1.0]])
        >>> old = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
        >>> target = torch.tensor([0, 1])  # old right on sample 0 only
        >>> focal_distillation_loss(new, old, target, distance="logit_matching",
        ...                         reduction="none")
        tensor([24.0000,  2.5000])
    """
    hp = check_hyperparameters(
        alpha=alpha,
        beta=beta,
        distance=distance,
        temperature=temperature,
        filter=filter,
        reduction=reduction,
    )
    return _focal_distillation(new_logits, old_logits, target, **hp)


def logit_difference_inhibition_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    margin: float = 0.0,
    p: float = 2.0,
    top_k: int | None = None,
    exclude_target: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Logit difference inhibition (LDI, Zhao et al., ELODI 2022).

    Penalises logit changes larger than a margin, without forcing the logits to coincide.
    Formula, per sample :math:`i`, *averaged* over its set of classes :math:`S_i`:

    .. math:: \ell_i = \frac{1}{|S_i|} \sum_{c \in S_i}
              \max\big(|z^{new}_{ic} - z^{ref}_{ic}| - m,\, 0\big)^p

    :math:`S_i` holds every class, less the sample's ground-truth class with
    ``exclude_target=True``, and only the ``top_k`` of those with the highest reference
    logits when ``top_k`` is set (chosen per sample over its *classes*, ties to the lower
    class index). ELODI's recipe: ``margin=0, p=2, exclude_target=True`` against the mean
    logits of a homogeneous ensemble (the new architecture, several seeds),
    ``torch.stack(list_of_logits).mean(0)``, optionally ``top_k=10``.

    Args:
        new_logits: ``(N, C)`` logits of the model being trained.
        old_logits: ``(N, C)`` reference (teacher) logits; detached.
        target: ``(N,)`` integer classes; needed with ``exclude_target=True``, otherwise
            validated if given and unused (every loss shares one signature).
        margin: differences up to ``m >= 0`` cost nothing.
        p: exponent ``>= 1``.
        top_k: keep only the ``k >= 1`` classes with the highest reference logits; ``None``
            keeps them all.
        exclude_target: leave the ground-truth class out of the sum.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Returns:
        The reduced loss (a scalar) or per-sample losses ``(N,)``.

    Example:
        >>> new = torch.tensor([[3.0, 0.0], [0.5, 0.0]])
        >>> old = torch.zeros(2, 2)
        >>> logit_difference_inhibition_loss(new, old, margin=1.0, reduction="none")
        tensor([2., 0.])
        >>> ref = torch.tensor([[0.0, 1.0, 2.0]])
        >>> logit_difference_inhibition_loss(  # class 0 is the target, class 2 the top-1 left
        ...     torch.tensor([[5.0, 3.0, 2.5]]), ref, torch.tensor([0]), top_k=1,
        ...     exclude_target=True)
        tensor(0.2500)
    """
    hp = check_hyperparameters(
        margin=margin, p=p, top_k=top_k, exclude_target=exclude_target, reduction=reduction
    )
    return _logit_difference_inhibition(new_logits, old_logits, target, **hp)


def new_error_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""New-error dissonance (Srivastava, Nushi et al., KDD 2020): CE where the old model was right.

    Formula, per sample :math:`i`:

    .. math:: \ell_i = 1[\hat y^{old}_i = y_i] \; \mathrm{CE}(z^{new}_i, y_i)

    exactly zero where the old model is wrong. ``"mean"`` divides by all N samples.

    Args:
        new_logits: ``(N, C)`` logits of the model being trained.
        old_logits: ``(N, C)`` logits of the old model; only its top-1 class is used.
        target: ``(N,)`` integer class indices.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Returns:
        The reduced loss (a scalar) or per-sample losses ``(N,)``.

    Example:
        >>> new = torch.zeros(2, 2)
        >>> old = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> new_error_loss(new, old, torch.tensor([0, 1]), reduction="none")
        tensor([0.6931, 0.0000])
    """
    hp = check_hyperparameters(reduction=reduction)
    return _new_error(new_logits, old_logits, target, **hp)


def strict_imitation_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Strict-imitation dissonance (Srivastava, Nushi et al., KDD 2020).

    Where the old model was right, the new model imitates the old model's whole output
    distribution (soft labels), not just its label. Formula, per sample :math:`i` with
    :math:`p^{old}_i = \mathrm{softmax}(z^{old}_i)`:

    .. math:: \ell_i = 1[\hat y^{old}_i = y_i] \; \mathrm{CE}(z^{new}_i, p^{old}_i)
              = -1[\hat y^{old}_i = y_i] \sum_c p^{old}_{ic} \log \mathrm{softmax}(z^{new}_i)_c

    This equals :math:`\mathrm{KL}(p^{old}_i \| p^{new}_i) + H(p^{old}_i)`, so its gradient
    is that of the KL term. (Imitating the old *label* instead would be identical to
    :func:`new_error_loss`, since the old label is the target wherever the indicator is 1.)
    Exactly zero where the old model is wrong; ``"mean"`` divides by all N samples.

    Args:
        new_logits: ``(N, C)`` logits of the model being trained.
        old_logits: ``(N, C)`` logits of the old model; detached.
        target: ``(N,)`` integer class indices.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Returns:
        The reduced loss (a scalar) or per-sample losses ``(N,)``.

    Example:
        >>> new = torch.zeros(2, 2)
        >>> old = torch.tensor([[9.0, 0.0], [9.0, 0.0]])
        >>> strict_imitation_loss(new, old, torch.tensor([0, 1]), reduction="none")
        tensor([0.6931, 0.0000])
    """
    hp = check_hyperparameters(reduction=reduction)
    return _strict_imitation(new_logits, old_logits, target, **hp)


def positive_congruent_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor | None,
    target: torch.Tensor,
    regression_fn: RegressionFn | None = None,
    *,
    lam: float = 1.0,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    mixing: str = "add",
) -> torch.Tensor:
    r"""Positive-congruent training objective: cross-entropy plus a regression term.

    Formula, with ``mixing="add"`` (the paper's):

    .. math:: L = \mathrm{CE}(z^{new}, y) + \lambda \, R(z^{new}, z^{old}, y)

    and with ``mixing="convex"`` (the public reference code's, there with
    :math:`\lambda = 0.9`): :math:`L = (1 - \lambda)\,\mathrm{CE} + \lambda R`,
    :math:`\lambda \in [0, 1]`.

    where :math:`R` is ``regression_fn`` (for example :func:`focal_distillation_loss`
    or a :class:`~graceful.losses.RegressionLoss`), called with the *detached* old logits.
    Its output must be reduced the same way as this call's ``reduction`` (a scalar for
    ``"mean"``/``"sum"``, ``(N,)`` for ``"none"``); a loss object whose ``reduction``
    attribute differs is rejected. Without ``regression_fn`` this is plain
    :func:`torch.nn.functional.cross_entropy` and ``old_logits`` may be ``None``.

    Args:
        new_logits: ``(N, C)`` logits of the model being trained.
        old_logits: ``(N, C)`` logits of the old model, or ``None`` without a regression term.
        target: ``(N,)`` integer class indices.
        regression_fn: ``(new_logits, old_logits, target) -> loss``, or ``None``.
        lam: weight :math:`\lambda \ge 0` of the regression term (at most 1 when convex).
        label_smoothing: label smoothing of the cross-entropy, in ``[0, 1]``.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        mixing: ``"add"`` or ``"convex"``.

    Returns:
        The reduced loss (a scalar) or per-sample losses ``(N,)``.

    Example:
        >>> new = torch.zeros(2, 2)
        >>> old = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> target = torch.tensor([0, 1])
        >>> positive_congruent_loss(new, None, target)
        tensor(0.6931)
        >>> positive_congruent_loss(new, old, target, new_error_loss, lam=2.0)
        tensor(1.3863)
        >>> positive_congruent_loss(new, old, target, new_error_loss, lam=0.5, mixing="convex")
        tensor(0.5199)
    """
    check_callable("regression_fn", regression_fn, optional=True)
    hp = check_hyperparameters(
        lam=lam, label_smoothing=label_smoothing, reduction=reduction, mixing=mixing
    )
    _check_regression_reduction(regression_fn, "regression_fn", hp["reduction"])
    return _positive_congruent(new_logits, old_logits, target, regression_fn, **hp)


def bct_influence_loss(
    new_embeddings: torch.Tensor,
    target: torch.Tensor,
    old_weight: torch.Tensor,
    old_bias: torch.Tensor | None = None,
    *,
    head: str = "linear",
    scale: float = 16.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""BCT's influence loss (Shen et al., CVPR 2020): classify new embeddings with the old head.

    Formula, per sample :math:`i` with the frozen old classifier :math:`(W^{old}, b^{old})`:

    .. math:: \ell_i = \mathrm{CE}\big(W^{old} e^{new}_i + b^{old},\, y_i\big)

    (for ``head="cosine"``: logits :math:`s \cos(e^{new}_i, w^{old}_c)`, no bias). The
    gradient reaches only the new embeddings, pulling them into the old embedding space,
    so new queries can be compared with old gallery vectors. Classes the old model never
    saw need rows in ``old_weight``: build them with
    :func:`~graceful.losses.synthesize_classifier`. Targets must index rows of
    ``old_weight`` (values are not range-checked here, to avoid a host sync).

    Args:
        new_embeddings: ``(N, D)`` embeddings of the model being trained.
        target: ``(N,)`` integer class indices.
        old_weight: ``(C, D)`` the old classifier's weights; detached.
        old_bias: ``(C,)`` its bias, or ``None``; ignored by the cosine head.
        head: ``"linear"`` or ``"cosine"``.
        scale: the cosine head's scale :math:`s > 0`.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> e = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
        >>> bct_influence_loss(e, torch.tensor([0, 1]), w, reduction="none")
        tensor([0.1269, 2.1269])
    """
    hp = check_hyperparameters(head=head, scale=scale, reduction=reduction)
    return _bct_influence(new_embeddings, target, old_weight, old_bias, **hp)


def embedding_regression_loss(
    new_embeddings: torch.Tensor,
    old_embeddings: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    normalize: bool = False,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""L2 regression of new embeddings onto the old model's embeddings of the same inputs.

    Formula, per sample: :math:`\ell_i = \lVert e^{new}_i - e^{old}_i \rVert_2^2` (with
    ``normalize=True`` both are L2-normalised first, which suits cosine retrieval). The
    BCT paper's "L2" baseline; also the direct-alignment term for a small model that must
    match a large model's space.

    Args:
        new_embeddings: ``(N, D)`` embeddings of the model being trained.
        old_embeddings: ``(N, D)`` the old model's embeddings; detached.
        target: ignored; accepted so the signature matches the other losses.
        normalize: compare unit vectors.
        reduction: ``"mean"`` over N, ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Example:
        >>> new, old = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]])
        >>> embedding_regression_loss(new, old)
        tensor(4.)
    """
    hp = check_hyperparameters(normalize=normalize, reduction=reduction)
    return _embedding_regression(new_embeddings, old_embeddings, **hp)
