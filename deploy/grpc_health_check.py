"""Exit 0 when the gRPC server at ADDR answers SERVING on grpc.health.v1, else 1.

    python grpc_health_check.py 127.0.0.1:50051 [SERVICE]

The docker compose health checks run it inside the service's own container (the image has
grpcio-health-checking but no grpc_health_probe binary); Kubernetes uses native gRPC probes.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_S = 2.0


def check(addr: str, service: str = "") -> int:
    try:
        with grpc.insecure_channel(addr) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S
            )
    except grpc.RpcError as exc:
        print(f"{addr}: {exc.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{addr}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(check(*sys.argv[1:]))
