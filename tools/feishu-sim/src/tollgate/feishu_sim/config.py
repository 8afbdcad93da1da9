"""Simulator settings (env prefix FEISHU_SIM_); --host/--port on the command line override them."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class FeishuSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEISHU_SIM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 18095
    token_ttl_s: int = 7200
