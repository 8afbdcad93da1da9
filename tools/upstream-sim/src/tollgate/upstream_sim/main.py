"""`tollgate-upstream-sim [--host H] [--port P]`: serves the simulator with uvloop and httptools.

Model-name behaviours: "nousage" never reports usage in streams, "error" answers 500, "badrequest"
400, "ratelimited" 429, "flaky<N>" 500 and "ratelimited<N>" 429 to the first N calls of that name
(then it answers; for retries and fallbacks),
"timeout" sleeps 30 s, "slow" waits 300 ms, a name ending in "-long" allows up to max_tokens
(default 64) completion tokens, "drip" streams one chunk per 50 ms, "cachedetail" reports token
classes as OpenAI does (prompt_tokens_details.cached_tokens = half the prompt,
completion_tokens_details.reasoning_tokens = half the completion), "cachewrite" reports top-level
cache_read_input_tokens (a quarter of the prompt) and cache_creation_input_tokens (half of it).
Operations: /v1/chat/completions, /v1/completions (both stream), /v1/embeddings, /v1/images/generations,
and Anthropic's /v1/messages (streams too; its cues and headers: anthropic.py).
/_sim/stats counts calls per operation and per upstream model name ("by_model"), completed streams,
and aborted ones with the chunks they had sent ("streams_aborted"); /_sim/reset zeroes it.
Headers: x-sim-delay-ms (delay before answering), x-sim-chunk-delay-ms (delay between stream chunks).
"""

from __future__ import annotations

import argparse

import uvicorn

from tollgate.upstream_sim.app import create_app
from tollgate.upstream_sim.config import SimSettings


def cli(argv: list[str] | None = None) -> None:
    settings = SimSettings()
    parser = argparse.ArgumentParser(prog="tollgate-upstream-sim")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
        backlog=4096,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    cli()
