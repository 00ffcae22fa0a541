"""A client for the sandbox's control API (``/_sandbox/...``), for tests, demos and users' CI."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class SandboxControlError(RuntimeError):
    pass


class SandboxControl:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def reset(self) -> None:
        self._call("POST", "reset")

    def calls(self) -> list[dict[str, Any]]:
        """Every AWS call since the last reset, oldest first: ``{"at", "service", "operation"}``."""
        return self._call("GET", "calls")["calls"]

    def add_fault(self, operation: str, kind: str = "throttle", count: int = 1, **extra: Any) -> list[dict[str, Any]]:
        """Make ``operation`` fail ``count`` times: kind ``throttle``, ``5xx`` or ``error``
        (with ``code=``); ``service=``, ``status=`` and ``message=`` narrow or shape it, and
        ``after=k`` lets the first ``k`` matching calls through (fail the (k+1)th)."""
        body = {"operation": operation, "kind": kind, "count": count, **extra}
        return self._call("POST", "faults", body)["pending"]

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def set_variant_health(self, endpoint: str, variant: str, healthy: bool) -> None:
        self._call("POST", "variant-health", {"endpoint": endpoint, "variant": variant, "healthy": healthy})

    def set_ecs_service_health(self, cluster: str, service: str, healthy: bool) -> None:
        """Make an ECS service's tasks fail (or pass again) their health check."""
        self._call("POST", "ecs-service-health", {"cluster": cluster, "service": service, "healthy": healthy})

    def hosting(self, processes: bool | None = None, instance_cap: int | None = None) -> dict[str, Any]:
        """Run serving processes for endpoints and ECS tasks or not (``processes=False``: they
        pass their health checks without one, for tests of the control plane alone), and cap
        the processes per variant. A reset restores both."""
        body = {k: v for k, v in (("processes", processes), ("instance_cap", instance_cap)) if v is not None}
        return self._call("POST", "hosting", body)

    def register_image(self, image: str) -> str:
        """Register ``<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag]`` in the
        sandbox's ECR, as a ``docker push`` would; returns its digest."""
        return self._call("POST", "images", {"image": image})["digest"]

    def shadow_pairs(self, endpoint: str) -> list[dict[str, Any]]:
        """The requests mirrored to ``endpoint``'s shadow variant, each with the production and
        the shadow answer (``variant``, ``status``, ``latency_ms``, ``content_type``, ``body``),
        once the copies in flight have finished."""
        return self._call("GET", f"shadow?endpoint={urllib.parse.quote(endpoint)}")["pairs"]

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}/_sandbox/{route}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as reply:
                return json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}").get("error", error.reason)
            raise SandboxControlError(f"{method} /_sandbox/{route} failed ({error.code}): {detail}") from None
