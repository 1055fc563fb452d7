"""Private, throw-away stores and ports for a test run or a benchmark on a shared machine.

The test suite and `fulfillment bench` take their Redis db number with the same lock key,
so a benchmark and a test run never share one.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import psycopg2
import redis
from sqlalchemy.engine import make_url

from services.common.config import Settings
from services.migrations import migrate_all

REDIS_LOCK_KEY = "fulfillment:test-run-lock"


class NoFreeRedisDb(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def claim_redis_db(base_url: str) -> tuple[str, Callable[[], None]]:
    """Lock a Redis db number (1-15) no one else holds and empty it; returns its URL and
    a release that flushes it. `base_url` may name a db; only its server is used."""
    base = base_url.rsplit("/", 1)[0] if base_url.count("/") > 2 else base_url
    token = uuid.uuid4().hex
    for db in range(1, 16):
        client = redis.Redis.from_url(f"{base}/{db}")
        if client.set(REDIS_LOCK_KEY, token, nx=True, ex=3600):
            for key in client.scan_iter():
                if key != REDIS_LOCK_KEY.encode():
                    client.delete(key)

            def release(client: redis.Redis = client) -> None:
                client.flushdb()
                client.close()

            return f"{base}/{db}", release
        client.close()
    raise NoFreeRedisDb("no free Redis db number (1-15)")


@contextlib.contextmanager
def autocommit_cursor(database_url: str) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor on a connection of its own, each statement its own transaction; the
    connection is closed whatever happens."""
    conn = psycopg2.connect(database_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def drop_database(admin_url: str, name: str) -> None:
    with autocommit_cursor(admin_url) as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def private_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<random>` on the server of `admin_url`, with every service's
    schema migrated; dropped afterwards, also when the migration fails."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate_all(replace(Settings.from_env({}), inventory_database_url=url, orders_database_url=url))
        yield url
    finally:
        drop_database(admin_url, name)
