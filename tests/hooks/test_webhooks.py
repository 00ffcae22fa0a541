"""The controller's webhook receiver refuses forged, replayed, stale and oversized deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import requests

from registry_hooks.receiver import verify
from tests.hooks.conftest import SECRET, hooks_cli, policy_text


def signed(body: bytes, secret: str = SECRET, stamp: int | None = None, delivery: str | None = None) -> dict[str, str]:
    delivery = delivery or str(uuid.uuid4())
    stamp = int(time.time()) if stamp is None else stamp
    digest = hmac.new(secret.encode(), f"{delivery}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": str(stamp),
        "X-MLflow-Signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def test_forged_replayed_stale_and_oversized_webhooks_are_refused_and_logged(registry, controllers):
    model = registry.new_model(versions=1)
    controller = controllers(
        policy_text(f"{model}-wh", model, source="alias: champion"), registry, "--poll-seconds", "600"
    )
    url = f"{controller.url}/webhooks/mlflow"
    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "now",
            "data": {"name": model, "alias": "champion", "version": "1"},
        }
    ).encode()

    good = signed(body)
    assert requests.post(url, data=body, headers=good, timeout=10).status_code == 202
    again = requests.post(url, data=body, headers=good, timeout=10)  # the same delivery, replayed
    assert again.status_code == 200 and again.json()["duplicate"] is True

    forged = requests.post(url, data=body, headers=signed(body, secret="guessed"), timeout=10)
    assert forged.status_code == 401 and "X-MLflow-Signature" in forged.json()["error"]
    tampered = requests.post(url, data=body.replace(b'"1"', b'"2"'), headers=signed(body), timeout=10)
    assert tampered.status_code == 401
    stale = requests.post(url, data=body, headers=signed(body, stamp=int(time.time()) - 3600), timeout=10)
    assert stale.status_code == 400 and "replay window" in stale.json()["error"]
    unsigned = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code == 400
    huge = b"x" * (2 << 20)
    oversized = requests.post(url, data=huge, headers=signed(huge), timeout=10)
    assert oversized.status_code == 413

    log = [json.loads(line) for line in hooks_cli("log", "--db", registry.db, "--json").splitlines()]
    results = [e["result"] for e in log if e["action"] == "webhook"][-6:]
    assert results == ["duplicate", "refused-401", "refused-401", "refused-400", "refused-400", "refused-413"]
    recorded = [
        e
        for e in __import__("registry_hooks.store", fromlist=["Store"]).Store(registry.db).events_after(0)
        if e["model"] == model
    ]
    assert [(e["source"], e["kind"], e["delivery_id"]) for e in recorded] == [
        ("webhook", "alias-set", good["X-MLflow-Delivery-Id"])
    ]


def test_verify_accepts_any_listed_signature_and_refuses_clock_skew_both_ways():
    body = b'{"entity": "x"}'
    headers = {k.lower(): v for k, v in signed(body, stamp=1_000_000).items()}
    assert verify(headers, body, SECRET, now=1_000_000) is None
    # secret rotation: two entries
    rotated = {**headers, "x-mlflow-signature": f"v1,AAAA {headers['x-mlflow-signature']}"}
    assert verify(rotated, body, SECRET, now=1_000_000) is None
    assert verify(headers, body, SECRET, now=1_000_000 + 301).status == 400
    assert verify(headers, body, SECRET, now=1_000_000 - 301).status == 400
    assert verify({**headers, "x-mlflow-timestamp": "soon"}, body, SECRET, now=1_000_000).status == 400
    assert verify(headers, body, "other", now=1_000_000).status == 401
