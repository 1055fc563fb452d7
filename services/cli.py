"""The `fulfillment` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from functools import partial

from services.common.config import ConfigError, Settings
from services.common.logs import configure_logging
from services.common.tracing.config import TracingConfig


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from services.migrations import DatabaseUnreachable, migrate_all

    try:
        migrate_all(settings)
    except DatabaseUnreachable as exc:
        print(
            f"error: {exc}\nStart PostgreSQL (README: Two commands) or point DATABASE_URL at it.",
            file=sys.stderr,
        )
        return 2
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from services.common.security import server_security
    from services.common.server import serve

    if args.service == "inventory":
        from services.inventory.app import build

        addr, metrics_addr = settings.inventory_addr, settings.inventory_metrics_addr
    else:
        from services.orders.app import build  # type: ignore[no-redef]

        addr, metrics_addr = settings.orders_addr, settings.orders_metrics_addr
    processes = args.processes or settings.server_processes
    return serve(
        args.service, addr, partial(build, settings),
        processes=processes, grace=settings.shutdown_grace_s,
        security=partial(server_security, settings, args.service), metrics_addr=metrics_addr,
    )


def _gateway(settings: Settings, _args: argparse.Namespace) -> int:
    from services.gateway import run_gateway

    try:
        return run_gateway(settings)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from services.stack import run_up

    return run_up(settings, args.workers, out=lambda line: print(line, flush=True))


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    import grpc

    from services.demo import run_demo

    try:
        result = run_demo(settings, count=args.orders, timeout=args.timeout)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(
            f"error: the stack did not answer ({exc.code().name}: {exc.details()}); "
            "is `fulfillment up` running?",
            file=sys.stderr,
        )
        return 2
    return 0 if result.finished else 1


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from services.lifecycle_worker.runner import run_worker

    liveness_file = Path(args.liveness_file) if args.liveness_file else None
    if args.with_monitor and args.pool != "threads":
        # A prefork pool forks children while the monitor's gRPC channels exist.
        print("error: --with-monitor needs --pool threads", file=sys.stderr)
        return 2
    return run_worker(
        settings, concurrency=args.concurrency, pool=args.pool, liveness_file=liveness_file,
        with_monitor=args.with_monitor,
    )


def _monitor(settings: Settings, _args: argparse.Namespace) -> int:
    from services.stale_monitor.runner import run_monitor

    return run_monitor(settings)


def _codegen(_settings: Settings, _args: argparse.Namespace) -> int:
    from services.common.codegen import main as codegen_main

    codegen_main()
    return 0


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from services.bench.runner import run_bench

    logging.getLogger().setLevel(logging.WARNING)  # the tables are the output, not log lines
    return run_bench(
        settings, args.scenario, profile="quick" if args.quick else args.profile,
        target_running=args.target_running, processes=args.processes or None, workers=args.workers,
        worker_pool=args.worker_pool,
        out=Path(args.out) if args.out else None, plot=Path(args.plot) if args.plot else None,
    )


def _top(settings: Settings, args: argparse.Namespace) -> int:
    from services.top import run_top

    logging.getLogger().setLevel(logging.WARNING)  # the screen is the output
    return run_top(settings, interval=args.interval, once=args.once)


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {raw}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {raw}")
    return value


def _tls_dev(_settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from services.devtools.local_ca import write_local_ca

    files = write_local_ca(Path(args.directory), extra_names=args.host)
    print(
        f"wrote a local CA and its certificates to {Path(args.directory).resolve()} (keys 0600).\n"
        "Mutual TLS for every service, client, `up` and the gateway:\n"
        f"  export FULFILLMENT_TLS_CERT={files.server_cert.resolve()}\n"
        f"  export FULFILLMENT_TLS_KEY={files.server_key.resolve()}\n"
        f"  export FULFILLMENT_TLS_CA={files.ca.resolve()}\n"
        "TLS without client certificates: leave FULFILLMENT_TLS_CA unset and trust the CA with\n"
        f"  export GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={files.ca.resolve()}\n"
        f"A client of your own (grpcurl): -cacert {files.ca} -cert {files.client_cert} "
        f"-key {files.client_key}"
    )
    return 0


def _deploy_keys(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from services.common.auth.keys import write_public_jwks

    directory = Path(args.directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = directory / "signing-key.pem"
    existed = key.exists()
    try:
        jwks = write_public_jwks(replace(settings, auth_signing_key=str(key), auth_jwks=""), directory)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{'kept' if existed else 'created'} {key.resolve()} (0600, private) and wrote {jwks.resolve()} "
        "(its public half): the secret `fulfillment-auth` of deploy/README.md"
    )
    return 0


def _render_deploy(settings: Settings, args: argparse.Namespace) -> int:
    import base64
    from dataclasses import replace
    from pathlib import Path

    from services.devtools.observability_manifests import COMPOSE_GATEWAY_TRACING, observability_manifests
    from services.gateway import DESCRIPTOR_SET, REPO_ROOT, container_target, render_envoy_config

    # docker compose service names and Kubernetes Service names are the same.
    target = container_target("inventory", "orders", settings)
    config = render_envoy_config(target)
    compose_config = render_envoy_config(replace(target, tracing=COMPOSE_GATEWAY_TRACING))
    header = "# Generated by `uv run fulfillment render-deploy` from gateway/envoy.yaml.tmpl; do not edit.\n"
    configmap = (
        f"{header}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: envoy-config\n"
        "data:\n  envoy.yaml: |\n"
        + "".join(f"    {line}" if line.strip() else "\n" for line in config.splitlines(keepends=True))
        + f"binaryData:\n  fulfillment.pb: {base64.b64encode(DESCRIPTOR_SET.read_bytes()).decode()}\n"
    )
    root = Path(args.root) if args.root else REPO_ROOT
    for relative, text in [
        ("deploy/envoy/envoy.compose.yaml", header + compose_config),
        ("deploy/k8s/envoy-configmap.yaml", configmap),
        *observability_manifests(),
    ]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from services.common.auth.keys import is_local_key_set
    from services.common.auth.mint import mint_token
    from services.common.auth.principal import Role

    try:
        if not is_local_key_set(settings):
            print(
                f"error: FULFILLMENT_AUTH_JWKS is {settings.auth_jwks}, which does not hold the "
                "local signing key: the services would not accept a token signed with it. "
                "Get a token from that identity provider instead.",
                file=sys.stderr,
            )
            return 1
        role = Role(args.role)
        token = mint_token(settings, role, args.subject or f"local-{role.value}", args.ttl)
    except (ConfigError, OSError) as exc:
        print(f"error: cannot sign a token: {exc}", file=sys.stderr)
        return 2
    print(token)  # the only line on stdout, so that TOKEN=$(fulfillment token ...) works
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fulfillment",
        description="Order fulfillment: inventory and orders gRPC services, lifecycle "
        "worker, stale monitor, Envoy gateway. Configured through environment variables "
        "(see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run the whole stack in the foreground (migrate, services, worker, "
        "monitor, Envoy); Ctrl-C stops it all"
    )
    up.add_argument("--workers", type=_positive_int, default=2, help="lifecycle worker concurrency")
    up.set_defaults(run=_up)

    migrate = commands.add_parser(
        "migrate", help="create the database if missing and migrate every service's schema"
    )
    migrate.set_defaults(run=_migrate)

    serve = commands.add_parser("serve", help="run one gRPC service in the foreground")
    serve.add_argument("service", choices=["inventory", "orders"])
    serve.add_argument(
        "--processes", type=int, default=0,
        help="server processes sharing the port via SO_REUSEPORT "
        "(default: FULFILLMENT_SERVER_PROCESSES, 1)",
    )
    serve.set_defaults(run=_serve)

    gateway = commands.add_parser(
        "gateway", help="run Envoy (HTTP/JSON transcoding and gRPC) on GATEWAY_PORT"
    )
    gateway.set_defaults(run=_gateway)

    demo = commands.add_parser(
        "demo", help="seed products, submit a bulk of orders and show them reach an end "
        "(needs a running `fulfillment up`)"
    )
    demo.add_argument("--orders", type=_positive_int, default=40, help="how many orders to submit")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all to finish")
    demo.set_defaults(run=_demo)

    worker = commands.add_parser(
        "worker", help="run the lifecycle worker (Celery) that walks orders through their steps"
    )
    worker.add_argument(
        "--concurrency", type=_positive_int, default=2, help="step slots (default: 2)"
    )
    worker.add_argument(
        "--pool", choices=["prefork", "threads"], default="prefork",
        help="prefork: one process per slot, each with its own gRPC channels (default); "
        "threads: one process, slots share the channels",
    )
    worker.add_argument(
        "--liveness-file", default="",
        help="touch this file every few seconds while the worker consumes (for a liveness "
        "probe: stale means connected but not consuming, or hung)",
    )
    worker.add_argument(
        "--with-monitor", action="store_true",
        help="also run the stale monitor, as a thread of this process (what `up` does while "
        "tracing is off): one process less; its /metrics stay on MONITOR_METRICS_ADDR and "
        "its log lines say service monitor, but its spans would carry the worker's name",
    )
    worker.set_defaults(run=_worker)

    monitor = commands.add_parser(
        "monitor", help="run the stale-order monitor (re-drives or fails overdue orders)"
    )
    monitor.set_defaults(run=_monitor)

    codegen = commands.add_parser(
        "codegen", help="regenerate protobuf stubs and the Envoy descriptor set from protos/"
    )
    codegen.set_defaults(run=_codegen)

    bench = commands.add_parser(
        "bench", help="benchmark a scenario beside its limit measured in the same run "
        "(see benchmarks/README.md)"
    )
    bench.add_argument(
        "scenario",
        choices=["create", "bulk", "hot-sku", "lifecycle", "lifecycle-delayed", "gateway", "mixed", "all"],
    )
    bench.add_argument("--quick", action="store_true", help="smaller sizes (same as --profile quick)")
    bench.add_argument("--profile", choices=["full", "quick", "tiny"], default="full", help=argparse.SUPPRESS)
    bench.add_argument(
        "--target-running", action="store_true",
        help="measure the stack the environment points at instead of starting a private one",
    )
    bench.add_argument(
        "--processes", type=int, default=0,
        help="server processes per service for the private stack (default: FULFILLMENT_SERVER_PROCESSES)",
    )
    bench.add_argument(
        "--workers", type=_positive_int, default=16, help="lifecycle worker concurrency (default: 16)"
    )
    bench.add_argument(
        "--worker-pool", choices=["prefork", "threads"], default="threads",
        help="lifecycle worker pool, for the worker and its no-op chain limit alike (default: threads)",
    )
    bench.add_argument(
        "--out", default="", help="JSON results path (default: benchmarks/results/SCENARIO.json)"
    )
    bench.add_argument("--plot", default="", help="write the create throughput plot (PNG) here")
    bench.set_defaults(run=_bench)

    top = commands.add_parser(
        "top", help="a live view of the running stack from its /metrics endpoints "
        "(*_METRICS_ADDR): orders by status, intake/s, delivered/s, p99 per RPC, queue length"
    )
    top.add_argument(
        "--interval", type=_positive_float, default=2.0, metavar="S",
        help="seconds between readings (default: 2)",
    )
    top.add_argument(
        "--once", action="store_true",
        help="print one frame from two readings INTERVAL apart and exit (1 if no endpoint answered)",
    )
    top.set_defaults(run=_top)

    tls_dev = commands.add_parser(
        "tls-dev", help="write a local CA, a server certificate (localhost, 127.0.0.1 and the "
        "compose/Kubernetes service names) and a client certificate into DIRECTORY, for trying "
        "FULFILLMENT_TLS_* (README: Transport security); not for production"
    )
    tls_dev.add_argument("directory", help="where to write the PEM files (created if missing)")
    tls_dev.add_argument(
        "--host", action="append", default=[], metavar="NAME",
        help="another DNS name or IP address for the server certificate (repeatable), "
        "e.g. inventory.my-namespace.svc",
    )
    tls_dev.set_defaults(run=_tls_dev)

    deploy_keys = commands.add_parser(
        "deploy-keys", help="create a signing key for a deployment (kept if DIRECTORY already has "
        "one) and write its public key set beside it: signing-key.pem and jwks.json, the secret "
        "docker compose and Kubernetes mount (deploy/README.md)"
    )
    deploy_keys.add_argument("directory", help="e.g. deploy/secrets (never committed)")
    deploy_keys.set_defaults(run=_deploy_keys)

    render_deploy = commands.add_parser(
        "render-deploy", help="render the Envoy configs for docker compose and Kubernetes into "
        "deploy/ from gateway/envoy.yaml.tmpl, and the Kubernetes ConfigMaps of the Grafana "
        "dashboard and the alert rules (run in a source checkout)"
    )
    render_deploy.add_argument("--root", default="", help="write under this directory instead")
    render_deploy.set_defaults(run=_render_deploy)

    token = commands.add_parser(
        "token", help="print a signed bearer token (and nothing else), signed with the local "
        "signing key (FULFILLMENT_AUTH_SIGNING_KEY, created on first use)"
    )
    token.add_argument("--role", required=True, choices=["admin", "customer", "service"])
    token.add_argument(
        "--subject", default="", help="the caller's identity, `sub` (default: local-<role>)"
    )
    token.add_argument(
        "--ttl", type=_positive_int, default=3600, metavar="SECONDS",
        help="lifetime in seconds (default: 3600)",
    )
    token.set_defaults(run=_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        # Each process reads OTEL_* itself (services.common.tracing); a value none could use
        # stops the command here rather than every server process or pool child.
        TracingConfig.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, service=getattr(args, "service", args.command))
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    try:
        return run(settings, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
