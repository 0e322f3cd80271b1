"""Training new models that regress less: teachers, a reproducible trainer, seeding.

Example:
    >>> from graceful.training import TrainConfig, select_epoch
    >>> TrainConfig(epochs=2).select
    'last'
"""

from .seed import epoch_generator, seed_everything
from .teachers import CachedTeacher, EnsembleTeacher, OnlineTeacher, Teacher
from .trainer import TrainConfig, Trainer, TrainResult, select_epoch
from .transformation import fit_transformation

__all__ = [
    "CachedTeacher",
    "EnsembleTeacher",
    "OnlineTeacher",
    "Teacher",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "epoch_generator",
    "fit_transformation",
    "seed_everything",
    "select_epoch",
]
