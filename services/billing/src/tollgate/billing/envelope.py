"""SloughGPT's error envelope for /cost/*; every other billing route keeps OpenAI's (the default)."""

from __future__ import annotations

from tollgate.common.sloughgpt import sloughgpt_renderer

billing_error_renderer = sloughgpt_renderer("/cost/")
