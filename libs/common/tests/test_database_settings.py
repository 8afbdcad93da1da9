"""<P>DATABASE_PASSWORD joins <P>DATABASE_URL (deploy/k8s production: the URL in the ConfigMap, the
password in the role's Secret), and pool sizes are settings under each service's prefix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url

from tollgate.common.db import make_engine
from tollgate.common.settings import ConflictingSettings, ServiceSettings


class _Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DBTEST_", extra="ignore")


def test_the_password_is_folded_into_the_url_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBTEST_DATABASE_URL", "postgresql+psycopg://svc@db-rw:5432/svc_db?sslmode=require")
    monkeypatch.setenv("DBTEST_DATABASE_PASSWORD", "p@ss/word:with?odd&chars")
    url = make_url(_Settings().database_url)
    assert url.password == "p@ss/word:with?odd&chars"
    assert (url.username, url.host, url.port, url.database) == ("svc", "db-rw", 5432, "svc_db")
    assert url.query == {"sslmode": "require"}


def test_without_a_password_setting_the_url_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBTEST_DATABASE_URL", "postgresql+psycopg://svc:inline@db:5432/svc_db")
    assert _Settings().database_url == "postgresql+psycopg://svc:inline@db:5432/svc_db"


def test_a_password_in_both_places_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBTEST_DATABASE_URL", "postgresql+psycopg://svc:inline@db:5432/svc_db")
    monkeypatch.setenv("DBTEST_DATABASE_PASSWORD", "other")
    with pytest.raises(ConflictingSettings, match="DBTEST_DATABASE_URL names a password") as caught:
        _Settings()
    assert "DBTEST_DATABASE_PASSWORD" in str(caught.value)
    assert "other" not in str(caught.value) and "inline" not in str(caught.value)


def test_pool_sizes_are_settings_that_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBTEST_DB_POOL_SIZE", "3")
    monkeypatch.setenv("DBTEST_DB_MAX_OVERFLOW", "2")
    settings = _Settings()
    engine = make_engine(
        "postgresql+psycopg://svc@127.0.0.1:1/x",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]
    monkeypatch.setenv("DBTEST_DB_POOL_SIZE", "0")
    with pytest.raises(ValidationError, match="db_pool_size"):
        _Settings()
