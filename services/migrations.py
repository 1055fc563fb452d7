"""`fulfillment migrate`: create each service's database if needed, then migrate its schema."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg2

from services.common.config import Settings, redact_url
from services.common.database.provisioning import ensure_database, run_migrations
from services.common.logs import log_event

logger = logging.getLogger("fulfillment.migrate")

_SERVICES_DIR = Path(__file__).resolve().parent

# (schema, migrations folder, settings attribute holding the service's database URL)
SERVICE_SCHEMAS = [
    ("inventory", _SERVICES_DIR / "inventory" / "migrations", "inventory_database_url"),
    ("orders", _SERVICES_DIR / "orders" / "migrations", "orders_database_url"),
]


class DatabaseUnreachable(RuntimeError):
    pass


def migrate_all(settings: Settings) -> None:
    for schema, folder, url_attr in SERVICE_SCHEMAS:
        if not folder.exists():
            continue
        url = getattr(settings, url_attr)
        try:
            created = ensure_database(url)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnreachable(
                f"cannot reach PostgreSQL at {redact_url(url)}: {str(exc).strip()}"
            ) from None
        if created:
            log_event(logger, "database_created", url=redact_url(url))
        revision = run_migrations(url, folder, schema)
        log_event(logger, "schema_migrated", schema=schema, revision=revision, url=redact_url(url))
