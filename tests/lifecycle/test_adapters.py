"""Unit tests: retry policy, reading structured reasons from a gRPC status, per-process clients."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.errors import ERROR_DOMAIN, Reason
from services.common.lifecycle.grpc_clients import GrpcReservations, shortfall_of
from services.common.lifecycle.ports import (
    OrderItem,
    ReservationRefused,
    ReservationRejected,
    Shortfall,
    StockShortfall,
)
from services.common.lifecycle.retry import RetryPolicy, call_with_retries
from services.lifecycle_worker.celery_app import PerProcessDependencies

pytestmark = pytest.mark.unit


class FakeRpcError(grpc.RpcError, grpc.Call):
    def __init__(self, code: grpc.StatusCode, details: str = "", metadata: tuple = ()) -> None:
        self._code, self._details, self._metadata = code, details, metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._metadata

    def initial_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def failing(codes: list[grpc.StatusCode], result: str = "ok"):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(codes):
            raise FakeRpcError(codes[len(calls) - 1])
        return result

    return call, calls


def test_transient_errors_are_retried_with_growing_backoff() -> None:
    call, calls = failing([grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED])
    sleeps: list[float] = []

    assert call_with_retries(call, RetryPolicy(), "Test", sleep=sleeps.append) == "ok"
    assert len(calls) == 3
    assert len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2


def test_retries_are_bounded() -> None:
    call, calls = failing([grpc.StatusCode.DEADLINE_EXCEEDED] * 10)

    with pytest.raises(grpc.RpcError):
        call_with_retries(call, RetryPolicy(attempts=3), "Test", sleep=lambda _: None)
    assert len(calls) == 3


def test_errors_that_a_retry_cannot_fix_are_raised_at_once() -> None:
    call, calls = failing([grpc.StatusCode.FAILED_PRECONDITION])

    with pytest.raises(grpc.RpcError):
        call_with_retries(call, RetryPolicy(), "Test", sleep=lambda _: None)
    assert len(calls) == 1


def failed_with(code: int, *infos: tuple[Reason, dict[str, str]]) -> FakeRpcError:
    """A failed call as our servers answer it: a status with ErrorInfo details."""
    details = []
    for reason, metadata in infos:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))
        details.append(detail)
    status = rpc_status.to_status(status_pb2.Status(code=code, message="refused", details=details))
    return FakeRpcError(status.code, status.details, status.trailing_metadata)


class RefusingStub:
    def __init__(self, error: FakeRpcError) -> None:
        self.error = error

    def ReserveStock(self, request: object, timeout: float) -> None:  # noqa: N802 - gRPC's name
        raise self.error


def reserve_against(error: FakeRpcError) -> None:
    reservations = GrpcReservations(grpc.insecure_channel("127.0.0.1:1"), 1.0, RetryPolicy(attempts=1))
    reservations._stub = RefusingStub(error)  # type: ignore[assignment]
    reservations.reserve_stock("o1", [OrderItem(12, 3), OrderItem(14, 1)])


def test_shortfalls_are_read_from_their_structured_reasons() -> None:
    error = failed_with(
        code_pb2.FAILED_PRECONDITION,
        (Reason.INSUFFICIENT_STOCK, {"product_id": "12", "requested": "3", "available": "1"}),
        (Reason.INSUFFICIENT_STOCK, {"product_id": "14", "requested": "1", "available": "0"}),
    )
    with pytest.raises(StockShortfall) as short:
        reserve_against(error)
    assert short.value.shortfalls == (Shortfall(12, 3, 1), Shortfall(14, 1, 0))


def test_a_refusal_without_a_shortfall_reason_is_a_refused_reservation() -> None:
    released = failed_with(code_pb2.FAILED_PRECONDITION, (Reason.RESERVATION_RELEASED, {"order_id": "o1"}))
    with pytest.raises(ReservationRefused):
        reserve_against(released)
    with pytest.raises(ReservationRejected):
        reserve_against(failed_with(code_pb2.NOT_FOUND, (Reason.PRODUCT_NOT_FOUND, {"product_id": "14"})))


def test_a_refusal_with_no_reason_it_knows_is_rejected_so_the_order_fails_rather_than_waits() -> None:
    with pytest.raises(ReservationRejected):
        reserve_against(failed_with(code_pb2.FAILED_PRECONDITION))


def test_a_shortfall_that_does_not_say_what_is_available_says_unknown() -> None:
    assert shortfall_of({"product_id": "9", "requested": "4"}) == Shortfall(9, 4, None)


def test_dependencies_are_rebuilt_in_a_forked_process(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []

    class Clients:
        closed = False

        def close(self) -> None:
            self.closed = True

    def build():
        built.append(1)
        return f"deps{len(built)}", Clients()

    per_process = PerProcessDependencies(build)  # type: ignore[arg-type]
    monkeypatch.setattr("os.getpid", lambda: 100)
    assert per_process.get() == per_process.get() == "deps1"
    monkeypatch.setattr("os.getpid", lambda: 101)
    assert per_process.get() == "deps2"
    assert len(built) == 2


def test_cli_offers_worker_and_monitor() -> None:
    from services.cli import build_parser

    parser = build_parser()
    worker = parser.parse_args(["worker", "--concurrency", "3", "--pool", "threads"])
    assert (worker.concurrency, worker.pool) == (3, "threads")
    assert parser.parse_args(["worker"]).pool == "prefork"
    assert parser.parse_args(["monitor"]).command == "monitor"
    with pytest.raises(SystemExit):
        parser.parse_args(["worker", "--concurrency", "0"])
