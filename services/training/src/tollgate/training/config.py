"""Training settings, read from TRAINING_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from tollgate.common.settings import ServiceSettings

# services/training/alembic.ini: the package is installed editable (uv workspace, also in the image).
_DEFAULT_ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


class TrainingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    service_name: str = "training"
    http_port: int = 8084
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_training"
    alembic_ini: str = str(_DEFAULT_ALEMBIC_INI)
    run_migrations: bool = True
