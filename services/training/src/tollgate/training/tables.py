"""Every table of the training database, for Alembic and for processes that only need the metadata."""

from __future__ import annotations

from tollgate.training.db import Base
from tollgate.training.events.models import OutboxRecord
from tollgate.training.files.models import TrainingFile
from tollgate.training.jobs.models import Checkpoint, Job, JobEvent
from tollgate.training.registry.models import RegistryModel
from tollgate.training.vectors.models import VectorCollection, VectorPoint

__all__ = [
    "Base",
    "Checkpoint",
    "Job",
    "JobEvent",
    "OutboxRecord",
    "RegistryModel",
    "TrainingFile",
    "VectorCollection",
    "VectorPoint",
]
