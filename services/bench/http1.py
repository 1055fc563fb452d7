"""A minimal keep-alive HTTP/1.1 client on asyncio streams, so the load generator spends
its CPU on requests rather than on a client library. Content-Length and chunked bodies."""

from __future__ import annotations

import asyncio
import json

from google.protobuf import json_format
from google.protobuf.message import Message


def json_body(message: Message) -> bytes:
    """A request message as the gateway's JSON (proto field names), ready to send."""
    return json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True)).encode()


class HttpConnection:
    def __init__(self, host: str, port: int, authorization: str = "") -> None:
        self._host, self._port = host, port
        self._authorization = f"Authorization: {authorization}\r\n" if authorization else ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{self._authorization}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        if not status_line:
            await self.close()
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            payload = await self._read_chunked()
        else:
            payload = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, payload

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self._reader.readline()
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._reader = None


class HttpPool:
    """Keep-alive connections handed out one per request, like a pool of HTTP clients:
    a caller waits for an idle connection, posts, and gives it back."""

    def __init__(self, host: str, port: int, size: int, authorization: str = "") -> None:
        self._connections = [HttpConnection(host, port, authorization) for _ in range(size)]
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for connection in self._connections:
            self._idle.put_nowait(connection)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        connection = await self._idle.get()
        try:
            return await connection.post(path, body)
        finally:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()
