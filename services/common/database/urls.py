"""Database URLs: one libpq URL in the configuration, the driver each consumer needs."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def driver_url(url: str, driver: str) -> str:
    """postgresql://... -> postgresql+<driver>://..., whatever driver the URL named."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"only PostgreSQL URLs are supported, got {parsed.drivername!r}")
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """postgresql+<driver>://... -> postgresql://..., as libpq, psycopg2 and asyncpg take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def admin_url(url: str) -> str:
    """The libpq URL of the `postgres` database on the server `url` names: where databases
    are created and dropped."""
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


