"""The sandbox's control API for tests and demos, served under ``/_sandbox/`` beside AWS.

=====================================  ==============================================================
``GET    /_sandbox/health``            ``{"status": "ok", "time_scale": ...}``
``POST   /_sandbox/reset``             wipe every AWS resource, stop simulated work, seed IAM again
``GET    /_sandbox/faults``            pending faults and the ones that fired
``POST   /_sandbox/faults``            ``{"operation", "kind": throttle|5xx|error, "count", "service",
                                       "status", "code", "message", "after"}``: ``after`` lets that
                                       many matching calls through first
``DELETE /_sandbox/faults``            drop every pending fault
``GET    /_sandbox/calls``             every AWS call since the reset, oldest first:
                                       ``{"calls": [{"at": <Unix time>, "service", "operation"}]}``
``POST   /_sandbox/variant-health``    ``{"endpoint", "variant", "healthy": false}``: that variant's
                                       containers fail (or pass again) their ping health check
``POST   /_sandbox/ecs-service-health`` ``{"cluster", "service", "healthy": false}``: that ECS
                                       service's tasks fail (or pass again) their health check
``POST   /_sandbox/hosting``           ``{"processes": false, "instance_cap": 1}`` (either key):
                                       ``processes: false`` starts no serving process for endpoint
                                       variants and ECS tasks (they pass their health checks, and
                                       InvokeEndpoint answers that nothing serves): for tests of the
                                       control plane alone; ``instance_cap`` caps the processes per
                                       variant; a reset restores both (processes on, the start cap)
``POST   /_sandbox/images``            ``{"image": "<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"}``:
                                       register that image in the sandbox's ECR (what a docker push
                                       would do); answers its ``digest``
``GET    /_sandbox/shadow?endpoint=E``  the requests mirrored to E's shadow variant, oldest first, each
                                       with both answers (variant, status, latency_ms, body), once the
                                       copies in flight have finished: ``{"pairs", "in_flight"}``
=====================================  ==============================================================

Every error answers 400 with ``{"error": ...}`` naming the bad value, what is allowed, and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from mlflow_plugins.sandbox._faults import KINDS, Fault
from mlflow_plugins.sandbox._state import SandboxState

PREFIX = "/_sandbox/"
FAULT_KEYS = ("operation", "kind", "count", "service", "status", "code", "message", "after")


class ControlError(Exception):
    pass


class ControlApp:
    def __init__(self, state: SandboxState, reset: Callable[[], None]) -> None:
        self.state = state
        self.reset = reset
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            ("GET", "health"): lambda _: {"status": "ok", "time_scale": state.time_scale},
            ("POST", "reset"): self._reset,
            ("GET", "faults"): lambda _: {"pending": state.faults.pending(), "fired": list(state.faults.fired)},
            ("POST", "faults"): self._add_fault,
            ("DELETE", "faults"): self._clear_faults,
            ("POST", "variant-health"): self._variant_health,
            ("POST", "ecs-service-health"): self._ecs_service_health,
            ("POST", "images"): self._register_image,
            ("POST", "hosting"): self._hosting,
            ("GET", "shadow"): self._shadow_pairs,
            ("GET", "calls"): lambda _: {
                "calls": [
                    {"at": at, "service": service, "operation": operation}
                    for at, service, operation in list(state.calls)
                ]
            },
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, name = environ["REQUEST_METHOD"], environ["PATH_INFO"][len(PREFIX) :].strip("/")
        route = self.routes.get((method, name))
        if route is None:
            known = ", ".join(f"{m} {PREFIX}{n}" for m, n in self.routes)
            return _reply(start_response, 404, {"error": f"No control route {method} {PREFIX}{name}. Routes: {known}."})
        try:
            params = _body(environ)
            params.update({k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()})
            return _reply(start_response, 200, route(params))
        except ControlError as error:
            return _reply(start_response, 400, {"error": str(error)})

    def _reset(self, _: dict[str, Any]) -> dict[str, Any]:
        self.reset()
        return {"status": "reset"}

    def _add_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - set(FAULT_KEYS))
        if unknown:
            raise ControlError(f"Unknown fault key(s) {unknown}. Allowed keys: {list(FAULT_KEYS)}.")
        if not body.get("operation"):
            raise ControlError("A fault needs 'operation', an AWS operation name such as CreateEndpoint.")
        try:
            self.state.faults.add(Fault(**body))
        except (TypeError, ValueError) as error:
            raise ControlError(f"{error}. Allowed kinds: {list(KINDS)}; count is a whole number >= 1.") from None
        return {"pending": self.state.faults.pending()}

    def _clear_faults(self, _: dict[str, Any]) -> dict[str, Any]:
        self.state.faults.clear()
        return {"pending": []}

    def _variant_health(self, body: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("endpoint", "variant", "healthy") if k not in body]
        if missing or not isinstance(body.get("healthy"), bool):
            raise ControlError(
                f"variant-health needs endpoint (str), variant (str) and healthy (true|false); got {body!r}."
            )
        with self.state.lock:
            self.state.switches.set(body["endpoint"], body["variant"], body["healthy"])
        return {"endpoint": body["endpoint"], "variant": body["variant"], "healthy": body["healthy"]}

    def _ecs_service_health(self, body: dict[str, Any]) -> dict[str, Any]:
        if not {"cluster", "service", "healthy"} <= set(body) or not isinstance(body.get("healthy"), bool):
            raise ControlError(
                f"ecs-service-health needs cluster (str), service (str) and healthy (true|false); got {body!r}."
            )
        key = (body["cluster"], body["service"])
        with self.state.lock:
            if body["healthy"]:
                self.state.tasks.failing.discard(key)
            else:
                self.state.tasks.failing.add(key)
        return {"cluster": body["cluster"], "service": body["service"], "healthy": body["healthy"]}

    def _hosting(self, body: dict[str, Any]) -> dict[str, Any]:
        processes, cap = body.get("processes"), body.get("instance_cap")
        unknown = sorted(set(body) - {"processes", "instance_cap"})
        if (
            unknown
            or not body
            or (processes is not None and not isinstance(processes, bool))
            or (cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1))
        ):
            raise ControlError(
                f"hosting takes processes (true|false) and instance_cap (a whole number >= 1), at least "
                f"one of them; got {body!r}."
            )
        with self.state.lock:
            host, tasks = self.state.host, self.state.tasks
            if processes is not None:
                host.processes = tasks.processes = processes
            if cap is not None:
                host.cap = cap
            return {"processes": host.processes, "instance_cap": host.cap}

    def _shadow_pairs(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("endpoint"):
            raise ControlError("shadow needs endpoint, the name of an endpoint: GET /_sandbox/shadow?endpoint=NAME.")
        return self.state.shadow.pairs(params["endpoint"])

    def _register_image(self, body: dict[str, Any]) -> dict[str, Any]:
        from mlflow_plugins.sandbox._server import ACCOUNT_ID
        from mlflow_plugins.sandbox.sagemaker._images import ECR, REFERENCE, register

        image = body.get("image")
        match = ECR.fullmatch(image) if isinstance(image, str) else None
        reference = REFERENCE.fullmatch(match["repo"]) if match else None
        if match is None or reference is None or match["account"] != ACCOUNT_ID or reference["digest"]:
            raise ControlError(
                f"images needs image: an ECR image URI of the sandbox's account with a tag, "
                f"{ACCOUNT_ID}.dkr.ecr.<region>.amazonaws.com/<repository>[:tag]; got {image!r}."
            )
        with self.state.lock:
            digest = register(ACCOUNT_ID, match["region"], reference["name"], reference["tag"] or "latest")
        return {"image": image, "digest": digest}


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ControlError(f"The body is not JSON ({error}). Send a JSON object.") from None
    if not isinstance(body, dict):
        raise ControlError(f"The body must be a JSON object, got {type(body).__name__}.")
    return body


def _reply(start_response: Callable[..., Any], status: int, payload: Any) -> list[bytes]:
    data = json.dumps(payload, default=str).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
