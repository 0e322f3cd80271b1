"""Tiny loop-and-numpy references for the losses, written from the formulas, in float64."""

from __future__ import annotations

import math

import numpy as np
import torch


def to_np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = max(z)
    lse = m + math.log(sum(math.exp(v - m) for v in z))
    return np.array([v - lse for v in z])


def _argmax(z: np.ndarray) -> int:
    best = 0
    for c in range(1, len(z)):
        if z[c] > z[best]:
            best = c
    return best


def _kd(zn: np.ndarray, zo: np.ndarray, t: float) -> float:
    ln, lo = _log_softmax(zn / t), _log_softmax(zo / t)
    return t * t * sum(math.exp(lo[c]) * (lo[c] - ln[c]) for c in range(len(zn)))


def _ce(zn: np.ndarray, y: int) -> float:
    return -_log_softmax(zn)[y]


def ref_distillation(new, old, temperature=1.0):
    n, o = to_np(new), to_np(old)
    return np.array([_kd(n[i], o[i], temperature) for i in range(len(n))])


def ref_focal_distillation(
    new, old, target, alpha=1.0, beta=5.0, distance="kl", temperature=1.0, filter="old_correct"
):
    n, o, y = to_np(new), to_np(old), target.tolist()
    classes = len(n[0])
    # scaled: the batch mean of each sample's (population) variance of the old logits
    variances = [
        sum((o[i][c] - sum(o[i]) / classes) ** 2 for c in range(classes)) / classes
        for i in range(len(o))
    ]
    spread = sum(variances) / len(variances)
    spread = spread if spread > 0 else 1.0
    out = []
    for i in range(len(n)):
        old_right = _argmax(o[i]) == y[i]
        new_wrong = _argmax(n[i]) != y[i]
        f = {"old_correct": old_right, "negative_flip": old_right and new_wrong, "all": True}[
            filter
        ]
        if distance == "kl":
            d = _kd(n[i], o[i], temperature)
        elif distance == "logit_matching":  # the paper's: summed over the classes
            d = 0.5 * sum((n[i][c] - o[i][c]) ** 2 for c in range(classes))
        else:  # scaled_logit_matching
            d = 0.5 * sum((n[i][c] - o[i][c]) ** 2 for c in range(classes)) / classes / spread
        out.append((alpha + beta * float(f)) * d)
    return np.array(out)


def ref_ldi(new, old, margin=0.0, p=2.0, target=None, top_k=None, exclude_target=False):
    n, o = to_np(new), to_np(old)
    num_classes = n.shape[1]
    out = []
    for i in range(len(n)):
        classes = [c for c in range(num_classes) if not (exclude_target and c == target[i])]
        if top_k is not None and top_k < len(classes):
            # highest reference logit first, the lower class index first among ties
            classes = sorted(classes, key=lambda c: (-o[i][c], c))[:top_k]
        terms = [max(abs(n[i][c] - o[i][c]) - margin, 0.0) ** p for c in classes]
        out.append(sum(terms) / len(terms))
    return np.array(out)


def ref_new_error(new, old, target):
    n, o, y = to_np(new), to_np(old), target.tolist()
    return np.array([_ce(n[i], y[i]) if _argmax(o[i]) == y[i] else 0.0 for i in range(len(n))])


def ref_strict_imitation(new, old, target):
    n, o, y = to_np(new), to_np(old), target.tolist()
    out = []
    for i in range(len(n)):
        if _argmax(o[i]) != y[i]:
            out.append(0.0)
            continue
        ln, lo = _log_softmax(n[i]), _log_softmax(o[i])
        out.append(-sum(math.exp(lo[c]) * ln[c] for c in range(len(ln))))
    return np.array(out)


def ref_cross_entropy(new, target, label_smoothing=0.0):
    n, y = to_np(new), target.tolist()
    num_classes = n.shape[1]
    out = []
    for i in range(len(n)):
        ls = _log_softmax(n[i])
        smooth = -sum(ls) / num_classes
        out.append((1 - label_smoothing) * -ls[y[i]] + label_smoothing * smooth)
    return np.array(out)


def reduce_np(values: np.ndarray, reduction: str):
    if reduction == "mean":
        return np.array(values.mean())
    if reduction == "sum":
        return np.array(values.sum())
    return values


def make_case(seed: int = 0, n: int = 16, c: int = 5, dtype=torch.float64):
    """Logits with every cell of the old/new correctness table present.

    Rows 0-3: both right; 4-7: negative flips; 8-11: positive flips; 12-15: both wrong.
    """
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, c, (n,), generator=g)
    old = torch.randn(n, c, generator=g, dtype=dtype)
    new = torch.randn(n, c, generator=g, dtype=dtype)
    old_right = torch.tensor([i % 16 < 8 for i in range(n)])
    new_right = torch.tensor([i % 16 < 4 or 8 <= i % 16 < 12 for i in range(n)])
    rows = torch.arange(n)
    wrong = (target + 1) % c
    old[rows, torch.where(old_right, target, wrong)] += 4.0
    new[rows, torch.where(new_right, target, wrong)] += 4.0
    return new, old, target
