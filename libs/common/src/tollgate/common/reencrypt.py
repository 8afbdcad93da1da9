"""Re-encrypting stored secrets with the current secret-box key: the bookkeeping and the command line
shared by `python -m tollgate.gateway.rotate_secrets` and `python -m tollgate.billing.rotate_secrets`
(docs/operations.md, "Rotate secrets").

Each service walks its own rows, one short transaction per row with the row locked (a concurrent
save waits, and nothing it writes is overwritten); a ciphertext already under the current key is
left alone, so the command is idempotent and may be stopped and run again at any time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from tollgate.common.logging import configure_logging
from tollgate.common.secretbox import SecretBox

log = logging.getLogger(__name__)


@dataclass
class Reencryption:
    """What one run did, counted per stored secret. `unreadable` names rows, never values."""

    reencrypted: int = 0
    already_current: int = 0
    unreadable: list[str] = field(default_factory=list)

    def rewrite(self, box: SecretBox, ciphertext: str, where: str) -> str:
        """`ciphertext` under the current key (itself when it already is); an unreadable one is
        recorded under `where` and returned unchanged, so the row's other secrets still move."""
        if not box.needs_reencryption(ciphertext):
            self.already_current += 1
            return ciphertext
        try:
            fresh = box.reencrypt(ciphertext)
        except ValueError:
            self.unreadable.append(where)
            return ciphertext
        self.reencrypted += 1
        return fresh

    def summary(self) -> dict[str, object]:
        return {
            "reencrypted": self.reencrypted,
            "already_current": self.already_current,
            "unreadable": len(self.unreadable),
        }


def reencrypt_cli(service: str, log_level: str, run: Callable[[], Coroutine[Any, Any, Reencryption]]) -> None:
    """Runs `run`, logs what it did and exits: 0 when every stored secret is now under the current
    key, 1 when some could not be decrypted with any listed key (they are named in the log)."""
    configure_logging(f"{service}-rotate-secrets", log_level)
    report = asyncio.run(run())
    for where in report.unreadable:
        log.error("stored secret unreadable with every listed key; left as it was", extra={"row": where})
    log.info("re-encryption finished", extra=report.summary())
    print(
        f"{service}: {report.reencrypted} re-encrypted, {report.already_current} already under the current "
        f"key, {len(report.unreadable)} unreadable"
    )
    sys.exit(1 if report.unreadable else 0)
