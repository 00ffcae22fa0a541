"""Fault injection: make a named AWS operation fail N times, the way AWS fails.

``throttle`` answers as AWS does when a rate limit is hit (HTTP 400 with the service's
throttling code), which botocore's retry modes retry with backoff. ``5xx`` answers HTTP 500
(or the status given) with ``InternalFailure``, which botocore retries as a transient error.
A fault of kind ``error`` answers HTTP 400 with any code, which botocore does not retry.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("throttle", "5xx", "error")

# The code each protocol's services use for throttling (see botocore/retries/standard.py).
_THROTTLE_CODE = {"query": "Throttling", "smithy-rpc-v2-cbor": "Throttling", "rest-xml": "SlowDown"}
_THROTTLE_STATUS = {"rest-xml": 503}  # S3 answers SlowDown with 503


@dataclass
class Fault:
    operation: str
    kind: str = "throttle"
    count: int = 1
    service: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    after: int = 0  # let this many matching calls through first: "fail the 3rd PutObject" is after=2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not one of {', '.join(KINDS)}")
        if self.count < 1:
            raise ValueError(f"count={self.count!r} must be at least 1")
        if not isinstance(self.after, int) or self.after < 0:
            raise ValueError(f"after={self.after!r} must be a whole number >= 0")
        if self.kind == "error" and not self.code:
            raise ValueError("a fault of kind 'error' needs a code, e.g. ValidationException")

    def matches(self, service: str | None, operation: str | None) -> bool:
        return operation == self.operation and self.service in (None, service)

    def response(self, protocol: str) -> tuple[int, str, str]:
        """(HTTP status, error code, message) for this fault in ``protocol``."""
        if self.kind == "throttle":
            code = self.code or _THROTTLE_CODE.get(protocol, "ThrottlingException")
            return self.status or _THROTTLE_STATUS.get(protocol, 400), code, self.message or "Rate exceeded"
        if self.kind == "5xx":
            return (
                self.status or 500,
                self.code or "InternalFailure",
                (self.message or "The request processing has failed because of an unknown error."),
            )
        return self.status or 400, self.code or "", self.message or "Injected error"


class FaultPlan:
    """The pending faults; thread-safe. Each match uses up one of the fault's count."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: list[dict[str, Any]] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, service: str | None, operation: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(service, operation):
                    if fault.after:
                        fault.after -= 1
                        return None
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    self.fired.append({"service": service, "operation": operation, "kind": fault.kind})
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.fired.clear()
