"""Secrets that fail closed (docs/architecture.md, "Secrets").

`TOLLGATE_ENV` says where a process runs: `development` (the default: the local stack, the tests)
or `production` (what deploy/k8s sets). In production a service refuses to start while any of its
secrets is missing, still the development default published in this source, or shorter than 32
characters, and the error names each such variable (never its value). In development a default is
only logged, so `make run` works with nothing set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

DEVELOPMENT = "development"
PRODUCTION = "production"
ENVIRONMENTS = (DEVELOPMENT, PRODUCTION)
MIN_SECRET_LENGTH = 32


class InsecureSecrets(RuntimeError):
    """Raised at start in production; the message lists the variables and what is wrong with each."""


@dataclass(frozen=True, slots=True)
class Secret:
    variable: str  # the environment variable that sets it, e.g. "AUTH_JWT_SECRET"
    value: str | None
    development_default: str | None = None
    required: bool = True  # False: may be unset, but when set it must be strong
    min_length: int = MIN_SECRET_LENGTH

    def problem(self) -> str | None:
        if not self.value:
            return "is not set" if self.required else None
        if self.development_default is not None and self.value == self.development_default:
            return "is the development default published in the source"
        if len(self.value) < self.min_length:
            return f"is shorter than {self.min_length} characters"
        return None


def enforce(environment: str, secrets: Sequence[Secret], log: logging.Logger) -> None:
    """Raises InsecureSecrets in production for every weak secret; in development logs defaults."""
    if environment not in ENVIRONMENTS:
        raise InsecureSecrets(f"TOLLGATE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}")
    problems = [(s.variable, problem) for s in secrets if (problem := s.problem()) is not None]
    if environment == PRODUCTION and problems:
        listed = "; ".join(f"{variable} {problem}" for variable, problem in problems)
        raise InsecureSecrets(f"refusing to start with weak secrets (TOLLGATE_ENV=production): {listed}")
    for variable, problem in problems:
        if "default" in problem:
            log.warning("%s is the development default; set it outside local development", variable)
