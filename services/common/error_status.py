"""The one place where exceptions become a google.rpc.Status fit to show the caller: a code,
a message a person reads, and details a program reads, kept within what a gRPC client
accepts in trailers."""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.common import errors

logger = logging.getLogger("fulfillment.errors")

_CODES: list[tuple[type[errors.DomainError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]

# Errors from a downstream gRPC call that we pass through with their code; anything else
# from downstream means our own request was wrong, which is a bug, not the caller's fault.
_PASS_THROUGH = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


# A status travels in the response trailers (grpc-message, and grpc-status-details-bin in
# base64), which a gRPC client refuses above 16 KiB and may refuse above 8 KiB: an error
# naming hundreds of fields or products would reach the caller as RESOURCE_EXHAUSTED
# instead of itself. So the message and the details are kept well inside that.
MESSAGE_MAX_CHARS = 600
DETAILS_MAX_BYTES = 2400
# How many entries (field violations, precondition violations, reasons) each detail keeps
# when all of them do not fit; the message says how many were left out.
_ENTRY_CAPS = (None, 64, 16, 4, 1, 0)


def _details(exc: errors.DomainError) -> tuple[list[any_pb2.Any], int]:
    """The details of `exc` within DETAILS_MAX_BYTES, and how many entries were left out."""
    total = _entry_count(exc)
    for cap in _ENTRY_CAPS:
        packed = _packed_details(exc, cap)
        if sum(detail.ByteSize() for detail in packed) <= DETAILS_MAX_BYTES:
            return packed, total - _entry_count(exc, cap)
    return [], total


def _entry_count(exc: errors.DomainError, cap: int | None = None) -> int:
    violations = len(getattr(exc, "violations", ()))
    infos = len(exc.infos)
    if cap is not None:
        violations, infos = min(violations, cap), min(infos, cap)
    return violations + infos


def _packed_details(exc: errors.DomainError, cap: int | None) -> list[any_pb2.Any]:
    packed: list[any_pb2.Any] = []
    if isinstance(exc, errors.InvalidArgument) and exc.violations[:cap]:
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in exc.violations[:cap]
            ]
        )
        packed.append(_pack(detail))
    if isinstance(exc, errors.FailedPrecondition) and exc.violations[:cap]:
        detail = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
                for v in exc.violations[:cap]
            ]
        )
        packed.append(_pack(detail))
    for info in exc.infos[:cap]:
        packed.append(
            _pack(
                error_details_pb2.ErrorInfo(
                    reason=info.reason.value, domain=errors.ERROR_DOMAIN, metadata=dict(info.metadata)
                )
            )
        )
    return packed


def _bounded_message(message: str, omitted: int) -> str:
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 1] + "\u2026"
    if omitted:
        message += f" ({omitted} more details not listed)"
    return message


def _pack(message: Any) -> any_pb2.Any:
    holder = any_pb2.Any()
    holder.Pack(message)
    return holder


def to_status_proto(exc: BaseException, method: str = "") -> status_pb2.Status:
    """Translate any exception into a google.rpc.Status fit to show the caller."""
    if isinstance(exc, errors.DomainError):
        code = next(c for cls, c in _CODES if isinstance(exc, cls))
        details, omitted = _details(exc)
        return status_pb2.Status(
            code=code.value[0], message=_bounded_message(exc.message, omitted), details=details
        )
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        downstream = exc.code()
        if downstream in _PASS_THROUGH:
            return status_pb2.Status(
                code=downstream.value[0],
                message=f"a dependency did not answer: {exc.details()}",
            )
    if isinstance(exc, NotImplementedError):
        # An RPC in the proto that the servicer does not implement (the generated base
        # method raises this), such as grpc.health's List in some grpcio-health versions.
        return status_pb2.Status(
            code=code_pb2.UNIMPLEMENTED, message=f"{method or 'this method'} is not implemented"
        )
    if _is_database_unreachable(exc):
        return status_pb2.Status(
            code=code_pb2.UNAVAILABLE,
            message="the database is unavailable; retry later",
        )
    incident = uuid.uuid4().hex[:12]
    logger.exception(
        "unexpected error", extra={"fields": {"method": method, "incident": incident}}
    )
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error (incident {incident}); see server logs"
    )


def _is_database_unreachable(exc: BaseException) -> bool:
    # Only a process that loaded SQLAlchemy or asyncpg can raise their errors: the worker
    # and the monitor, which have no database, never import either (~45 MB each).
    if "sqlalchemy" not in sys.modules and "asyncpg" not in sys.modules:
        return False
    from sqlalchemy import exc as sa_exc

    from services.common.database.failures import CONNECTION_LOST, database_unavailable, sqlstate

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if database_unavailable(sqlstate(exc)):
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, FileNotFoundError):
        return False
    # Raised by asyncpg itself (services.common.database.statements.StatementPool) or a socket: the
    # connection is gone, or the server is starting up or shutting down.
    return isinstance(exc, CONNECTION_LOST)
