"""Which AWS operation a raw HTTP request calls, and AWS error responses in each wire protocol.

Used by fault injection, which answers before moto sees the request. Supported protocols:
``json`` (SageMaker, ECS, Application Auto Scaling, ECR, Logs), ``rest-json``
(SageMaker Runtime), ``query`` (IAM, STS, ELBv2), ``rest-xml`` (S3, path-style addressing only, as
botocore uses for the sandbox's IP endpoint) and ``smithy-rpc-v2-cbor`` (CloudWatch).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

import botocore.session

_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([^/?]+)")


@dataclass(frozen=True)
class Call:
    service: str | None
    operation: str | None
    protocol: str


@lru_cache(maxsize=1)
def _catalog() -> dict[str, Any]:
    session = botocore.session.get_session()
    by_target: dict[str, str] = {}
    by_signing: dict[str, list[str]] = {}
    models = {}
    for name in (
        "sagemaker",
        "sagemaker-runtime",
        "ecs",
        "iam",
        "sts",
        "cloudwatch",
        "application-autoscaling",
        "ecr",
        "elbv2",
        "logs",
        "s3",
        "sns",
        "cloudformation",
    ):
        model = session.get_service_model(name)
        models[name] = model
        if model.metadata.get("targetPrefix"):
            by_target[model.metadata["targetPrefix"]] = name
        by_signing.setdefault(model.signing_name, []).append(name)
    return {"target": by_target, "signing": by_signing, "models": models}


def identify(environ: dict[str, Any]) -> Call:
    """The service and operation of a WSGI request (``None`` where unknown)."""
    catalog = _catalog()
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target and "." in target:
        prefix, operation = target.rsplit(".", 1)
        return Call(catalog["target"].get(prefix), operation, "json")
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    candidates = catalog["signing"].get(match.group(1), []) if match else []
    path = environ.get("PATH_INFO", "")
    rpc = _RPC_V2_PATH.match(path)
    if rpc:
        service = next((c for c in candidates if c == "cloudwatch"), None)
        return Call(service or (candidates[0] if candidates else None), rpc.group(1), "smithy-rpc-v2-cbor")
    for service in candidates:
        model = catalog["models"][service]
        if model.protocol == "query":
            return Call(service, _query_action(environ), "query")
        if model.protocol in ("rest-json", "rest-xml"):
            operation = _rest_operation(service, environ)
            if operation:
                return Call(service, operation, model.protocol)
    return Call(candidates[0] if candidates else None, None, "unknown")


def _query_action(environ: dict[str, Any]) -> str | None:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if "x-www-form-urlencoded" not in environ.get("CONTENT_TYPE", ""):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # put it back for moto
    form = parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", [None])[0]


@lru_cache(maxsize=None)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], frozenset[str], str]]:
    """(method, path pattern, what the operation requires, name), most specific first: S3 tells
    PutObject from UploadPart and CopyObject only by the query string (``?key``) and the headers."""
    model = _catalog()["models"][service]
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        uri, _, query = operation.http["requestUri"].partition("?")
        pattern = re.sub(r"\{[^}]+\+\}", ".+", uri)
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", pattern)
        keys = {f"?{part.split('=')[0]}" for part in query.split("&") if part}
        shape = operation.input_shape
        if shape is not None:
            for key in shape.required_members:
                serialization = shape.members[key].serialization
                if serialization.get("location") == "querystring":
                    keys.add(f"?{serialization.get('name', key)}")
                elif serialization.get("location") == "header":  # CopyObject is PutObject with x-amz-copy-source
                    keys.add(serialization.get("name", key).lower())
        routes.append((operation.http["method"], re.compile(f"^{pattern}/?$"), frozenset(keys), name))
    return sorted(routes, key=lambda route: -len(route[2]))


def _rest_operation(service: str, environ: dict[str, Any]) -> str | None:
    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
    present = {f"?{key}" for key in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)}
    present |= {key[5:].replace("_", "-").lower() for key in environ if key.startswith("HTTP_")}
    for route_method, pattern, keys, name in _rest_routes(service):
        if route_method == method and pattern.match(path) and keys <= present:
            return name
    return None


def error_response(call: Call, status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """An AWS error response in the call's protocol: (status, headers, body)."""
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
    if call.protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers["Content-Type"] = "text/xml"
    elif call.protocol == "rest-xml":  # S3: a bare <Error> document
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers["Content-Type"] = "application/xml"
        del headers["x-amzn-ErrorType"]
    elif call.protocol == "smithy-rpc-v2-cbor":
        body = _cbor_text_map({"__type": code, "message": message})
        headers["Content-Type"] = "application/cbor"
        headers["smithy-protocol"] = "rpc-v2-cbor"
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.1"
    return status, headers, body


def _cbor_text_map(values: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949): all an error body needs."""
    out = bytearray([0xA0 | len(values)])
    for key, value in values.items():
        for text in (key, value):
            data = text.encode()
            if len(data) < 24:
                out.append(0x60 | len(data))
            elif len(data) < 256:
                out += bytes([0x78, len(data)])
            else:
                out += bytes([0x79]) + len(data).to_bytes(2, "big")
            out += data
    return bytes(out)
