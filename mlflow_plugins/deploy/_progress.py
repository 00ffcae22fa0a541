"""Progress of a wait, printed from the waiter's own DescribeEndpoint calls (a botocore event
hook): each status change and traffic step, with the elapsed time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

Say = Callable[[str], None]


class Progress:
    """Prints each status change seen by the waiter's DescribeEndpoint calls, with elapsed time."""

    def __init__(self, say: Say) -> None:
        self.say, self.last, self.started = say, None, datetime.now(timezone.utc)

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        pending = parsed.get("PendingDeploymentSummary", {}).get("ProductionVariants", [])
        steps = [s.get("StatusMessage") or s["Status"] for v in pending for s in v.get("VariantStatus", [])]
        state = (parsed.get("EndpointStatus"), tuple(steps))
        if state != self.last and parsed.get("EndpointStatus"):
            elapsed = (datetime.now(timezone.utc) - self.started).total_seconds()
            detail = f" ({'; '.join(steps)})" if steps else ""
            self.say(f"  [{elapsed:6.1f}s] {parsed['EndpointStatus']}{detail}")
            self.last = state
