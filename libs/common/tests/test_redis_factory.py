"""The one Redis client factory against real servers (Debian's redis-server): TLS with a client
certificate and a password, and Sentinel, followed through a failover."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError

from tollgate.common.redis import make_redis
from tollgate.common.settings import ServiceSettings
from tollgate.devstack.certificates import CertificateFiles, ensure_certificates

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PASSWORD = "redis-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_process(*args: str) -> Iterator[None]:
    proc = subprocess.Popen(
        [REDIS_SERVER, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def until(probe: Any, what: str, limit_s: float = 20.0) -> Any:
    """Polls an eventually-true fact of the servers (a replica known, a failover done)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(RedisConnectionError, OSError):
            last = await probe()
            if last:
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return ensure_certificates(tmp_path_factory.mktemp("redis-tls"))


@pytest.fixture
def tls_redis(certs: CertificateFiles, tmp_path: Path) -> Iterator[int]:
    """A TLS-only redis-server that requires a client certificate and a password."""
    port = free_port()
    with redis_process(
        "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
        "--save", "", "--appendonly", "no", "--requirepass", PASSWORD,
        "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
        "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "yes",
    ):  # fmt: skip
        yield port


def tls_settings(certs: CertificateFiles, port: int, **values: Any) -> ServiceSettings:
    return ServiceSettings(
        redis_url=f"rediss://localhost:{port}/0",
        redis_password=SecretStr(PASSWORD),
        redis_tls_ca_file=str(certs.ca),
        redis_tls_cert_file=str(certs.client_cert),
        redis_tls_key_file=str(certs.client_key),
        **values,
    )


async def test_tls_with_a_client_certificate_and_a_password(certs: CertificateFiles, tls_redis: int) -> None:
    client = make_redis(tls_settings(certs, tls_redis), decode_responses=True)
    try:
        await until(client.ping, "the TLS server")
        await client.set("tls-key", "over tls")
        assert await client.get("tls-key") == "over tls"
    finally:
        await client.aclose()


async def test_tls_without_the_client_certificate_is_refused(certs: CertificateFiles, tls_redis: int) -> None:
    ready = make_redis(tls_settings(certs, tls_redis))
    await until(ready.ping, "the TLS server")
    await ready.aclose()
    anonymous = make_redis(
        ServiceSettings(
            redis_url=f"rediss://localhost:{tls_redis}/0",
            redis_password=SecretStr(PASSWORD),
            redis_tls_ca_file=str(certs.ca),
        )
    )
    plaintext = make_redis(ServiceSettings(redis_url=f"redis://:{PASSWORD}@localhost:{tls_redis}/0"))
    try:
        for client in (anonymous, plaintext):
            with pytest.raises((RedisConnectionError, OSError)):
                await client.ping()
    finally:
        await anonymous.aclose()
        await plaintext.aclose()


@pytest.fixture
async def sentinel_group(tmp_path: Path) -> AsyncIterator[tuple[int, int, int]]:
    """A master, its replica and one sentinel watching them (quorum 1): (master, replica, sentinel)."""
    master, replica, sentinel = free_port(), free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor tollgate 127.0.0.1 {master} 1\n"
        "sentinel down-after-milliseconds tollgate 2000\n"
        "sentinel failover-timeout tollgate 10000\n"
    )
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    with (
        redis_process("--port", str(master), "--dir", str(tmp_path / "m"), *common),
        redis_process(
            "--port",
            str(replica),
            "--dir",
            str(tmp_path / "r"),
            "--replicaof",
            "127.0.0.1",
            str(master),
            *common,
        ),
        redis_process(str(conf), "--sentinel"),
    ):
        yield master, replica, sentinel


async def test_sentinel_finds_the_master_and_follows_a_failover(sentinel_group: tuple[int, int, int]) -> None:
    master, replica, sentinel = sentinel_group
    client = make_redis(
        ServiceSettings(
            redis_url="redis://ignored-in-sentinel-mode/0",
            redis_sentinels=f"127.0.0.1:{sentinel}",
            redis_sentinel_master="tollgate",
        ),
        decode_responses=True,
    )
    sentinel_client = Redis(port=sentinel, decode_responses=True)
    direct_replica = Redis(port=replica, decode_responses=True)
    try:
        await until(lambda: client.set("before", "failover"), "the master through the sentinel")
        assert (await Redis(port=master, decode_responses=True).get("before")) == "failover"

        async def replica_ready() -> bool:
            info = await direct_replica.info("replication")
            known = await sentinel_client.execute_command("SENTINEL", "REPLICAS", "tollgate")
            return info.get("master_link_status") == "up" and bool(known)

        await until(replica_ready, "the replica in sync and known to the sentinel")

        async def failover_started() -> bool:
            # The sentinel promotes only a replica whose INFO it has seen lately (it asks every
            # 10 s): until then FAILOVER answers NOGOODSLAVE (seen on a loaded CI machine).
            try:
                await sentinel_client.execute_command("SENTINEL", "FAILOVER", "tollgate")
            except ResponseError as exc:
                if "NOGOODSLAVE" not in str(exc):
                    raise
                return False
            return True

        await until(failover_started, "a replica the sentinel may promote", limit_s=30.0)

        async def promoted() -> bool:
            _, port = await sentinel_client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "tollgate")
            return int(port) == replica and (await direct_replica.info("replication"))["role"] == "master"

        await until(promoted, "the replica promoted")

        async def write_reaches_the_new_master() -> bool:
            # Until sentinel has demoted the old master, a pooled connection to it still writes
            # there; once demoted it answers READONLY, the pool drops it and asks the sentinel.
            with contextlib.suppress(ReadOnlyError):
                await client.set("after", "failover")
            return await direct_replica.get("after") == "failover"

        await until(write_reaches_the_new_master, "a write through the client on the new master")
        assert await direct_replica.get("before") == "failover"
    finally:
        await client.aclose()
        await sentinel_client.aclose()
        await direct_replica.aclose()
