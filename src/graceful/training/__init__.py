"""Training new models that regress less: teachers, a reproducible trainer, seeding.

:class:`Trainer` and :func:`graceful.lqf.finetune` run their epochs through one core,
:func:`train_epoch`; :func:`predict` is the batched, gradient-free inference every part of
graceful uses; :func:`collapse_reason` is the rule by which the Trainer flags a collapsed
run.

Example:
    >>> from graceful.training import TrainConfig, select_epoch
    >>> TrainConfig(epochs=2).select
    'last'
"""

from .collapse import collapse_reason
from .fastfill import FastFillTransformation, fit_fastfill
from .inference import predict
from .loop import Batch, Objective, OptimizerStep, Step, train_epoch
from .seed import epoch_generator, seed_everything
from .teachers import CachedTeacher, EnsembleTeacher, OnlineTeacher, Teacher
from .trainer import TrainConfig, Trainer, TrainResult, select_epoch
from .transformation import fit_transformation

__all__ = [
    "Batch",
    "CachedTeacher",
    "EnsembleTeacher",
    "FastFillTransformation",
    "Objective",
    "OnlineTeacher",
    "OptimizerStep",
    "Step",
    "Teacher",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "collapse_reason",
    "epoch_generator",
    "fit_fastfill",
    "fit_transformation",
    "predict",
    "seed_everything",
    "select_epoch",
    "train_epoch",
]
