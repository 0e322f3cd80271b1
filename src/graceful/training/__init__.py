"""Training new models that regress less: teachers, a reproducible trainer, seeding.

:class:`Trainer` and :func:`graceful.lqf.finetune` run their epochs through one core,
:func:`train_epoch`; :func:`predict` is the batched, gradient-free inference every part of
graceful uses.

Example:
    >>> from graceful.training import TrainConfig, select_epoch
    >>> TrainConfig(epochs=2).select
    'last'
"""

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
    "Objective",
    "OnlineTeacher",
    "OptimizerStep",
    "Step",
    "Teacher",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "epoch_generator",
    "fit_transformation",
    "predict",
    "seed_everything",
    "select_epoch",
    "train_epoch",
]
