from __future__ import annotations

import logging

import pytest
from google.rpc import code_pb2, error_details_pb2

from services.common import errors
from services.common.grpc_errors import to_status_proto


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
