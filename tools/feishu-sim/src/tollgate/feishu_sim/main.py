"""`tollgate-feishu-sim [--host H] [--port P]`: serves the Feishu open-platform simulator (app.py)."""

from __future__ import annotations

import argparse

import uvicorn

from tollgate.feishu_sim.app import create_app
from tollgate.feishu_sim.config import FeishuSimSettings


def cli(argv: list[str] | None = None) -> None:
    settings = FeishuSimSettings()
    parser = argparse.ArgumentParser(prog="tollgate-feishu-sim")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(token_ttl_s=settings.token_ttl_s),
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    cli()
