"""The inputs an endpoint captured in a time window, as the rows its model received.

SageMaker's data capture writes JSON Lines under
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/`` (the hour of the request, UTC), one
record a request: ``captureData.endpointInput`` with ``observedContentType``, ``encoding``
(``CSV``, ``JSON`` or ``BASE64``) and ``data``, and ``eventMetadata.inferenceTime``
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html). The
sandbox writes the same, so this reads both.

Only the hour prefixes the window touches are listed (a paginator each), and only records whose
``inferenceTime`` falls in ``[start, end)`` are kept. Each request body is decoded by the serving
runtime's own codec against the model's signature, so a window holds exactly the rows the model
was asked about, however the client sent them (any MLflow JSON format, CSV with or without a
header, JSON Lines). Shadow variants' copies are skipped unless asked for (they repeat
production's requests).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_WINDOW = timedelta(days=31)
LATE = timedelta(hours=1)  # capture files are written in batches: a request's record may land in the next hour's prefix


class CaptureError(ValueError):
    """A window that cannot be read: no capture configured, a bad window, nothing captured."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M:%SZ}/{self.end:%Y-%m-%dT%H:%M:%SZ}"


def window(text: str, now: datetime | None = None) -> Window:
    """``1h`` / ``30m`` / ``2d`` (that long, up to now) or ``START/END`` in ISO 8601 (UTC unless
    an offset is given)."""
    now = now or datetime.now(timezone.utc)
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        length = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        if length <= timedelta(0):
            raise CaptureError(f"window={text!r} is empty. Allowed: a length above zero (30m, 1h). Pass -P window=1h.")
        return _capped(Window(now - length, now), text)
    start_text, sep, end_text = text.partition("/")
    try:
        if not sep:
            raise ValueError("no /")
        start, end = _instant(start_text), _instant(end_text)
    except ValueError:
        raise CaptureError(
            f"window={text!r} is not a window. Allowed: a length up to now (30m, 1h, 2d) or START/END in ISO 8601 "
            "(2026-12-01T08:00Z/2026-12-01T09:00Z). Pass -P window=1h."
        ) from None
    if end <= start:
        raise CaptureError(f"window={text!r} ends before it starts. Allowed: START before END. Swap the two.")
    return _capped(Window(start, end), text)


def _capped(span: Window, text: str) -> Window:
    if span.end - span.start > MAX_WINDOW:
        raise CaptureError(
            f"window={text!r} spans {span.end - span.start}: more than {MAX_WINDOW.days} days of capture, an hour "
            "prefix each, read in one run. Allowed: up to 31 days. Pass a shorter window (or -P data= with rows "
            "sampled from the capture)."
        )
    return span


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def production_variants(described: dict[str, Any]) -> list[str]:
    """The production variants of a DescribeEndpoint answer (shadow variants repeat their
    requests: left out)."""
    return [v["VariantName"] for v in described.get("ProductionVariants", [])]


def destination(described: dict[str, Any]) -> str:
    """The capture prefix of a DescribeEndpoint answer (its DataCaptureConfig)."""
    endpoint = described.get("EndpointName")
    capture = described.get("DataCaptureConfig") or {}
    if not capture.get("EnableCapture") or not capture.get("DestinationS3Uri"):
        raise CaptureError(
            f"endpoint {endpoint!r} does not capture its requests (DataCaptureConfig: {capture or 'none'}). "
            "Allowed: an endpoint deployed with data capture. Deploy with -C data_capture_config="
            '\'{"EnableCapture": true, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://bucket/capture", '
            '"CaptureOptions": [{"CaptureMode": "Input"}]}\', or pass -P data=<rows> instead.'
        )
    return capture["DestinationS3Uri"]


def records(s3: Any, prefix: str, endpoint: str, span: Window, variants: list[str] | None = None) -> Iterator[dict]:
    """The capture records of ``endpoint`` whose inferenceTime is in the window, oldest hour first."""
    bucket, _, root = prefix[len("s3://") :].partition("/")
    base = f"{root.strip('/')}/{endpoint}/" if root.strip("/") else f"{endpoint}/"
    names = variants or _variants(s3, bucket, base)
    hour = span.start.replace(minute=0, second=0, microsecond=0)
    while hour < span.end + LATE:
        for variant in names:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{base}{variant}/{hour:%Y/%m/%d/%H}/"
            )
            for key in sorted(o["Key"] for page in pages for o in page.get("Contents", [])):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
                for line in body.splitlines():
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    at = _instant(record["eventMetadata"]["inferenceTime"])
                    if span.start <= at < span.end:
                        yield record
        hour += timedelta(hours=1)


def _variants(s3: Any, bucket: str, base: str) -> list[str]:
    """The endpoint's production variants that captured anything (shadow copies left out)."""
    found = s3.list_objects_v2(Bucket=bucket, Prefix=base, Delimiter="/").get("CommonPrefixes", [])
    return [p["Prefix"][len(base) :].strip("/") for p in found if not p["Prefix"].rstrip("/").endswith("-shadow")]


def rows(captured: Iterator[dict], model_uri: str) -> pd.DataFrame:
    """The captured requests' rows, decoded as the serving runtime decodes them for the model."""
    from mlflow.models import Model

    from mlflow_plugins.errors import OpsError
    from mlflow_plugins.serving import codec

    metadata = Model.load(model_uri)
    schema = metadata.get_input_schema()
    frames, seen, skipped, inputs = [], 0, 0, 0
    for record in captured:
        seen += 1
        sent = record.get("captureData", {}).get("endpointInput")
        if not sent:
            continue  # an Output-only record
        inputs += 1
        data = sent.get("data", "")
        try:
            body = base64.b64decode(data) if sent.get("encoding") == "BASE64" else data.encode("utf-8")
            parsed = codec.decode(body, sent.get("observedContentType") or "application/json", metadata, schema)
        except (OpsError, ValueError):  # a request the model refused too: it is not the model's input
            skipped += 1
            continue
        frames.append(parsed.data if isinstance(parsed.data, pd.DataFrame) else pd.DataFrame(parsed.data))
    if seen and not inputs:
        raise CaptureError(
            f"the window holds {seen} capture record(s) and none has endpointInput: the endpoint captures its "
            "outputs only. Allowed: CaptureOptions with CaptureMode Input. Update the endpoint's data_capture_config."
        )
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame.attrs["skipped_requests"] = skipped
    return frame
