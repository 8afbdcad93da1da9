"""Small helpers shared by billing's tests (a module name no other service's tests use)."""

from __future__ import annotations

import uuid


def new_org() -> str:
    return f"org_{uuid.uuid4().hex[:12]}"
