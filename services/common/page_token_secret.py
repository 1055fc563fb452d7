"""Where a service's page token secret comes from: the same in every process and replica.

FULFILLMENT_PAGE_TOKEN_SECRET when it is set; otherwise the random secret the service's
migration stored in its own schema (table `page_token_secret`, one row), so the local
two-command flow needs no configuration and every replica that shares the database
shares the secret.
"""

from __future__ import annotations

from sqlalchemy import Table, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.config import ConfigError, Settings
from services.common.pagination import MIN_SECRET_BYTES, PageTokenSource


def page_token_source(settings: Settings, engine: AsyncEngine, table: Table) -> PageTokenSource:
    """A configured secret is checked now; a stored one is read from `table` when the
    first token is issued or read, so a server started while its database is down still
    starts (and answers UNAVAILABLE until the database is back)."""
    if settings.page_token_secret:
        secret = settings.page_token_secret.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"FULFILLMENT_PAGE_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes"
            )
        return PageTokenSource.fixed(secret)

    async def read_stored_secret() -> bytes:
        missing = RuntimeError(
            f"no page token secret in {table.fullname}: run `fulfillment migrate`"
        )
        try:
            async with engine.connect() as connection:
                stored = await connection.scalar(select(table.c.secret))
        except sa_exc.ProgrammingError:
            raise missing from None
        if stored is None:
            raise missing
        return bytes(stored)

    return PageTokenSource(read_stored_secret)
