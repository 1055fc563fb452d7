"""Configuration, read once from the environment into a frozen object and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T", int, float)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/fulfillment"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ConfigError(ValueError):
    """A configuration variable has a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    inventory_database_url: str = DEFAULT_DATABASE_URL
    orders_database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    inventory_addr: str = "127.0.0.1:50051"
    orders_addr: str = "127.0.0.1:50052"
    gateway_port: int = 8080
    gateway_admin_port: int = 9901
    gateway_host: str = "127.0.0.1"
    step_delay_min_s: float = 1.0
    step_delay_max_s: float = 3.0
    stale_after_s: float = 60.0
    sweep_interval_s: float = 10.0
    stale_retries: int = 2
    worker_stall_after_s: float = 60.0
    bulk_max_items: int = 10_000
    price_cache_size: int = 100_000
    db_connections: int = 24
    grpc_deadline_s: float = 5.0
    shutdown_grace_s: float = 10.0
    server_processes: int = 1
    log_level: str = "INFO"
    # Where each part serves Prometheus /metrics; empty: that part serves none.
    inventory_metrics_addr: str = "127.0.0.1:9101"
    orders_metrics_addr: str = "127.0.0.1:9102"
    worker_metrics_addr: str = "127.0.0.1:9103"
    monitor_metrics_addr: str = "127.0.0.1:9104"
    # Transport security (services/common/tls.py): empty means plaintext; cert and key
    # together turn TLS on, the CA too makes it mutual.
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # Signs page tokens; empty means the secret stored in each service's schema. Kept out
    # of repr so printed settings never show it.
    page_token_secret: str = field(default="", repr=False)
    # Identity and access. Off is for local experiments only, and every part says so.
    auth_enabled: bool = True
    # Path or http(s) URL of the JWKS that verifies tokens; empty: the local key set (the
    # public half of auth_signing_key).
    auth_jwks: str = ""
    auth_issuer: str = "fulfillment-dev"
    auth_audience: str = "fulfillment"
    # Claim holding the roles; a dotted path (realm_access.roles) reaches nested claims.
    auth_roles_claim: str = "roles"
    # The private key `fulfillment token` and the services' own tokens are signed with
    # (empty: default_signing_key_path()), and a token to present instead of minting one.
    # Both stay out of repr, like the page token secret.
    auth_signing_key: str = field(default="", repr=False)
    service_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        settings = cls(
            database_url=database_url,
            inventory_database_url=env.get("INVENTORY_DATABASE_URL") or database_url,
            orders_database_url=env.get("ORDERS_DATABASE_URL") or database_url,
            redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            inventory_addr=env.get("INVENTORY_ADDR") or cls.inventory_addr,
            orders_addr=env.get("ORDERS_ADDR") or cls.orders_addr,
            gateway_port=_number(env, "GATEWAY_PORT", int, cls.gateway_port, minimum=1),
            gateway_admin_port=_number(
                env, "GATEWAY_ADMIN_PORT", int, cls.gateway_admin_port, minimum=1
            ),
            gateway_host=(env.get("GATEWAY_HOST") or cls.gateway_host).strip(),
            step_delay_min_s=_number(env, "FULFILLMENT_STEP_DELAY_MIN_S", float, 1.0),
            step_delay_max_s=_number(env, "FULFILLMENT_STEP_DELAY_MAX_S", float, 3.0),
            stale_after_s=_number(env, "FULFILLMENT_STALE_AFTER_S", float, 60.0),
            sweep_interval_s=_number(
                env, "FULFILLMENT_SWEEP_INTERVAL_S", float, 10.0, minimum=0.05
            ),
            stale_retries=_number(env, "FULFILLMENT_STALE_RETRIES", int, 2),
            worker_stall_after_s=_number(
                env, "FULFILLMENT_WORKER_STALL_AFTER_S", float, 60.0, minimum=1
            ),
            bulk_max_items=_number(env, "FULFILLMENT_BULK_MAX_ITEMS", int, 10_000, minimum=1),
            price_cache_size=_number(env, "FULFILLMENT_PRICE_CACHE_SIZE", int, 100_000),
            db_connections=_number(env, "FULFILLMENT_DB_CONNECTIONS", int, 24, minimum=2),
            grpc_deadline_s=_number(env, "FULFILLMENT_GRPC_DEADLINE_S", float, 5.0, minimum=0.1),
            shutdown_grace_s=_number(env, "FULFILLMENT_SHUTDOWN_GRACE_S", float, 10.0),
            server_processes=_number(env, "FULFILLMENT_SERVER_PROCESSES", int, 1, minimum=1),
            log_level=(env.get("FULFILLMENT_LOG_LEVEL") or "INFO").upper(),
            inventory_metrics_addr=_metrics_addr(env, "INVENTORY_METRICS_ADDR", cls.inventory_metrics_addr),
            orders_metrics_addr=_metrics_addr(env, "ORDERS_METRICS_ADDR", cls.orders_metrics_addr),
            worker_metrics_addr=_metrics_addr(env, "WORKER_METRICS_ADDR", cls.worker_metrics_addr),
            monitor_metrics_addr=_metrics_addr(env, "MONITOR_METRICS_ADDR", cls.monitor_metrics_addr),
            tls_cert=_readable_file(env, "FULFILLMENT_TLS_CERT"),
            tls_key=_readable_file(env, "FULFILLMENT_TLS_KEY"),
            tls_ca=_readable_file(env, "FULFILLMENT_TLS_CA"),
            page_token_secret=env.get("FULFILLMENT_PAGE_TOKEN_SECRET", ""),
            auth_enabled=_on_off(env, "FULFILLMENT_AUTH", default=True),
            auth_jwks=_jwks_location(env.get("FULFILLMENT_AUTH_JWKS", "")),
            auth_issuer=env.get("FULFILLMENT_AUTH_ISSUER") or cls.auth_issuer,
            auth_audience=env.get("FULFILLMENT_AUTH_AUDIENCE") or cls.auth_audience,
            auth_roles_claim=_claim_path(env.get("FULFILLMENT_AUTH_ROLES_CLAIM") or "roles"),
            auth_signing_key=env.get("FULFILLMENT_AUTH_SIGNING_KEY")
            or str(default_signing_key_path(env)),
            service_token=env.get("FULFILLMENT_SERVICE_TOKEN", "").strip(),
        )
        _check_tls(settings)
        if settings.step_delay_max_s < settings.step_delay_min_s:
            raise ConfigError(
                "FULFILLMENT_STEP_DELAY_MAX_S must be >= FULFILLMENT_STEP_DELAY_MIN_S "
                f"(got {settings.step_delay_max_s} < {settings.step_delay_min_s})"
            )
        return settings


def _number(
    env: Mapping[str, str], name: str, kind: type[T], default: T, minimum: float = 0
) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _metrics_addr(env: Mapping[str, str], name: str, default: str) -> str:
    """Unset: the default; set but empty: "" (the endpoint is off); else host:port."""
    raw = env.get(name)
    if raw is None:
        return default
    addr = raw.strip()
    if addr == "":
        return ""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"{name} must be host:port (e.g. 127.0.0.1:9101), or empty to turn that /metrics "
            f"endpoint off; got {raw!r}"
        )
    return addr


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("on", "off"):
        raise ConfigError(f"{name} must be on or off, got {raw!r}")
    return raw == "on"


def _jwks_location(raw: str) -> str:
    location = raw.strip()
    scheme, sep, _ = location.partition("://")
    if sep and scheme.lower() not in ("http", "https"):
        raise ConfigError(
            f"FULFILLMENT_AUTH_JWKS must be a file path or an http(s) URL, got {location!r}"
        )
    return location


def _claim_path(raw: str) -> str:
    claim = raw.strip()
    if not claim or "" in claim.split("."):
        raise ConfigError(
            f"FULFILLMENT_AUTH_ROLES_CLAIM must be a claim name or a dotted path such as "
            f"realm_access.roles, got {raw!r}"
        )
    return claim


def default_signing_key_path(env: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/fulfillment/signing-key.pem, else ~/.local/state/fulfillment/...:
    the key is state of this user's installation, not configuration or a cache."""
    state_home = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state_home):  # the XDG spec says to ignore relative values
        home = env.get("HOME") or str(Path.home())
        state_home = os.path.join(home, ".local", "state")
    return Path(state_home) / "fulfillment" / "signing-key.pem"


def redact_url(url: str) -> str:
    """Hide the password in a URL such as postgresql://user:secret@host/db."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"


def split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"address must look like host:port, got {addr!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _readable_file(env: Mapping[str, str], name: str) -> str:
    """A file named now must be readable now, not fail at the first connection."""
    path = (env.get(name) or "").strip()
    if path and not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise ConfigError(f"{name}: {path!r} is not a readable file")
    return path


def _check_tls(settings: Settings) -> None:
    """Half-configured TLS must not quietly become plaintext."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("FULFILLMENT_TLS_CERT and FULFILLMENT_TLS_KEY must be set together (or neither)")
    if settings.tls_ca and not settings.tls_cert:
        raise ConfigError(
            "FULFILLMENT_TLS_CA turns on mutual TLS, which also needs FULFILLMENT_TLS_CERT and "
            "FULFILLMENT_TLS_KEY (this process's own certificate and key)"
        )


def gateway_url(settings: Settings) -> str:
    """Where a caller on this machine reaches the gateway: GATEWAY_HOST, or loopback when
    it binds every interface."""
    host = settings.gateway_host
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.gateway_port}"
