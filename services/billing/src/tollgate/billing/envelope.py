"""Seed 001's error envelope for /cost/*; every other billing route keeps OpenAI's (the default)."""

from __future__ import annotations

from tollgate.common.sloughgpt import seed001_renderer

billing_error_renderer = seed001_renderer("/cost/")
