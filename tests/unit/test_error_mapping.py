from __future__ import annotations

import logging
from typing import TypeVar

import asyncpg
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from sqlalchemy import exc as sa_exc

from services.common import errors
from services.common.error_infos import error_infos
from services.common.error_status import to_status_proto

pytestmark = pytest.mark.unit

T = TypeVar("T")


def test_invalid_argument_carries_field_violations() -> None:
    exc = errors.InvalidArgument("bad", [errors.FieldViolation("items[0].quantity", "must be >= 1")])
    status = to_status_proto(exc)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "bad"
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == "items[0].quantity"


def test_failed_precondition_carries_precondition_failure() -> None:
    exc = errors.FailedPrecondition(
        "short", [errors.PreconditionViolation("STOCK", "products/7", "requested 3, available 1")]
    )
    status = to_status_proto(exc)
    detail = error_details_pb2.PreconditionFailure()
    assert status.code == code_pb2.FAILED_PRECONDITION
    assert status.details[0].Unpack(detail)
    assert detail.violations[0].subject == "products/7"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.NotFound("x"), code_pb2.NOT_FOUND),
        (errors.AlreadyExists("x"), code_pb2.ALREADY_EXISTS),
        (errors.Aborted("x"), code_pb2.ABORTED),
        (errors.ResourceExhausted("x"), code_pb2.RESOURCE_EXHAUSTED),
        (errors.Unavailable("x"), code_pb2.UNAVAILABLE),
        (ConnectionRefusedError("db"), code_pb2.UNAVAILABLE),
        (NotImplementedError("Method not implemented!"), code_pb2.UNIMPLEMENTED),
    ],
)
def test_codes(exc: Exception, code: int) -> None:
    assert to_status_proto(exc).code == code


def test_unexpected_error_hides_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        status = to_status_proto(KeyError("secret internals"), "/svc/Method")
    assert status.code == code_pb2.INTERNAL
    assert "secret internals" not in status.message
    assert "incident" in status.message
    assert any("unexpected error" in r.message for r in caplog.records)


def test_validator_collects_every_violation() -> None:
    v = errors.Validator()
    v.check(False, "a", "bad a")
    v.check(True, "b", "fine")
    v.check(False, "c", "bad c")
    with pytest.raises(errors.InvalidArgument) as info:
        v.raise_if_invalid()
    assert [x.field for x in info.value.violations] == ["a", "c"]
    assert "a: bad a" in info.value.message and "c: bad c" in info.value.message


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        sa_exc.DBAPIError("connect", {}, asyncpg.exceptions.TooManyConnectionsError("sorry")),
        asyncpg.exceptions.OutOfMemoryError("out of memory"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    ],
)
def test_a_database_out_of_resources_or_starting_up_is_unavailable(exc: Exception) -> None:
    assert to_status_proto(exc).code == code_pb2.UNAVAILABLE


class _FailedCall(grpc.RpcError):
    def __init__(self, status: status_pb2.Status) -> None:
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


def test_structured_reasons_travel_as_error_infos_and_are_read_by_reason() -> None:
    insufficient = errors.Reason.INSUFFICIENT_STOCK
    short = [
        errors.ErrorInfo(insufficient, {"product_id": "12", "requested": "3", "available": "1"}),
        errors.ErrorInfo(insufficient, {"product_id": "14", "requested": "2", "available": "0"}),
    ]
    status = to_status_proto(errors.FailedPrecondition("not enough stock", infos=short))

    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append((info.domain, info.reason, dict(info.metadata)))
    assert infos == [("fulfillment", "INSUFFICIENT_STOCK", dict(i.metadata)) for i in short]

    call = _FailedCall(status)
    assert error_infos(call, errors.Reason.INSUFFICIENT_STOCK) == [dict(i.metadata) for i in short]
    assert error_infos(call, errors.Reason.PRODUCT_NOT_FOUND) == []


def test_a_call_without_a_readable_status_has_no_reasons() -> None:
    assert error_infos(grpc.RpcError(), errors.Reason.INSUFFICIENT_STOCK) == []

    class Garbled(_FailedCall):
        def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
            return (("grpc-status-details-bin", b"\xff\xff\xff"),)

    assert error_infos(Garbled(status_pb2.Status()), errors.Reason.INSUFFICIENT_STOCK) == []
