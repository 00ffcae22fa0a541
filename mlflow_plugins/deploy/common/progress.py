"""Progress for the user: a wait, printed from the waiter's own DescribeEndpoint calls (a botocore
event hook: each status change and traffic step, with the elapsed time), and an upload's bar."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

Say = Callable[[str], None]
WAIT_DELAY_ENV = "MLFLOW_SAGEMAKER_OPS_WAIT_DELAY"  # seconds between a waiter's polls


def wait_delay() -> float:
    """Seconds between a waiter's polls: ``MLFLOW_SAGEMAKER_OPS_WAIT_DELAY``, or 15 as botocore's
    SageMaker waiters use (0.1 in tests and the demo, whose sandbox runs on a scaled clock)."""
    return float(os.environ.get(WAIT_DELAY_ENV, "15"))


class Progress:
    """Prints each status change of endpoint ``name`` seen by DescribeEndpoint calls, with the
    elapsed time. The hook sits on a client that other threads share (the controller deploys
    several endpoints at once), so it ignores every other endpoint's answers."""

    def __init__(self, say: Say, name: str) -> None:
        self.say, self.name, self.started = say, name, datetime.now(timezone.utc)
        self.last: tuple[Any, ...] | None = None
        self.seen: dict[str, Any] | None = None  # the last answer read for this endpoint
        self.thread = threading.get_ident()

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        if parsed.get("EndpointName") != self.name:
            if "Error" in parsed:  # an error answer to this thread's call (the endpoint is gone)
                self.seen = None
            return
        self.seen = parsed
        pending = parsed.get("PendingDeploymentSummary", {}).get("ProductionVariants", [])
        steps = [s.get("StatusMessage") or s["Status"] for v in pending for s in v.get("VariantStatus", [])]
        state = (parsed.get("EndpointStatus"), tuple(steps))
        if state != self.last and parsed.get("EndpointStatus"):
            elapsed = (datetime.now(timezone.utc) - self.started).total_seconds()
            detail = f" ({'; '.join(steps)})" if steps else ""
            self.say(f"  [{elapsed:6.1f}s] {self.name} {parsed['EndpointStatus']}{detail}")
            self.last = state


class UploadBar:
    """An upload's progress bar, fed by boto3's transfer ``Callback`` (called from its threads
    with the bytes sent since the last call). On a terminal it redraws one line; otherwise it
    prints a line at each quarter, so logs stay readable."""

    WIDTH = 24

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label, self.total, self.sent = label, max(total, 1), 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.step = 2 if self.tty else 25
        self.shown = -1
        self.lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self.lock:
            self.sent = min(self.sent + sent, self.total)
            percent = self.sent * 100 // self.total
            mark = percent - percent % self.step  # 100 is a mark of its own
            if mark == self.shown:
                return
            self.shown = mark
            filled = self.WIDTH * percent // 100
            line = (
                f"  uploading {self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}% "
                f"{self.sent / 1e6:.1f}/{self.total / 1e6:.1f} MB"
            )
            if self.tty:
                self.stream.write("\r" + line + ("\n" if percent == 100 else ""))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
