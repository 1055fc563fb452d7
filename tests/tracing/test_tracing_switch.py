"""When tracing is on: only the standard OTEL_* variables decide, and off nothing of
OpenTelemetry is loaded, let alone installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from services.common.config import ConfigError
from services.common.tracing import TracingConfig
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit

ENDPOINT = "http://127.0.0.1:4317"


def exporters(**env: str) -> tuple[str, ...]:
    return TracingConfig.from_env(env).exporters


def test_no_otel_variable_means_no_tracing() -> None:
    assert not TracingConfig.from_env({}).enabled
    assert exporters(OTEL_TRACES_SAMPLER="always_on", OTEL_SERVICE_NAME="x") == ()


def test_an_otlp_endpoint_turns_tracing_on() -> None:
    assert exporters(OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT) == ("otlp",)
    assert exporters(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=ENDPOINT) == ("otlp",)
    assert exporters(OTEL_TRACES_EXPORTER="console") == ("console",)
    assert exporters(OTEL_TRACES_EXPORTER="otlp, console", OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT) == (
        "otlp", "console",
    )


def test_the_sdk_disabled_or_no_exporter_wins_over_an_endpoint() -> None:
    assert exporters(OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT, OTEL_SDK_DISABLED="true") == ()
    assert exporters(OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT, OTEL_SDK_DISABLED="TRUE") == ()
    assert exporters(OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT, OTEL_TRACES_EXPORTER="none") == ()
    assert exporters(OTEL_EXPORTER_OTLP_ENDPOINT=ENDPOINT, OTEL_SDK_DISABLED="false") == ("otlp",)


def test_the_collector_endpoint_is_read_as_the_sdk_reads_it() -> None:
    config = TracingConfig.from_env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:1",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector.example:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret,x-team=a",
    })
    assert config.otlp is not None
    assert (config.otlp.host, config.otlp.port, config.otlp.tls) == ("collector.example", 4318, True)
    assert config.otlp.headers == (("api-key", "s=cret"), ("x-team", "a"))
    # otlp named without an endpoint: the exporter's default, the local collector.
    default = TracingConfig.from_env({"OTEL_TRACES_EXPORTER": "otlp"}).otlp
    assert default is not None and (default.host, default.port, default.tls) == ("localhost", 4317, False)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "grpc"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4317"}, "http://"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:port"}, "port"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_what_to_do(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        TracingConfig.from_env(env)


def test_with_no_otel_variable_a_serving_process_loads_no_opentelemetry() -> None:
    """A server started and called, a log line written: no provider, processor,
    interceptor or instrumentation can exist when not one OTel module was imported."""
    script = textwrap.dedent(
        """
        import asyncio, logging, sys
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        from services.common import tracing
        from services.common.logs import configure_logging, log_event
        from services.common.server import ServiceParts, start_server

        async def main():
            assert not tracing.configure_tracing("orders")
            assert tracing.server_interceptors() == () and tracing.aio_client_interceptors() == []
            running = await start_server("127.0.0.1:0", ServiceParts(register=lambda server: []))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            configure_logging(service="orders")
            log_event(logging.getLogger("t"), "served")
            await running.stop(0)
            tracing.shutdown_tracing()
            loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
            assert not loaded, loaded

        asyncio.run(main())
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"msg": "served"' in result.stderr and "trace_id" not in result.stderr
