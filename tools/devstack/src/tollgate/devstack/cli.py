"""`tollgate-stack`: run the local platform (used by `make up/down/run` and by hand)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from tollgate.devstack.config import SERVICES, StackConfig
from tollgate.devstack.kafka_broker import resolve_jars
from tollgate.devstack.local_model import MODEL_NAME
from tollgate.devstack.procs import StackError, log_tail
from tollgate.devstack.stack import INFRA, Stack


def _banner(cfg: StackConfig, local_model: bool) -> str:
    gateway = cfg.url("gateway")
    model = MODEL_NAME if local_model else "<a model registered with /admin/model/save>"
    return "\n".join(
        [
            f"Tollgate ({cfg.profile}) is up.",
            f"  gateway:       {gateway}",
            f"  console:       {gateway}/console/  (sign in with the admin API key, or create an account)",
            f"  admin API key: {cfg.admin_api_key}",
            f"  logs:          {cfg.logs_dir}",
            "",
            "Try it (a key for a person, some credit, a completion, the balance after):",
            f"  export TOLLGATE={gateway} ADMIN={cfg.admin_api_key}",
            '  KEY=$(curl -s $TOLLGATE/admin/api-key/apply -H "Authorization: Bearer $ADMIN" \\',
            "    -H 'Content-Type: application/json' -d '{\"name\": \"jack\"}' | python3 -c \\",
            "    'import json,sys; print(json.load(sys.stdin)[\"api_key\"])')",
            '  curl -s $TOLLGATE/admin/api-key/recharge -H "Authorization: Bearer $ADMIN" \\',
            '    -H \'Content-Type: application/json\' -d "{\\"api_key\\": \\"$KEY\\", \\"balance\\": 1.5}"',
            '  curl -s $TOLLGATE/v1/chat/completions -H "Authorization: Bearer $KEY" \\',
            "    -H 'Content-Type: application/json' \\",
            f'    -d \'{{"model": "{model}", "max_tokens": 48, '
            '"messages": [{"role": "user", "content": "Hello!"}]}\'',
            '  curl -s $TOLLGATE/v1/credits -H "Authorization: Bearer $KEY"',
        ]
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tollgate-stack", description=__doc__)
    parser.add_argument("--profile", help="dev (default, or $TOLLGATE_PROFILE) or test")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack (idempotent)")
    up.add_argument("--local-model", action="store_true", help="also serve Gemma 3 270M and register it")
    up.add_argument("--infra-only", action="store_true", help="only PostgreSQL, Redis and Kafka")
    sub.add_parser("run", help="up --local-model, then print how to call it")
    sub.add_parser("down", help="stop everything of this profile (idempotent)")
    sub.add_parser("status", help="what runs, on which port")
    sub.add_parser("admin-key", help="print the admin API key")
    sub.add_parser("fetch-kafka", help="resolve Kafka's jars with Maven into .local/kafka-libs (once)")
    logs = sub.add_parser("logs", help="print the end of a component's log")
    logs.add_argument("name", choices=[*INFRA, *SERVICES, "llama", "embeddings"])
    logs.add_argument("-n", "--lines", type=int, default=100)
    logs.add_argument("-f", "--follow", action="store_true")
    return parser


def _follow(stack: Stack, name: str) -> None:
    path = stack.log_path(name)
    with path.open("rb") as f:
        f.seek(0, 2)
        while True:
            chunk = f.read()
            if chunk:
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
            else:
                time.sleep(0.3)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = StackConfig.from_env(profile=args.profile)
    stack = Stack(cfg)
    try:
        if args.command in ("up", "run"):
            local_model = args.command == "run" or args.local_model
            started = time.monotonic()
            if getattr(args, "infra_only", False):
                stack.up(infra_only=True)
                print(f"Tollgate ({cfg.profile}) infrastructure ready in {time.monotonic() - started:.1f}s")
                return 0
            stack.up(local_model=local_model)
            print(_banner(cfg, local_model))
            print(f"(ready in {time.monotonic() - started:.1f}s)")
        elif args.command == "down":
            stack.down()
            print(f"Tollgate ({cfg.profile}) stopped.")
        elif args.command == "status":
            for st in stack.status():
                state = f"running (pid {st.pid})" if st.running else "stopped"
                print(f"{st.name:<13} {state:<22} port {st.port:<6} {st.log_path}")
        elif args.command == "admin-key":
            print(cfg.admin_api_key)
        elif args.command == "fetch-kafka":
            print(f"Kafka jars in {resolve_jars(cfg)}")
        elif args.command == "logs":
            print(log_tail(stack.log_path(args.name), args.lines))
            if args.follow:
                _follow(stack, args.name)
    except StackError as exc:
        print(f"tollgate-stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
