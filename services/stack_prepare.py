"""The one-shot part of `fulfillment up`, run in a child process before the stack starts:
the preflight checks of PostgreSQL and Redis, the migrations, and the banner `up` prints
once the stack is ready (with an admin token minted for it).

A child because of what it loads: the database and Redis clients, SQLAlchemy and Alembic,
gRPC's TLS helpers and the signing libraries. In the supervisor, which stays for the
stack's whole life, they held ~55 MB that nothing used after the first seconds.

    python -m services.stack_prepare WORKERS BANNER_FILE

prints its progress and, on failure, `up: error: ...` with what to fix; exit code 1.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from services.common.auth.keys import is_local_key_set
from services.common.auth.mint import mint_token
from services.common.auth.principal import Role
from services.common.config import ConfigError, Settings, gateway_url, redact_url
from services.common.logs import configure_logging
from services.common.tracing.config import TracingConfig
from services.migrations import DatabaseUnreachable, migrate_all
from services.stack import UP_WORKER_POOL, monitor_in_worker
from services.stack_parts import StackError, check_postgres, check_redis


def prepare(settings: Settings) -> None:
    """Check the stores the stack needs, then bring both schemas to the latest revision."""
    check_postgres(settings.inventory_database_url)
    if settings.orders_database_url != settings.inventory_database_url:
        check_postgres(settings.orders_database_url)
    check_redis(settings.redis_url)
    print("up: migrating", flush=True)
    try:
        migrate_all(settings)
    except DatabaseUnreachable as exc:
        raise StackError(str(exc)) from None


def main(argv: list[str]) -> int:
    workers, banner_file = int(argv[0]), Path(argv[1])
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"up: error: configuration: {exc}", flush=True)
        return 1
    configure_logging(settings.log_level, service="up")
    try:
        prepare(settings)
    except StackError as exc:
        print(f"up: error: {exc}", flush=True)
        return 1
    banner_file.write_text(banner(settings, workers))
    return 0


def banner(settings: Settings, workers: int) -> str:
    url = gateway_url(settings)
    return "\n".join(
        [
            "up: ready",
            f"  gateway (HTTP/JSON + gRPC)  {url}",
            *_page_lines(url),
            *_access_lines(settings, url),
            f"  gateway admin               http://127.0.0.1:{settings.gateway_admin_port}",
            f"  inventory gRPC              {settings.inventory_addr}",
            f"  orders gRPC                 {settings.orders_addr}",
            f"  worker                      {UP_WORKER_POOL} pool, concurrency {workers}, "
            f"broker {redact_url(settings.redis_url)}",
            f"  monitor                     sweep every {settings.sweep_interval_s:g}s, "
            + ("in the worker's process" if monitor_in_worker(UP_WORKER_POOL) else "its own process"),
            *_metrics_lines(settings),
            _tracing_line(),
            f"  database                    {redact_url(settings.database_url)}",
            "  Ctrl-C stops everything.",
        ]
    )


def _page_lines(url: str) -> list[str]:
    """The pages the gateway serves without a token (services.gateway_static)."""
    return [
        f"  {'API docs (Swagger UI)':<28}{url}/docs",
        f"  {'operator console':<28}{url}/console/",
        f"  {'OpenAPI document':<28}{url}/openapi.json",
    ]


def _tracing_line() -> str:
    """Where every part sends its spans (README: Observe it), or how to turn tracing on."""
    config = TracingConfig.from_env()
    if not config.enabled:
        return "  traces                      off (set OTEL_EXPORTER_OTLP_ENDPOINT to send them)"
    otlp = config.otlp
    where = [
        name if otlp is None or name != "otlp"
        else f"OTLP/gRPC to {'https' if otlp.tls else 'http'}://{otlp.host}:{otlp.port}"
        for name in config.exporters
    ]
    return f"  traces                      {', '.join(where)}"


def _metrics_lines(settings: Settings) -> list[str]:
    """Where Prometheus scrapes each part (an empty *_METRICS_ADDR turns one off)."""
    parts = [
        ("inventory", settings.inventory_metrics_addr, "INVENTORY_METRICS_ADDR"),
        ("orders", settings.orders_metrics_addr, "ORDERS_METRICS_ADDR"),
        ("worker", settings.worker_metrics_addr, "WORKER_METRICS_ADDR"),
        ("monitor", settings.monitor_metrics_addr, "MONITOR_METRICS_ADDR"),
    ]
    return [
        f"  {name + ' metrics':<28}{f'http://{addr}/metrics' if addr else f'off ({variable} is empty)'}"
        for name, addr, variable in parts
    ] + [
        f"  {'gateway metrics':<28}http://127.0.0.1:{settings.gateway_admin_port}/stats/prometheus",
    ]


ADMIN_TOKEN_TTL_S = 12 * 3600


def _access_lines(settings: Settings, url: str) -> list[str]:
    """How to call the stack: a ready-to-paste admin token and curl line, or why not."""
    if not settings.auth_enabled:
        return [
            "  authentication              OFF (FULFILLMENT_AUTH=off): every call is accepted "
            "without a token, as an admin; for local experiments only",
            f"  try it                      curl {url}/v1/products",
        ]
    if not is_local_key_set(settings):
        return [
            "  authentication              tokens from the identity provider of "
            "FULFILLMENT_AUTH_JWKS (iss "
            f"{settings.auth_issuer}, aud {settings.auth_audience})",
        ]
    token = mint_token(settings, Role.ADMIN, f"admin-{getpass.getuser()}", ADMIN_TOKEN_TTL_S)
    return [
        f"  admin token (12 h)          export TOKEN={token}",
        "                              (paste it into the console's sign-in or Swagger UI's Authorize;",
        "                              `fulfillment token --role admin|customer` prints others)",
        f'  try it                      curl -H "Authorization: Bearer $TOKEN" {url}/v1/products',
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
