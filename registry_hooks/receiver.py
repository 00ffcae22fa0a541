"""The controller's HTTP side: MLflow's webhooks, wake-ups from the app plugin, health.

``POST /webhooks/mlflow``: an MLflow webhook. Checked in this order, each refusal logged in the
audit log (action ``webhook``) and answered with JSON naming the problem:

* 413 when the body is larger than the limit (the Content-Length is checked before reading);
* 400 when ``X-MLflow-Delivery-Id`` or ``X-MLflow-Timestamp`` is missing, or the timestamp is
  outside the replay window (both ways: clocks drift);
* 401 when no ``X-MLflow-Signature`` entry matches
  ``v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`` (compared in constant time);
* 200 ``{"duplicate": true}`` for a delivery id seen before: it is not applied again.

An accepted event is recorded and wakes the controller; the event only says *when* to look, never
*what* to deploy (the registry says that), so a forged-but-signed event can do no more than an
early reconcile. ``POST /wake`` (from the app plugin) only wakes the controller for the same
reason. ``GET /health`` answers the replica's name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import make_server

from registry_hooks.store import Store

log = logging.getLogger(__name__)
SECRET_ENV = "MLFLOW_REGISTRY_HOOKS_WEBHOOK_SECRET"
MAX_BYTES = 1 << 20
REPLAY_WINDOW = 300.0


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


def verify(headers: dict[str, str], body: bytes, secret: str, now: float, window: float = REPLAY_WINDOW) -> Refusal | None:
    """None when the delivery is authentic and fresh; else why not. ``headers`` keys are lower case."""
    delivery, stamp = headers.get("x-mlflow-delivery-id"), headers.get("x-mlflow-timestamp")
    if not delivery or not stamp:
        return Refusal(400, "X-MLflow-Delivery-Id and X-MLflow-Timestamp are required")
    try:
        sent = int(stamp)
    except ValueError:
        return Refusal(400, f"X-MLflow-Timestamp {stamp[:40]!r} is not a Unix time in seconds")
    if abs(now - sent) > window:
        return Refusal(400, f"X-MLflow-Timestamp {sent} is {now - sent:+.0f} s from now, outside the {window:g} s replay window")
    signed = f"{delivery}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in headers.get("x-mlflow-signature", "").split() if part.startswith("v1,")]
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered):
        return Refusal(401, "X-MLflow-Signature does not match the body under the shared secret")
    return None


def event_of(payload: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    """(kind, model, version, target) of an MLflow webhook payload."""
    entity, action, data = payload.get("entity"), payload.get("action"), payload.get("data") or {}
    alias = data.get("alias")
    kinds = {("model_version_alias", "created"): "alias-set", ("model_version_alias", "deleted"): "alias-deleted",
             ("model_version", "created"): "version-created"}
    kind = kinds.get((entity, action), f"{entity}.{action}")
    return kind, data.get("name"), (str(data["version"]) if data.get("version") is not None else None), \
        (f"@{alias}" if alias else None)


class ReceiverApp:
    def __init__(self, store: Store, wake: Callable[[set[str] | None], None], replica: str, secret: str | None,
                 max_bytes: int = MAX_BYTES, window: float = REPLAY_WINDOW, clock: Callable[[], float] = time.time) -> None:
        self.store, self.wake, self.replica, self.secret = store, wake, replica, secret
        self.max_bytes, self.window, self.clock = max_bytes, window, clock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if (method, path) == ("GET", "/health"):
            return _reply(start_response, 200, {"status": "ok", "replica": self.replica})
        if (method, path) == ("POST", "/wake"):
            self.wake(None)
            return _reply(start_response, 202, {"status": "woken"})
        if (method, path) == ("POST", "/webhooks/mlflow"):
            return self._webhook(environ, start_response)
        return _reply(start_response, 404, {"error": f"No route {method} {path}. Routes: GET /health, POST /wake, POST /webhooks/mlflow."})

    def _webhook(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "?")
        if not self.secret:
            return self._refuse(start_response, Refusal(503, f"the webhook receiver is off: set {SECRET_ENV} to the webhook's secret"), peer)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > self.max_bytes:
            return self._refuse(start_response, Refusal(413, f"the body ({environ.get('CONTENT_LENGTH')} bytes) exceeds the "
                                                             f"{self.max_bytes}-byte limit"), peer)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        refusal = verify(headers, body, self.secret, self.clock(), self.window)
        if refusal is not None:
            return self._refuse(start_response, refusal, peer)
        try:
            payload = json.loads(body)
        except ValueError:
            return self._refuse(start_response, Refusal(400, "the body is not JSON"), peer)
        kind, model, version, target = event_of(payload)
        event_id = self.store.record_event("webhook", kind, model, version, target, None, headers["x-mlflow-delivery-id"])
        if event_id is None:
            self.store.log("webhook", "duplicate", message=f"delivery {headers['x-mlflow-delivery-id']} from {peer} seen before; "
                           "not applied again", replica=self.replica)
            return _reply(start_response, 200, {"status": "duplicate", "duplicate": True})
        self.wake({model} if model else None)
        return _reply(start_response, 202, {"status": "accepted", "event": event_id})

    def _refuse(self, start_response: Callable[..., Any], refusal: Refusal, peer: str) -> Iterable[bytes]:
        log.warning("webhook from %s refused (%d): %s", peer, refusal.status, refusal.reason)
        self.store.log("webhook", f"refused-{refusal.status}", message=f"from {peer}: {refusal.reason}", replica=self.replica)
        return _reply(start_response, refusal.status, {"error": refusal.reason})


def _reply(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    phrase = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
              413: "Payload Too Large", 503: "Service Unavailable"}[status]
    start_response(f"{status} {phrase}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class Receiver:
    """Serves :class:`ReceiverApp` on a background thread."""

    def __init__(self, app: ReceiverApp, host: str, port: int) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(host, port, app, threaded=True)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="hooks-receiver", daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
