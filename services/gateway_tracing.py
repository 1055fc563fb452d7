"""What the gateway adds for tracing, as blocks of Envoy config: the OpenTelemetry tracer
on the connection manager (gateway/tracing.yaml.tmpl) and the collector's cluster
(gateway/otlp_collector.yaml.tmpl), rendered when the OTEL_* variables give an OTLP
endpoint, from the same variables the services read (services/common/tracing/config.py).

Without them the config has no tracer, and Envoy forwards the caller's traceparent header
like any other: the transcoder hands request headers to the service as gRPC metadata.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from services.common.config import ConfigError
from services.common.tracing.config import OtlpEndpoint, TracingConfig
from services.gateway_security import is_ip, yaml_string

GATEWAY_DIR = Path(__file__).resolve().parents[1] / "gateway"
TRACING_TEMPLATE = GATEWAY_DIR / "tracing.yaml.tmpl"
COLLECTOR_TEMPLATE = GATEWAY_DIR / "otlp_collector.yaml.tmpl"


@dataclass(frozen=True)
class GatewayTracing:
    collector: OtlpEndpoint
    # Of the requests that come without a sampling decision (traceparent's flag).
    sampling_percent: float = 100.0


def gateway_tracing(env: Mapping[str, str] | None = None) -> GatewayTracing | None:
    env = os.environ if env is None else env
    config = TracingConfig.from_env(env)
    if config.otlp is None:
        return None
    return GatewayTracing(config.otlp, sampling_percent(env))


def sampling_percent(env: Mapping[str, str]) -> float:
    """OTEL_TRACES_SAMPLER(_ARG) as Envoy's random sampling of untraced requests; Envoy
    follows a caller's decision itself, as the parent-based samplers do."""
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if sampler in ("always_on", "parentbased_always_on"):
        return 100.0
    if sampler in ("always_off", "parentbased_always_off"):
        return 0.0
    if sampler in ("traceidratio", "parentbased_traceidratio"):
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
        try:
            ratio = float(raw)
        except ValueError:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG is {raw!r}, not a ratio between 0 and 1") from None
        return min(max(ratio, 0.0), 1.0) * 100
    raise ConfigError(
        f"OTEL_TRACES_SAMPLER is {sampler!r}; the gateway knows always_on, always_off, "
        "traceidratio and their parentbased_ forms"
    )


def tracing_block(tracing: GatewayTracing | None) -> str:
    if tracing is None:
        return ""
    metadata = ", ".join(
        f"{{ key: {yaml_string(key)}, value: {yaml_string(value)} }}"
        for key, value in tracing.collector.headers
    )
    return _block(TRACING_TEMPLATE, {
        "initial_metadata": f"initial_metadata: [{metadata}]" if metadata else "",
        "sampling_percent": f"{tracing.sampling_percent:g}",
    })


def collector_cluster_block(tracing: GatewayTracing | None) -> str:
    if tracing is None:
        return ""
    collector = tracing.collector
    return _block(COLLECTOR_TEMPLATE, {
        "cluster_type": "STATIC" if is_ip(collector.host) else "STRICT_DNS",
        "transport_socket": _tls(collector) if collector.tls else "",
        "host": yaml_string(collector.host),
        "port": str(collector.port),
    })


def _tls(collector: OtlpEndpoint) -> str:
    """TLS to an https:// collector, verified against its CA (OTEL_EXPORTER_OTLP_CERTIFICATE)
    or the system's, as the services' exporter does."""
    trusted = collector.certificate or ssl.get_default_verify_paths().cafile
    if not trusted:
        raise ConfigError(
            "the OTLP endpoint is https and no CA bundle was found for the gateway to verify "
            "it; set OTEL_EXPORTER_OTLP_CERTIFICATE"
        )
    sni = "" if is_ip(collector.host) else f"sni: {yaml_string(collector.host)}, "
    return (
        "transport_socket: { name: envoy.transport_sockets.tls, typed_config: { "
        '"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, '
        f"{sni}common_tls_context: {{ alpn_protocols: [h2], validation_context: "
        f"{{ trusted_ca: {{ filename: {yaml_string(str(Path(trusted).resolve()))} }} }} }} }} }}"
    )


def _block(template: Path, values: Mapping[str, str]) -> str:
    """A block template filled in, without its header comment or empty lines."""
    lines = Template(template.read_text()).substitute(values).splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(line for line in lines if line.strip())
