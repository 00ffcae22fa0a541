"""What the app plugin shares inside the MLflow server: the controller's database, MLflow's own
registry store, and the wake-up of the controllers.

The hooks database is ``MLFLOW_REGISTRY_HOOKS_DB`` (default ``sqlite:///registry-hooks.db``), opened
once per server process. The controllers at ``MLFLOW_REGISTRY_HOOKS_WAKE_URLS`` (comma separated)
are woken on a background thread, with the shared wake token or a webhook signature
(:func:`wake_headers`): a request never waits for them, and a controller that is away or refuses
the wake-up (the server's log says why) finds the change at its next poll.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)
WAKE_ENV = "MLFLOW_REGISTRY_HOOKS_WAKE_URLS"
pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="registry-hooks")
_lock = threading.Lock()
_store = None


def hooks_store() -> Any:
    """The controller's database (:class:`registry_hooks.store.Store`), opened at first use."""
    global _store
    with _lock:
        if _store is None:
            from registry_hooks.store import DB_ENV, DEFAULT_URL, Store

            _store = Store(os.environ.get(DB_ENV, DEFAULT_URL))
        return _store


def registry_store() -> Any:
    """The MLflow server's own model registry store (read in-process, no HTTP, no auth)."""
    from mlflow.server.handlers import _get_model_registry_store

    return _get_model_registry_store()


def wake_controllers() -> None:
    """Wake every controller, on the background pool."""
    pool.submit(wake_now)


def wake_now() -> None:
    import requests

    body = b"{}"
    for url in filter(None, (u.strip() for u in os.environ.get(WAKE_ENV, "").split(","))):
        try:
            reply = requests.post(f"{url.rstrip('/')}/wake", data=body, headers=wake_headers(body), timeout=2)
        except requests.RequestException as error:
            log.warning(
                "registry-hooks: could not wake the controller at %s (%s); its poller will find the change", url, error
            )
            continue
        if reply.status_code >= 300:
            log.warning(
                "registry-hooks: the controller at %s refused the wake-up (%s: %s); its poller will find the change",
                url,
                reply.status_code,
                reply.text[:300],
            )


def wake_headers(body: bytes) -> dict[str, str]:
    """How the controller's receiver knows the wake-up is ours: the shared wake token
    (``MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN``) and/or a webhook signature under the shared webhook secret
    (``MLFLOW_REGISTRY_HOOKS_WEBHOOK_SECRET``), as :func:`registry_hooks.receiver.verify` checks it."""
    import base64
    import hashlib
    import hmac
    import time
    import uuid

    from registry_hooks.receiver import SECRET_ENV, TOKEN_ENV

    headers = {"Content-Type": "application/json"}
    if token := os.environ.get(TOKEN_ENV):
        headers["Authorization"] = f"Bearer {token}"
    if secret := os.environ.get(SECRET_ENV):  # both when both are set: a controller with either one accepts
        delivery, stamp = f"registry-hooks-wake-{uuid.uuid4().hex}", str(int(time.time()))
        digest = hmac.new(secret.encode(), f"{delivery}.{stamp}.".encode() + body, hashlib.sha256).digest()
        headers.update(
            {
                "X-MLflow-Delivery-Id": delivery,
                "X-MLflow-Timestamp": stamp,
                "X-MLflow-Signature": f"v1,{base64.b64encode(digest).decode()}",
            }
        )
    return headers


__all__ = ["WAKE_ENV", "hooks_store", "pool", "registry_store", "wake_controllers", "wake_headers", "wake_now"]
