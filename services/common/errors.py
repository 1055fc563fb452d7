"""Domain error vocabulary shared by every service.

Services raise these (or subclasses with names that say what went wrong, such as
`InsufficientStock`); `error_status` maps them to gRPC codes in one place. Nothing here
imports grpc, so domain and service-layer code stays transport-free.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    type: str
    subject: str
    description: str


# google.rpc.ErrorInfo.domain of every reason below.
ERROR_DOMAIN = "fulfillment"


class Reason(enum.StrEnum):
    """Why a call failed, in terms a program reads (google.rpc.ErrorInfo.reason). Services
    read each other's errors by these and their metadata, never by the message text."""

    # metadata: product_id, requested, available (one per short product)
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    # metadata: product_id (one per unknown product)
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
    # metadata: order_id
    RESERVATION_RELEASED = "RESERVATION_RELEASED"
    # metadata: order_id, current_status
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    # metadata: order_id, current_status
    ORDER_NOT_CANCELABLE = "ORDER_NOT_CANCELABLE"


@dataclass(frozen=True)
class ErrorInfo:
    """One google.rpc.ErrorInfo detail: a reason and its metadata (strings, as in the proto)."""

    reason: Reason
    metadata: Mapping[str, str] = field(default_factory=dict)


class DomainError(Exception):
    """Base for errors a caller can act on; `message` is shown to people as is, `infos`
    are what a program reads."""

    def __init__(self, message: str, infos: Sequence[ErrorInfo] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.infos = tuple(infos)


class InvalidArgument(DomainError):
    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


class NotFound(DomainError):
    pass


class PermissionDenied(DomainError):
    """The caller is known, and this is not theirs to do."""


class AlreadyExists(DomainError):
    pass


class FailedPrecondition(DomainError):
    def __init__(
        self,
        message: str,
        violations: list[PreconditionViolation] | None = None,
        infos: Sequence[ErrorInfo] = (),
    ) -> None:
        super().__init__(message, infos)
        self.violations = violations or []


class Aborted(DomainError):
    """A race was lost; retrying the call is safe."""


class ResourceExhausted(DomainError):
    pass


class Unavailable(DomainError):
    """A dependency (database, another service, the broker) cannot be reached."""


@dataclass
class Validator:
    """Collects every field violation of a request so the caller sees them all at once."""

    violations: list[FieldViolation] = field(default_factory=list)

    def fail(self, field_path: str, description: str) -> None:
        self.violations.append(FieldViolation(field_path, description))

    def check(self, ok: bool, field_path: str, description: str) -> bool:
        if not ok:
            self.fail(field_path, description)
        return ok

    def raise_if_invalid(self) -> None:
        if self.violations:
            summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
            more = len(self.violations) - 5
            if more > 0:
                summary += f"; and {more} more"
            raise InvalidArgument(f"invalid request: {summary}", self.violations)
