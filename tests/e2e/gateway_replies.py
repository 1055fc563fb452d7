"""HTTP to the gateway as a hostile caller sends it (any target, any bytes), and the
contract's error shape that every non-2xx reply must have."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ERROR_KEYS = {"code", "message", "details"}


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def __str__(self) -> str:
        return f"{self.status} {self.content_type} {self.body[:500]!r}"


def send(
    gateway: str,
    method: str,
    target: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One request on a connection of its own. `target` goes on the request line as given
    (percent-escapes included); an iterable body is sent chunked."""
    url = urlsplit(gateway)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        connection.request(
            method,
            target,
            body=body,
            headers={"content-type": "application/json", **(headers or {})},
            encode_chunked=body is not None and not isinstance(body, bytes),
        )
        response = connection.getresponse()
        return Reply(response.status, response.getheader("content-type", ""), response.read())
    finally:
        connection.close()


def exchange(gateway: str, raw: bytes, timeout: float = 15) -> Reply:
    """Write `raw` bytes on a new connection and read one HTTP/1.1 response; for requests
    http.client refuses to send (HTTP/1.0, oversized or half-sent headers)."""
    url = urlsplit(gateway)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(raw)
        stream = sock.makefile("rb")
        status_line = stream.readline()
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        headers: dict[str, str] = {}
        while (line := stream.readline().strip()) != b"":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = stream.read(int(headers.get("content-length", "0")))
    return Reply(int(status_line.split()[1]), headers.get("content-type", ""), body)


def error_of(reply: Reply) -> dict[str, Any]:
    """The reply's error, checked against the contract's shape {"code", "message", "details"}."""
    assert reply.content_type == "application/json", str(reply)
    error = json.loads(reply.body)
    assert isinstance(error, dict) and set(error) == ERROR_KEYS, str(reply)
    assert type(error["code"]) is int and 1 <= error["code"] <= 16, str(reply)
    assert isinstance(error["message"], str) and isinstance(error["details"], list), str(reply)
    return error


def assert_error(reply: Reply, status: int, code: int) -> dict[str, Any]:
    """The reply is the given HTTP status with a readable error of the given gRPC code."""
    assert reply.status == status, str(reply)
    error = error_of(reply)
    assert error["code"] == code and error["message"], str(reply)
    return error
