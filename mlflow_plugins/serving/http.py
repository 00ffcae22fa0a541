"""A small HTTP/1.1 server for the runtime: asyncio plus httptools' parser (the one uvicorn uses).

Why not uvicorn: the runtime needs no ASGI machinery per request, and uvicorn's multi-worker mode
adds about 48 ms per keep-alive request here (uvicorn issue 3149: small responses wait on Nagle's
algorithm). Every accepted connection gets ``TCP_NODELAY``.

The event loop never waits for a model. It runs in its own thread and only reads, parses and
writes; each request goes to one of three lanes that the app chooses (:meth:`App.lane`):

* ``NOW``: answered on the loop at once (``/ping``, listings). Nothing that can wait on a model.
* ``WORK``: predictions. Queued for the process's main thread, which takes *everything queued*
  each time it is free and hands it to ``app.handle_batch(requests) -> responses``, so requests
  that arrived while it was busy, on any connection, fresh or kept alive, are predicted together
  where the app allows it. The main thread is where the per-request deadline (SIGALRM) works.
  Each answer carries ``Server-Timing: app;dur=MS``: the worker's time for its batch.
* ``ADMIN``: slow management calls (a multi-model load or unload) on one helper thread, so they
  neither block the loop nor wait behind predictions.

Responses on one connection go back in request order, whatever lane answered first, so pipelined
requests are answered in order. A connection with many unanswered requests stops being read
until they are answered (back-pressure instead of an unbounded queue). It supports keep-alive,
pipelining, chunked request bodies and ``Expect: 100-continue``; a body over the limit is refused
with 413 before it is read.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

import httptools

from mlflow_plugins.errors import PayloadTooLarge

log = logging.getLogger(__name__)
NOW, WORK, ADMIN = "now", "work", "admin"
MAX_UNANSWERED = 32  # per connection, before it is no longer read


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
    def lane(self, request: Request) -> str:
        """``NOW``, ``WORK`` or ``ADMIN``: where the request is handled (see the module doc)."""

    def handle(self, request: Request) -> Response:
        """One response for a ``NOW`` or ``ADMIN`` request; must not raise."""

    def handle_batch(self, requests: list[Request]) -> list[Response]:
        """One response per ``WORK`` request, in order; must not raise."""


class WorkQueue:
    """Requests for the main thread: it takes all that are queued at once."""

    def __init__(self) -> None:
        self._items: deque = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False

    def put(self, item: object) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()

    def take_all(self) -> list | None:
        """Everything queued (waiting for at least one); ``None`` once closed and empty."""
        with self._ready:
            while not self._items and not self._closed:
                # Wake now and then: Python runs a signal handler (SIGTERM) only in the main thread,
                # and only once it runs, which a signal taken by another thread does not make it do.
                self._ready.wait(0.5)
            items = list(self._items)
            self._items.clear()
            return items or None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class _Slot:
    """A place in a connection's response order."""

    __slots__ = ("response", "keep_alive")

    def __init__(self, keep_alive: bool) -> None:
        self.response: Response | None = None
        self.keep_alive = keep_alive


class Dispatcher:
    """Routes parsed requests to their lane and delivers the answers (on the loop thread)."""

    def __init__(
        self, app: App, on_error: Callable[[Exception], Response], work: WorkQueue, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.app = app
        self.on_error = on_error
        self.work = work
        self.loop = loop
        self.admin = ThreadPoolExecutor(1, thread_name_prefix="admin")
        self.connections: set[HttpProtocol] = set()

    def submit(self, protocol: HttpProtocol, request: Request, slot: _Slot) -> None:
        try:
            lane = self.app.lane(request)
            if lane == NOW:
                protocol.deliver(slot, self.app.handle(request))
            elif lane == ADMIN:
                future = self.loop.run_in_executor(self.admin, self.app.handle, request)
                future.add_done_callback(lambda done: protocol.deliver(slot, self._result(done)))
            else:
                self.work.put((protocol, request, slot))
        except Exception as error:  # the app maps known errors; this is the last resort
            protocol.deliver(slot, self.on_error(error))

    def _result(self, future: asyncio.Future) -> Response:
        error = future.exception()
        return self.on_error(error) if error is not None else future.result()

    def run_work(self, items: list) -> None:
        """In the main thread: one ``handle_batch`` over everything that was queued. Each answer
        says how long that took (``Server-Timing: app;dur=MILLISECONDS``, W3C Server Timing):
        the worker's own time for the batch the request was in, without HTTP or queueing."""
        started = time.perf_counter()
        try:
            responses = self.app.handle_batch([request for _, request, _ in items])
        except Exception as error:
            responses = [self.on_error(error)] * len(items)
        timing = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
        for response in responses:
            response.headers["Server-Timing"] = timing
        try:
            self.loop.call_soon_threadsafe(self._deliver_all, items, responses)
        except RuntimeError:  # the loop has stopped: the server is shutting down
            log.info("dropped %d answers: the server is stopping", len(items))

    @staticmethod
    def _deliver_all(items: list, responses: list[Response]) -> None:
        for (protocol, _, slot), response in zip(items, responses):
            protocol.deliver(slot, response)


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
    """One connection: parse requests, dispatch them, write responses in request order."""

    def __init__(self, dispatcher: Dispatcher, max_body: int) -> None:
        self.dispatcher = dispatcher
        self.max_body = max_body
        self.on_error = dispatcher.on_error
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.slots: deque[_Slot] = deque()
        self.paused = False
        self.closed = False
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
        self.dispatcher.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.dispatcher.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Response(400, b'{"message": "Upgrade is not supported"}'))
        except httptools.HttpParserError as error:
            body = f'{{"error_code": "BAD_REQUEST", "message": "Malformed HTTP request: {error}"}}'
            self._fail(Response(400, body.encode()))

    def _fail(self, response: Response) -> None:
        slot = _Slot(keep_alive=False)
        self.slots.append(slot)
        self.deliver(slot, response)

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
            refused = self.refused
            self._reset()
            self._fail(self.on_error(refused))
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
        slot = _Slot(keep_alive)
        self.slots.append(slot)
        if len(self.slots) >= MAX_UNANSWERED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self.dispatcher.submit(self, request, slot)

    def deliver(self, slot: _Slot, response: Response) -> None:
        """Answer ``slot``, then write every answered response at the head of the order."""
        slot.response = response
        while self.slots and self.slots[0].response is not None:
            ready = self.slots.popleft()
            if not self._write(ready.response, ready.keep_alive):
                self.slots.clear()
                return
        if self.paused and len(self.slots) < MAX_UNANSWERED // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def _write(self, response: Response, keep_alive: bool) -> bool:
        if self.closed or self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(_head(response.status, response, keep_alive) + response.body)
        if not keep_alive:
            self.transport.close()
            return False
        return True


async def serve_forever(sock: socket.socket, dispatcher: Dispatcher, max_body: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(dispatcher, max_body), sock=sock, backlog=2048)
    started = getattr(dispatcher.app, "on_loop_start", None)
    if started is not None:
        await started()
    try:
        await stop.wait()
    finally:
        # Close idle keep-alive connections too: waiting for clients to close them could be forever.
        server.close()
        for connection in list(dispatcher.connections):
            if connection.transport is not None:
                connection.transport.close()
        stopped = getattr(dispatcher.app, "on_loop_stop", None)
        if stopped is not None:
            await stopped()
