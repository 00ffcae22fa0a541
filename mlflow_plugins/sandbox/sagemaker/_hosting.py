"""The seam between the endpoint lifecycle and whatever runs a variant's container.

The lifecycle asks a :class:`VariantHost` to launch a fleet when provisioning starts, to scale a
variant to a number of instances (rolling batches, capacity changes), to check it after the
provisioning time has passed (the ping health check), and to stop it when the fleet is retired.
:class:`~._serving_host.ServingHost` implements it with one serving-runtime process per instance.
"""

from __future__ import annotations

from typing import Protocol

from mlflow_plugins.sandbox.sagemaker._endpoint import Fleet, Variant

PENDING = "pending"  # check(): the containers have not answered their health check yet


class VariantHost(Protocol):
    def launch(self, endpoint: str, fleet: Fleet) -> None:
        """Start the fleet's containers; must not block on them becoming healthy."""

    def scale(self, endpoint: str, fleet: Fleet, variant: Variant, count: int) -> None:
        """Run ``count`` instances of the variant (within the host's cap); must not block."""

    def check(self, endpoint: str, fleet: Fleet) -> str | None:
        """``None`` when every variant passes its health check, :data:`PENDING` while they
        start, else the FailureReason. Must answer quickly (it runs under the sandbox lock)."""

    def stop(self, endpoint: str, fleet: Fleet) -> None:
        """Stop the fleet's containers; stopping a fleet twice is harmless."""

    def stop_all(self) -> None:
        """Stop everything (reset, shutdown)."""


class HealthSwitches:
    """Which (endpoint, variant) containers the control API makes fail their health check."""

    def __init__(self) -> None:
        self._failing: set[tuple[str, str]] = set()

    def set(self, endpoint: str, variant: str, healthy: bool) -> None:
        key = (endpoint, variant)
        if healthy:
            self._failing.discard(key)
        else:
            self._failing.add(key)

    def failing(self, endpoint: str, variant: str) -> bool:
        return (endpoint, variant) in self._failing

    def clear(self) -> None:
        self._failing.clear()


def health_failure(endpoint: str, variant: str) -> str:
    """The FailureReason SageMaker gives when a container fails its ping health check."""
    return (
        f"The primary container for production variant {variant} did not pass the ping "
        f"health check. Please check CloudWatch logs for this endpoint ({endpoint})."
    )
