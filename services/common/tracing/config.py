"""When tracing is on, decided once from the standard OTEL_* variables (no OTel import).

The rule: tracing is on when an exporter is configured and the SDK is not disabled.
- OTEL_SDK_DISABLED=true turns it off whatever else is set;
- OTEL_TRACES_EXPORTER names the exporters (otlp, console, comma-separated; none: off);
- unset, the exporter is otlp when an OTLP endpoint is set
  (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT), and there is none
  otherwise. The specification defaults to otlp on localhost; here no variable means no
  exporter, no SDK and nothing on the hot paths.
The SDK itself reads the rest: the endpoint, headers, timeout and certificates of the
exporter, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES, OTEL_PROPAGATORS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from services.common.config import ConfigError

# service.name of each part (docs: ARCHITECTURE "Observability"). They win over
# OTEL_SERVICE_NAME: `fulfillment up` gives all five processes one environment.
SERVICE_NAMES = {
    "gateway": "fulfillment-gateway",
    "orders": "fulfillment-orders",
    "inventory": "fulfillment-inventory",
    "worker": "fulfillment-worker",
    "monitor": "fulfillment-monitor",
}

EXPORTERS = ("otlp", "console")
# Only the gRPC exporter is installed (opentelemetry-exporter-otlp-proto-grpc).
PROTOCOLS = ("grpc",)


@dataclass(frozen=True)
class OtlpEndpoint:
    """Where OTLP/gRPC spans go: a collector's host and port, over TLS or not."""

    host: str
    port: int
    tls: bool
    # OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, e.g. an API key of a hosted backend.
    headers: tuple[tuple[str, str], ...] = ()
    # OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE: the CA to trust, empty: the system's.
    certificate: str = ""


@dataclass(frozen=True)
class TracingConfig:
    exporters: tuple[str, ...] = ()
    otlp: OtlpEndpoint | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TracingConfig:
        env = os.environ if env is None else env
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        endpoint = _traces_value(env, "ENDPOINT")
        named = [
            name.strip().lower()
            for name in env.get("OTEL_TRACES_EXPORTER", "").split(",")
            if name.strip()
        ]
        if not named:
            named = ["otlp"] if endpoint else []
        if named == ["none"]:
            return cls()
        unknown = [name for name in named if name not in EXPORTERS]
        if unknown:
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}; supported: "
                f"{', '.join(EXPORTERS)} or none"
            )
        exporters = tuple(dict.fromkeys(named))
        if "otlp" not in exporters:
            return cls(exporters)
        protocol = _traces_value(env, "PROTOCOL") or "grpc"
        if protocol not in PROTOCOLS:
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol}: only grpc is supported here; set "
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc and point OTEL_EXPORTER_OTLP_ENDPOINT at the "
                "collector's OTLP/gRPC port (4317 by default)"
            )
        return cls(exporters, otlp_endpoint(endpoint or "http://localhost:4317", env))


def _traces_value(env: Mapping[str, str], suffix: str) -> str:
    """A signal-specific OTLP variable, else its general form."""
    return (
        env.get(f"OTEL_EXPORTER_OTLP_TRACES_{suffix}") or env.get(f"OTEL_EXPORTER_OTLP_{suffix}") or ""
    ).strip()


def otlp_endpoint(url: str, env: Mapping[str, str]) -> OtlpEndpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"the OTLP endpoint {url!r} is not a URL such as http://127.0.0.1:4317 "
            "(http: plaintext, https: TLS)"
        )
    try:
        port = parts.port or 4317
    except ValueError:
        raise ConfigError(f"the OTLP endpoint {url!r} has a port that is not a number") from None
    headers = tuple(
        (unquote(key).strip().lower(), unquote(value).strip())
        for key, _, value in (
            pair.partition("=") for pair in _traces_value(env, "HEADERS").split(",") if "=" in pair
        )
    )
    return OtlpEndpoint(
        parts.hostname, port, parts.scheme == "https", headers, _traces_value(env, "CERTIFICATE")
    )
