"""`python -m tollgate.analytics.rotate_secrets [--batch N]`: every stored chat record's content (session
and thread titles, requests, answers) re-encrypted with the current ANALYTICS_SECRET_KEY, so the keys
in ANALYTICS_PREVIOUS_SECRET_KEYS can be dropped (docs/operations.md, "Rotate secrets";
records/rotation.py). Batched, idempotent and resumable: stop it or run it again at any time."""

from __future__ import annotations

import argparse
import logging

from tollgate.analytics.config import AnalyticsSettings
from tollgate.analytics.records.rotation import DEFAULT_BATCH, reencrypt_chat_content
from tollgate.analytics.records.wiring import content_box, content_box_policy
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.reencrypt import Reencryption, reencrypt_cli
from tollgate.common.secret_policy import enforce

log = logging.getLogger("tollgate.analytics")


def _progress(table: str, last_id: int, report: Reencryption) -> None:
    log.info(
        "chat records re-encrypted up to", extra={"table": table, "last_id": last_id, **report.summary()}
    )


async def run(settings: AnalyticsSettings, batch: int = DEFAULT_BATCH) -> Reencryption:
    enforce(settings.environment, content_box_policy(settings), log)  # the service's own start check
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        return await reencrypt_chat_content(
            make_sessionmaker(engine), content_box(settings), batch=batch, progress=_progress
        )
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    args = parser.parse_args()
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    settings = AnalyticsSettings()
    reencrypt_cli("analytics", settings.log_level, lambda: run(settings, args.batch))


if __name__ == "__main__":
    main()
