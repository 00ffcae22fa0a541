"""A small HTTP/1.1 server for the runtime: asyncio plus httptools' parser (the one uvicorn uses).

Why not uvicorn: the runtime needs no ASGI machinery per request, and uvicorn's multi-worker mode
adds about 48 ms per keep-alive request here (uvicorn issue 3149: small responses wait on Nagle's
algorithm). Every accepted connection gets ``TCP_NODELAY``.

Requests are handed to the app in batches: every request that arrived while the worker was busy
is queued, and the queue is drained once per event-loop iteration through
``app.handle_batch(requests) -> responses``. A lone request is handled at once; under load the
app can predict queued requests together (see :mod:`.app`). Responses go back in arrival order,
so pipelined requests on one connection are answered in order. It supports keep-alive,
pipelining, chunked request bodies and ``Expect: 100-continue``; a body over the limit is
refused with 413 before it is read.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

import httptools

from mlflow_plugins.errors import PayloadTooLarge

log = logging.getLogger(__name__)


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class App(Protocol):
    def handle_batch(self, requests: list[Request]) -> list[Response]:
        """One response per request, in order; must not raise."""


class Dispatcher:
    """The worker's queue of parsed requests, drained once per event-loop iteration."""

    def __init__(self, app: App, on_error: Callable[[Exception], Response]) -> None:
        self.app = app
        self.on_error = on_error
        self.pending: list[tuple[HttpProtocol, Request, bool]] = []
        self.scheduled = False

    def submit(self, protocol: HttpProtocol, request: Request, keep_alive: bool) -> None:
        self.pending.append((protocol, request, keep_alive))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.drain)

    def drain(self) -> None:
        batch, self.pending, self.scheduled = self.pending, [], False
        try:
            responses = self.app.handle_batch([request for _, request, _ in batch])
        except Exception as error:  # the app maps known errors; this is the last resort
            responses = [self.on_error(error)] * len(batch)
        for (protocol, _, keep_alive), response in zip(batch, responses):
            protocol.send(response, keep_alive)


def _head(status: int, response: Response, keep_alive: bool) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
    ]
    lines += [f"{k}: {v}" for k, v in response.headers.items()]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpProtocol(asyncio.Protocol):
    """One connection: parse requests, call the handler, write responses in order."""

    def __init__(self, dispatcher: Dispatcher, max_body: int) -> None:
        self.dispatcher = dispatcher
        self.max_body = max_body
        self.on_error = dispatcher.on_error
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.refused: Exception | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.send(Response(400, b'{"message": "Upgrade is not supported"}'), keep_alive=False)
        except httptools.HttpParserError as error:
            body = f'{{"error_code": "BAD_REQUEST", "message": "Malformed HTTP request: {error}"}}'
            self.send(Response(400, body.encode()), keep_alive=False)

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = int(self.headers.get("content-length", "0") or 0)
        if length > self.max_body:
            self.refused = PayloadTooLarge(size=length, limit=self.max_body, limit_mb=self.max_body / 2**20)
        elif self.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        if self.refused is not None:
            return
        self.size += len(chunk)
        if self.size > self.max_body:
            self.refused = PayloadTooLarge(size=self.size, limit=self.max_body, limit_mb=self.max_body / 2**20)
            self.body = []
            return
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        if self.refused is not None:
            self.send(self.on_error(self.refused), keep_alive=False)
            return
        parsed = httptools.parse_url(self.url)
        request = Request(
            method=self.parser.get_method().decode("latin-1"),
            path=parsed.path.decode("utf-8", "replace"),
            query=(parsed.query or b"").decode("utf-8", "replace"),
            headers=self.headers,
            body=b"".join(self.body),
        )
        self._reset()
        self.dispatcher.submit(self, request, keep_alive)

    def send(self, response: Response, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(_head(response.status, response, keep_alive) + response.body)
        if not keep_alive:
            self.transport.close()


async def serve_forever(sock: socket.socket, app: App, max_body: int,
                        on_error: Callable[[Exception], Response], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    dispatcher = Dispatcher(app, on_error)
    server = await loop.create_server(lambda: HttpProtocol(dispatcher, max_body), sock=sock, backlog=2048)
    async with server:
        await stop.wait()
