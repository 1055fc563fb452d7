"""The limit for `create`: a bare grpc.aio echo server of the same server model as the
services (same bootstrap, interceptor, health and reflection, same SO_REUSEPORT process
count), whose handler only returns the request bytes it got.

Run as `python -m services.bench.echo_server ADDR PROCESSES`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import grpc

from services.common.server import ServiceParts, serve

SERVICE = "fulfillment.bench.v1.Echo"
METHOD = f"/{SERVICE}/Echo"


async def _echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    return request


def _register(server: grpc.aio.Server) -> Sequence[str]:
    handler = grpc.unary_unary_rpc_method_handler(_echo)  # bytes in, bytes out: no (de)serializers
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))
    return (SERVICE,)


async def _build() -> ServiceParts:
    return ServiceParts(register=_register)


def main(argv: list[str]) -> int:
    addr, processes = argv[0], int(argv[1]) if len(argv) > 1 else 1
    return serve("echo", addr, _build, processes=processes, grace=1.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
