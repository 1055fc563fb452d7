"""Reading the structured reasons (google.rpc.ErrorInfo details) out of a failed gRPC call:
how one service learns what went wrong in another without reading its message text."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from services.common.errors import ERROR_DOMAIN, Reason


def error_infos(exc: grpc.RpcError, reason: Reason) -> list[Mapping[str, str]]:
    """The metadata of every ErrorInfo with `reason` that the call's status carries, in
    order; empty when it carries none (or no parseable status at all)."""
    status = _rich_status(exc)
    if status is None:
        return []
    found: list[Mapping[str, str]] = []
    for detail in status.details:
        if not detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            continue
        info = error_details_pb2.ErrorInfo()
        detail.Unpack(info)
        if info.domain == ERROR_DOMAIN and info.reason == reason.value:
            found.append(dict(info.metadata))
    return found


_STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _rich_status(exc: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a failed call carries in its trailers, for sync calls and
    grpc.aio's AioRpcError alike (whose trailing_metadata() is not awaited)."""
    trailing = getattr(exc, "trailing_metadata", None)
    if trailing is None:
        return None
    for key, value in trailing() or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:
                return None
    return None
