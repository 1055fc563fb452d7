"""Unit tests: retry policy, reading shortfalls from a gRPC status, per-process clients."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.lifecycle_worker.adapters.grpc_clients import parse_violation, shortfalls_from_error
from services.lifecycle_worker.adapters.retry import RetryPolicy, call_with_retries
from services.lifecycle_worker.celery_app import PerProcessDependencies
from services.lifecycle_worker.domain import OrderItem, Shortfall


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


def shortfall_error(violations: list[tuple[str, str]]) -> FakeRpcError:
    failure = error_details_pb2.PreconditionFailure(
        violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type="STOCK", subject=subject, description=description
            )
            for subject, description in violations
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(failure)
    status = rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.FAILED_PRECONDITION, message="insufficient stock", details=[detail]
        )
    )
    return FakeRpcError(status.code, status.details, status.trailing_metadata)


def test_shortfalls_are_read_from_precondition_failure_details() -> None:
    error = shortfall_error(
        [("products/12", "requested 3, available 1"), ("products/14", "requested 1, available 0")]
    )

    shortfalls = shortfalls_from_error(error, [OrderItem(12, 3), OrderItem(14, 1)])

    assert shortfalls == [Shortfall(12, 3, 1), Shortfall(14, 1, 0)]


def test_a_refusal_without_product_violations_is_not_a_shortfall() -> None:
    assert shortfalls_from_error(shortfall_error([("orders/abc", "released")]), []) == []
    assert shortfalls_from_error(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "no"), []) == []


def test_violation_without_numbers_falls_back_to_the_ordered_quantity() -> None:
    assert parse_violation("products/9", "not enough", {9: 4}) == Shortfall(9, 4, None)
    assert parse_violation("orders/9", "requested 1, available 0", {}) is None


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
