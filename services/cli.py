"""The `fulfillment` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial

from services.common.config import ConfigError, Settings
from services.common.logs import configure_logging


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from services.migrations import DatabaseUnreachable, migrate_all

    try:
        migrate_all(settings)
    except DatabaseUnreachable as exc:
        print(
            f"error: {exc}\nStart PostgreSQL (README: Requirements) or point DATABASE_URL at it.",
            file=sys.stderr,
        )
        return 2
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from services.common.server import serve

    if args.service == "inventory":
        from services.inventory.app import build

        addr = settings.inventory_addr
    else:
        from services.orders.app import build  # type: ignore[no-redef]

        addr = settings.orders_addr
    processes = args.processes or settings.server_processes
    return serve(
        args.service, addr, partial(build, settings),
        processes=processes, grace=settings.shutdown_grace_s,
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
    except grpc.RpcError as exc:
        print(
            f"error: the stack did not answer ({exc.code().name}: {exc.details()}); "
            "is `fulfillment up` running?",
            file=sys.stderr,
        )
        return 2
    return 0 if result.finished else 1


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from services.lifecycle_worker.runner import run_worker

    return run_worker(settings, concurrency=args.concurrency, pool=args.pool)


def _monitor(settings: Settings, _args: argparse.Namespace) -> int:
    from services.stale_monitor.runner import run_monitor

    return run_monitor(settings)


def _codegen(_settings: Settings, _args: argparse.Namespace) -> int:
    from services.common.codegen import main as codegen_main

    codegen_main()
    return 0


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {raw}")
    return value


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
    up.add_argument("--workers", type=int, default=2, help="lifecycle worker concurrency")
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
    demo.add_argument("--orders", type=int, default=40, help="how many orders to submit")
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
    worker.set_defaults(run=_worker)

    monitor = commands.add_parser(
        "monitor", help="run the stale-order monitor (re-drives or fails overdue orders)"
    )
    monitor.set_defaults(run=_monitor)

    codegen = commands.add_parser(
        "codegen", help="regenerate protobuf stubs and the Envoy descriptor set from protos/"
    )
    codegen.set_defaults(run=_codegen)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
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
