"""What SageMaker records about each invocation: CloudWatch metrics, data capture, shadow copies.

* Metrics: every request that reaches a variant's container publishes, in namespace
  ``AWS/SageMaker`` with dimensions ``EndpointName`` and ``VariantName`` (SageMaker's invocation
  metrics, https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html):
  ``Invocations`` (1), ``ModelLatency`` and ``OverheadLatency`` (microseconds),
  ``Invocation4XXErrors`` and ``Invocation5XXErrors`` (1 or 0, so Average is the error rate).
  Shadow variants publish the same under their own VariantName.
* Data capture: with the endpoint's DataCaptureConfig enabled, a sampled request
  (``InitialSamplingPercentage``) is written to
  ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-fff>-<uuid>.jsonl`` as a capture
  record (``captureData.endpointInput``/``endpointOutput`` with ``observedContentType``, ``mode``,
  ``data``, ``encoding``; ``eventMetadata`` with ``eventId``, ``inferenceTime`` and
  ``inferenceId`` when the caller gave one; ``eventVersion`` "0"), honouring ``CaptureOptions``.
  Production and shadow variants are captured alike; a request's copy to the shadow carries the
  production request's ``eventId``, so the two captures of one request pair up.
* Shadow copies: a request to a production variant is copied to the fleet's shadow variant (with
  the sampling the runtime API picked) on a background worker, after the production answer is
  computed; the shadow's answer is discarded. The sandbox keeps the last
  :data:`PAIRS_KEPT` mirrored pairs per endpoint (both answers, statuses and latencies) for the
  control API's ``GET /_sandbox/shadow``.

Where the sandbox differs from SageMaker: one capture file per request (SageMaker batches records
into files every few minutes); only the five metrics above are published; data capture ignores
``KmsKeyId`` and ``CaptureContentTypeHeader``; a capture that cannot be written (no bucket) is
dropped with a log line; that the shadow copy carries the production ``eventId`` is the sandbox's
choice (the documentation does not say; pass ``InferenceId`` to pair captures on AWS).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import requests
from moto.cloudwatch.models import cloudwatch_backends
from moto.s3.models import s3_backends

log = logging.getLogger(__name__)
PAIRS_KEPT = 1000
MIRROR_WORKERS = 2


@dataclass
class Answer:
    """One variant's answer to one request, as the sandbox saw it."""

    variant: str
    status: int
    latency_ms: float
    content_type: str
    body: str

    @classmethod
    def of(cls, variant: str, reply: requests.Response | None, seconds: float) -> Answer:
        if reply is None:
            return cls(variant, 503, seconds * 1000, "", "")
        return cls(
            variant,
            reply.status_code,
            seconds * 1000,
            reply.headers.get("Content-Type", ""),
            reply.content.decode("utf-8", "replace"),
        )


@dataclass
class Request:
    """What is needed to record, capture and mirror one invocation."""

    account: str
    region: str
    endpoint: str
    body: bytes
    headers: dict[str, str]
    capture: dict[str, Any] | None  # the fleet's DataCaptureConfig
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    inference_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def publish(request: Request, variant: str, status: int, model_seconds: float, overhead_seconds: float) -> None:
    """SageMaker's invocation metrics for one request to one variant."""
    dimensions = [{"Name": "EndpointName", "Value": request.endpoint}, {"Name": "VariantName", "Value": variant}]
    values = [
        ("Invocations", 1.0, "None"),
        ("ModelLatency", round(model_seconds * 1e6), "Microseconds"),
        ("OverheadLatency", round(max(overhead_seconds, 0.0) * 1e6), "Microseconds"),
        ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0, "None"),
        ("Invocation5XXErrors", 1.0 if status >= 500 else 0.0, "None"),
    ]
    cloudwatch_backends[request.account][request.region].put_metric_data(
        "AWS/SageMaker",
        [{"MetricName": name, "Value": value, "Unit": unit, "Dimensions": dimensions} for name, value, unit in values],
    )


def capture(request: Request, answer: Answer) -> None:
    """Write one data-capture record, when the endpoint captures and this request is sampled."""
    config = request.capture or {}
    if not config.get("EnableCapture") or random.random() * 100 >= float(config.get("InitialSamplingPercentage", 0)):
        return
    modes = {o.get("CaptureMode") for o in config.get("CaptureOptions") or []} or {"Input", "Output"}
    data: dict[str, Any] = {}
    if "Input" in modes:
        data["endpointInput"] = _captured(request.headers.get("Content-Type", ""), request.body, "INPUT")
    if "Output" in modes:
        data["endpointOutput"] = _captured(answer.content_type, answer.body.encode(), "OUTPUT")
    metadata = {"eventId": request.event_id, "inferenceTime": request.at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if request.inference_id:
        metadata["inferenceId"] = request.inference_id
    record = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})
    destination = urlparse(config.get("DestinationS3Uri", ""))
    now = datetime.now(timezone.utc)
    name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    parts = (destination.path.strip("/"), request.endpoint, answer.variant, now.strftime("%Y/%m/%d/%H"), name)
    key = "/".join(p for p in parts if p)
    try:
        s3_backends[request.account]["aws"].put_object(destination.netloc, key, (record + "\n").encode())
    except Exception as error:  # AWS drops a capture it cannot write; so does the sandbox, visibly
        log.warning(
            "sandbox: data capture for %s/%s not written to %s: %s",
            request.endpoint,
            answer.variant,
            config.get("DestinationS3Uri"),
            error,
        )


def _captured(content_type: str, data: bytes, mode: str) -> dict[str, str]:
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        encoding, text = "JSON", data.decode("utf-8", "replace")
    elif kind == "text/csv":
        encoding, text = "CSV", data.decode("utf-8", "replace")
    else:
        encoding, text = "BASE64", base64.b64encode(data).decode()
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


class ShadowMirror:
    """Copies requests to shadow variants in the background and keeps the mirrored pairs."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(MIRROR_WORKERS, thread_name_prefix="sandbox-shadow")
        self._pairs: dict[str, deque] = defaultdict(lambda: deque(maxlen=PAIRS_KEPT))
        self._busy = threading.Condition()
        self._in_flight = 0
        self._generation = 0  # a reset starts a new one: copies begun before it record nothing

    def mirror(self, request: Request, production: Answer, shadow_variant: str, shadow_url: str) -> None:
        with self._busy:
            self._in_flight += 1
            generation = self._generation
        self._pool.submit(self._copy, request, production, shadow_variant, shadow_url, generation)

    def _copy(self, request: Request, production: Answer, variant: str, url: str, generation: int) -> None:
        try:
            started = time.perf_counter()
            try:
                reply: requests.Response | None = requests.post(
                    url + "/invocations", data=request.body, headers=request.headers, timeout=120
                )
            except requests.RequestException:
                reply = None
            seconds = time.perf_counter() - started
            answer = Answer.of(variant, reply, seconds)
            if generation != self._generation:  # the sandbox was reset meanwhile
                return
            publish(request, variant, answer.status, seconds, 0.0)
            capture(request, answer)
            with self._busy:
                if generation != self._generation:
                    return
                self._pairs[request.endpoint].append(
                    {
                        "event_id": request.event_id,
                        "inference_id": request.inference_id,
                        "at": request.at.isoformat(),
                        "production": asdict(production),
                        "shadow": asdict(answer),
                    }
                )
        except Exception:  # a shadow never affects the caller; its failure is only logged
            log.exception("sandbox: mirroring a request of %s to %s failed", request.endpoint, variant)
        finally:
            with self._busy:
                self._in_flight -= 1
                self._busy.notify_all()

    def pairs(self, endpoint: str, settle_seconds: float = 30.0) -> dict[str, Any]:
        """The endpoint's mirrored pairs, oldest first, once the copies in flight have finished
        (or ``settle_seconds`` have passed: ``in_flight`` then says how many had not)."""
        with self._busy:
            self._busy.wait_for(lambda: self._in_flight == 0, timeout=settle_seconds)
            return {"endpoint": endpoint, "in_flight": self._in_flight, "pairs": list(self._pairs.get(endpoint, ()))}

    def clear(self) -> None:
        with self._busy:
            self._generation += 1
            self._pairs.clear()

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
