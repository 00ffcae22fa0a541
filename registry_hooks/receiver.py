"""The controller's HTTP side: MLflow's webhooks, wake-ups from the app plugin, health.

``POST /webhooks/mlflow``: an MLflow webhook. Checked in this order, each refusal answered with
JSON naming the problem and recorded in the audit log (action ``webhook``, rate-limited below):

* 413 when the body is larger than the limit (a Content-Length is checked before reading; a
  chunked body is read up to the limit);
* 408 when the request does not arrive within the read timeout;
* 400 when ``X-MLflow-Delivery-Id`` or ``X-MLflow-Timestamp`` is missing, or the timestamp is
  outside the replay window (both ways: clocks drift);
* 401 when no ``X-MLflow-Signature`` entry matches
  ``v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`` (compared in constant time);
* 400 when the signed body is not the JSON object MLflow sends (``entity`` and ``action`` strings,
  ``data`` an object whose ``name``, ``version`` and ``alias`` are strings or a version number);
* 200 ``{"duplicate": true}`` for a delivery id seen before: it is not applied again.

An accepted event is recorded and wakes the controller; the event only says *when* to look, never
*what* to deploy (the registry says that), so a forged-but-signed event can do no more than an
early reconcile. ``POST /wake`` (from the app plugin, or ``hooks retry --wake``) wakes the
controller for a full pass; it needs ``Authorization: Bearer <token>`` with the shared token
(``MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN``, set on the controller and the MLflow server alike) or a
webhook signature as above; with neither configured it answers 503. ``GET /health`` answers the
replica's name.

Refusals write at most ``burst`` audit rows (and log lines) per ``window`` seconds; the rest are
counted, and one row says how many were not written one by one, so a flood of unauthenticated
requests cannot push the deployments' history out of ``hooks log``.

The server (:class:`Receiver`) has a fixed number of worker threads and a bounded backlog of
accepted connections (beyond it: 503 at once); a request whose headers and body do not arrive
within the read timeout is cut off, so slow clients hold neither unbounded threads nor workers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request

from registry_hooks.store import Store

log = logging.getLogger(__name__)
SECRET_ENV = "MLFLOW_REGISTRY_HOOKS_WEBHOOK_SECRET"
TOKEN_ENV = "MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN"
MAX_BYTES = 1 << 20
REPLAY_WINDOW = 300.0
READ_TIMEOUT = 10.0
WORKERS = 8
PHRASES = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


def verify(
    headers: dict[str, str], body: bytes, secret: str, now: float, window: float = REPLAY_WINDOW
) -> Refusal | None:
    """None when the delivery is authentic and fresh; else why not. ``headers`` keys are lower case."""
    delivery, stamp = headers.get("x-mlflow-delivery-id"), headers.get("x-mlflow-timestamp")
    if not delivery or not stamp:
        return Refusal(400, "X-MLflow-Delivery-Id and X-MLflow-Timestamp are required")
    try:
        sent = int(stamp)
    except ValueError:
        return Refusal(400, f"X-MLflow-Timestamp {stamp[:40]!r} is not a Unix time in seconds")
    if abs(now - sent) > window:
        return Refusal(
            400, f"X-MLflow-Timestamp {sent} is {now - sent:+.0f} s from now, outside the {window:g} s replay window"
        )
    signed = f"{delivery}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    offered = [
        part.split(",", 1)[1] for part in headers.get("x-mlflow-signature", "").split() if part.startswith("v1,")
    ]
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered):
        return Refusal(401, "X-MLflow-Signature does not match the body under the shared secret")
    return None


def event_of(payload: Any) -> tuple[str, str | None, str | None, str | None]:
    """(kind, model, version, target) of an MLflow webhook payload; ValueError naming what is
    wrong when it is not the shape MLflow sends."""
    if not isinstance(payload, dict):
        raise ValueError(f"the body is a JSON {type(payload).__name__}, not an object")
    entity, action, data = payload.get("entity"), payload.get("action"), payload.get("data", {})
    if not isinstance(entity, str) or not isinstance(action, str):
        raise ValueError("'entity' and 'action' must be strings")
    if not isinstance(data, dict):
        raise ValueError(f"'data' is a JSON {type(data).__name__}, not an object")
    for key in ("name", "alias"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"data.{key} must be a string")
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, (str, int))):
        raise ValueError("data.version must be a string or an integer")
    alias = data.get("alias")
    kinds = {
        ("model_version_alias", "created"): "alias-set",
        ("model_version_alias", "deleted"): "alias-deleted",
        ("model_version", "created"): "version-created",
    }
    kind = kinds.get((entity, action), f"{entity}.{action}")[:60]
    return kind, data.get("name"), (str(version) if version is not None else None), (f"@{alias}" if alias else None)


class RefusalLog:
    """Audit rows (and warnings) for refused requests: at most ``burst`` per ``window`` seconds;
    the rest are counted and summed up in one row when the next window opens or at :meth:`flush`."""

    def __init__(
        self,
        store: Store,
        replica: str,
        burst: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.replica, self.burst, self.window, self.clock = store, replica, burst, window, clock
        self._lock = threading.Lock()
        self._opened, self._written, self._skipped = clock(), 0, 0

    def refused(self, path: str, peer: str, refusal: Refusal) -> None:
        with self._lock:
            summary = self._roll()
            self._written += 1
            write = self._written <= self.burst
            if not write:
                self._skipped += 1
        if summary:
            self._summary(summary)
        if write:
            log.warning("%s from %s refused (%d): %s", path, peer, refusal.status, refusal.reason)
            self.store.log(
                _action(path),
                f"refused-{refusal.status}",
                message=f"from {peer}: {refusal.reason}",
                replica=self.replica,
            )

    def flush(self) -> None:
        with self._lock:
            skipped, self._skipped = self._skipped, 0
        if skipped:
            self._summary(skipped)

    def _roll(self) -> int:
        """Open a new window when the current one is over; the count skipped in the old one."""
        if self.clock() - self._opened < self.window:
            return 0
        skipped = self._skipped
        self._opened, self._written, self._skipped = self.clock(), 0, 0
        return skipped

    def _summary(self, skipped: int) -> None:
        message = (
            f"{skipped} more refused request(s) not written one by one (at most {self.burst} rows "
            f"every {self.window:g} s)"
        )
        log.warning("receiver: %s", message)
        self.store.log("receiver", "refused-suppressed", message=message, replica=self.replica)


def _action(path: str) -> str:
    return "wake" if path == "/wake" else "webhook"


class ReceiverApp:
    def __init__(
        self,
        store: Store,
        wake: Callable[[set[str] | None], None],
        replica: str,
        secret: str | None,
        max_bytes: int = MAX_BYTES,
        window: float = REPLAY_WINDOW,
        clock: Callable[[], float] = time.time,
        token: str | None = None,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.store, self.wake, self.replica, self.secret, self.token = store, wake, replica, secret, token
        self.max_bytes, self.window, self.clock = max_bytes, window, clock
        self.refusals = refusals or RefusalLog(store, replica)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if (method, path) == ("GET", "/health"):
            return _reply(start_response, 200, {"status": "ok", "replica": self.replica})
        if (method, path) in (("POST", "/wake"), ("POST", "/webhooks/mlflow")):
            request = Request(environ)
            peer = environ.get("REMOTE_ADDR", "?")
            try:
                _in_time(environ)
                outcome = self._wake(request) if path == "/wake" else self._webhook(request, peer)
            except Refused as refused:
                self.refusals.refused(path, peer, refused.refusal)
                outcome = refused.refusal.status, {"error": refused.refusal.reason}
            return _reply(start_response, *outcome)
        return _reply(
            start_response,
            404,
            {"error": f"No route {method} {path}. Routes: GET /health, POST /wake, POST /webhooks/mlflow."},
        )

    def _body(self, request: Request) -> bytes:
        """The whole body, within the size limit and the read timeout (chunked bodies too)."""
        request.max_content_length = self.max_bytes  # a larger Content-Length is refused before reading
        try:
            body = _read(request.stream, self.max_bytes + 1)  # a chunked body (no Content-Length) stops at the limit
        except RequestEntityTooLarge:
            body = b"x" * (self.max_bytes + 1)
        except TimeoutError:
            raise Refused(408, "the body did not arrive within the read timeout") from None
        except OSError as error:  # werkzeug's dechunker on a malformed (or cut-off) chunk
            _in_time(request.environ)
            raise Refused(400, f"the body could not be read: {error}") from None
        finally:
            done = request.environ.get(READ_DONE)
            if done is not None:
                done()
        if len(body) > self.max_bytes:
            raise Refused(
                413,
                f"the body ({request.content_length or 'chunked, more than that'} bytes) exceeds "
                f"the {self.max_bytes}-byte limit",
            )
        _in_time(request.environ)
        if request.content_length is not None and len(body) < request.content_length:
            raise Refused(
                408,
                f"the body ended after {len(body)} of {request.content_length} bytes "
                "(cut off at the read timeout, or the client went away)",
            )
        return body

    def _webhook(self, request: Request, peer: str) -> tuple[int, dict[str, Any]]:
        if not self.secret:
            raise Refused(503, f"the webhook receiver is off: set {SECRET_ENV} to the webhook's secret")
        body = self._body(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        refusal = verify(headers, body, self.secret, self.clock(), self.window)
        if refusal is not None:
            raise Refused(refusal.status, refusal.reason)
        try:
            kind, model, version, target = event_of(json.loads(body))
        except ValueError as error:  # JSONDecodeError is a ValueError too
            raise Refused(400, f"the body is not an MLflow webhook payload: {str(error)[:200]}") from None
        delivery = headers["x-mlflow-delivery-id"][:128]
        event_id = self.store.record_event("webhook", kind, model, version, target, None, delivery)
        if event_id is None:
            self.store.log(
                "webhook",
                "duplicate",
                message=f"delivery {delivery} from {peer} seen before; not applied again",
                replica=self.replica,
            )
            return 200, {"status": "duplicate", "duplicate": True}
        self.wake({model} if model else None)
        return 202, {"status": "accepted", "event": event_id}

    def _wake(self, request: Request) -> tuple[int, dict[str, Any]]:
        if not self.token and not self.secret:
            raise Refused(
                503,
                f"wake-ups are off: set {TOKEN_ENV} on the controller and on the MLflow server "
                f"(the app plugin sends it), or {SECRET_ENV} to accept signed wake-ups",
            )
        body = self._body(request)
        offered = request.headers.get("Authorization", "")
        if (
            self.token
            and offered.startswith("Bearer ")
            and hmac.compare_digest(offered[len("Bearer ") :].strip().encode(), self.token.encode())
        ):
            self.wake(None)
            return 202, {"status": "woken"}
        if self.secret and request.headers.get("X-MLflow-Signature"):
            refusal = verify(
                {k.lower(): v for k, v in request.headers.items()}, body, self.secret, self.clock(), self.window
            )
            if refusal is not None:
                raise Refused(refusal.status, refusal.reason)
            self.wake(None)
            return 202, {"status": "woken"}
        accepted = " or ".join(
            ([f"Authorization: Bearer <{TOKEN_ENV}>"] if self.token else [])
            + (["an X-MLflow-Signature under the webhook secret"] if self.secret else [])
        )
        raise Refused(401, f"POST /wake needs {accepted}")


def _read(stream: Any, most: int) -> bytes:
    """Up to ``most`` bytes (a raw stream, like the dechunker, may return fewer per read)."""
    parts, size = [], 0
    while size < most:
        part = stream.read(most - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.refusal = Refusal(status, reason)


def _reply(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {PHRASES[status]}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


READ_DONE = "registry_hooks.read_done"  # environ key: the app calls it once the body is read
CUT_OFF = "registry_hooks.cut_off"  # environ key: whether the read deadline cut the request short


def _in_time(environ: dict[str, Any]) -> None:
    """Refuse (408) a request that the read deadline cut short: what arrived is not all it sent."""
    cut = environ.get(CUT_OFF)
    if cut is not None and cut():
        raise Refused(408, "the request did not arrive within the read timeout")


class _Handler(WSGIRequestHandler):
    """One request per connection (HTTP/1.0 replies), with a socket timeout for every read and a
    deadline for the whole request to arrive, counted from when it was accepted: at the deadline
    the reading side is shut down, so a client that trickles bytes is cut off too."""

    protocol_version = "HTTP/1.0"
    timeout = READ_TIMEOUT  # set per server by Receiver

    def setup(self) -> None:
        super().setup()
        self._cut_off = threading.Event()
        accepted = (
            getattr(getattr(self.server, "accepted", None), "at", None) or time.monotonic()
        )  # the wait counts too
        self._deadline = threading.Timer(max(accepted + self.timeout - time.monotonic(), 0.0), self._cut)
        self._deadline.daemon = True
        self._deadline.start()

    def _cut(self) -> None:
        self._cut_off.set()
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # it is closed already

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[READ_DONE] = self._deadline.cancel
        environ[CUT_OFF] = self._cut_off.is_set
        return environ

    def finish(self) -> None:
        self._deadline.cancel()
        super().finish()

    def log_request(self, *_: Any) -> None:
        pass  # refusals are logged (rate-limited) by the app; accepted events are in the store

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("receiver: " + format, *args)


class BoundedServer(BaseWSGIServer):
    """Werkzeug's WSGI server with a fixed pool of ``workers`` threads and at most ``backlog``
    accepted connections waiting for one; beyond that a connection is answered 503 at once."""

    multithread = True

    def __init__(self, host: str, port: int, app: Any, workers: int, backlog: int, read_timeout: float) -> None:
        # protocol_version set here too: werkzeug turns on keep-alive for a threaded server's handler otherwise
        handler = type("ReceiverHandler", (_Handler,), {"timeout": read_timeout, "protocol_version": "HTTP/1.0"})
        # Bound here, so a busy port is an OSError to report (werkzeug would print and exit).
        listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            super().__init__(host, port, app, handler=handler, fd=listener.fileno())
        finally:
            listener.close()  # the server holds its own duplicate
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hooks-receiver")
        self.slots = threading.BoundedSemaphore(workers + backlog)
        self.accepted = threading.local()  # when the connection a worker serves was accepted

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            _busy(request)
            self.shutdown_request(request)
            return
        self.pool.submit(self._serve, request, client_address, time.monotonic())

    def _serve(self, request: Any, client_address: Any, accepted: float) -> None:
        self.accepted.at = accepted
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one connection's failure never stops the server
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("receiver: a request from %s failed", client_address[0] if client_address else "?", exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        if hasattr(self, "pool"):  # BaseWSGIServer calls this while it is being made, too
            self.pool.shutdown(wait=True)


def _busy(connection: socket.socket) -> None:
    data = json.dumps({"error": "the receiver is busy: every worker and backlog slot is taken; retry shortly"}).encode()
    head = (
        f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        connection.settimeout(1.0)
        connection.sendall(head + data)
    except OSError:
        pass  # the client is gone or not reading: the connection is closed anyway


class Receiver:
    """Serves :class:`ReceiverApp` on a background thread (see :class:`BoundedServer`)."""

    def __init__(
        self,
        app: ReceiverApp,
        host: str,
        port: int,
        workers: int = WORKERS,
        read_timeout: float = READ_TIMEOUT,
        backlog: int | None = None,
    ) -> None:
        self.app = app
        backlog = 4 * workers if backlog is None else backlog
        self._server = BoundedServer(host, port, app, workers, backlog, read_timeout)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="hooks-receiver-accept", daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.app.refusals.flush()
