"""Endpoint lifecycles as processes: create, blue/green and rolling updates, rollback, delete.

Each body is a generator that yields simulated waits (see :mod:`.._clock`). The steps follow
SageMaker's deployment guardrails documentation
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails.html):

* blue/green: provision the new fleet; shift traffic (ALL_AT_ONCE, CANARY or LINEAR), baking
  ``WaitIntervalInSeconds`` after each step (CANARY and LINEAR: not after the final step);
  wait ``TerminationWaitInSeconds``; retire the old fleet.
* rolling: per batch of ``MaximumBatchSize`` instances, provision new instances, move their share
  of traffic, bake ``WaitIntervalInSeconds``, retire the same number of old instances (the host
  starts and stops their processes batch by batch).
* auto-rollback: any alarm of ``AutoRollbackConfiguration`` in ALARM at any point of the
  deployment, or ``MaximumExecutionTimeoutInSeconds`` passing, rolls back to the old fleet.

Where the sandbox and AWS may differ:
* While rolling back, the endpoint reports ``RollingBack``; AWS's EndpointStatus reference
  ties that status to weight/capacity changes and may report ``Updating`` instead. Either way
  it ends ``InService`` on the old config with ``FailureReason`` set, as here.
* Durations are simulated (:class:`Timings`, scaled by the sandbox's time scale).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from mlflow_plugins.sandbox._clock import Process, Scheduler, Wait
from mlflow_plugins.sandbox.sagemaker._endpoint import Fleet, SandboxEndpoint, utcnow
from mlflow_plugins.sandbox.sagemaker._hosting import PENDING, VariantHost

Body = Generator[Wait, None, None]


@dataclass(frozen=True)
class Timings:
    """Simulated seconds for each lifecycle step, before the sandbox's time scale."""

    create: float = 240.0
    provision: float = 180.0
    delete: float = 30.0
    rollback: float = 60.0


class RollbackTrigger(Exception):
    """Something that makes a deployment roll back; ``str()`` is the FailureReason."""


class AlarmTripped(RollbackTrigger):
    def __init__(self, alarms: list[str]) -> None:
        super().__init__(
            f"Deployment rolled back: CloudWatch alarm(s) {', '.join(sorted(alarms))} "
            "entered ALARM state during the deployment."
        )
        self.alarms = alarms


class DeploymentTimedOut(RollbackTrigger):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"Deployment rolled back: it exceeded MaximumExecutionTimeoutInSeconds={seconds:g}.")


class HealthCheckFailed(RollbackTrigger):
    pass


class Guard:
    """Auto-rollback for one deployment: trips once, and only while armed."""

    def __init__(self, account: str, region: str, alarms: list[str]) -> None:
        self.account, self.region = account, region
        self.alarms = list(alarms)
        self.armed = True
        self.process: Process | None = None
        self._deadline: tuple[Scheduler, float, float, int] | None = None  # scheduler, due, limit, timer

    def start_deadline(self, scheduler: Scheduler, seconds: float) -> None:
        """Roll back once ``seconds`` of simulated deployment time have passed."""
        due = time.monotonic() + seconds * scheduler.time_scale
        self._deadline = (scheduler, due, seconds, self._schedule(scheduler, due, seconds))

    def extend(self, seconds: float) -> None:
        """Move the deadline back: real time spent waiting for containers to start is not
        simulated deployment time."""
        if self._deadline is None:
            return
        scheduler, due, limit, timer = self._deadline
        scheduler.cancel(timer)
        due += seconds * scheduler.time_scale
        self._deadline = (scheduler, due, limit, self._schedule(scheduler, due, limit))

    def _schedule(self, scheduler: Scheduler, due: float, limit: float) -> int:
        remaining = max(due - time.monotonic(), 0.0) / max(scheduler.time_scale, 1e-9)
        return scheduler.call_later(remaining, lambda: self.trip(DeploymentTimedOut(limit)))

    def trip(self, error: RollbackTrigger) -> None:
        if self.armed and self.process is not None and not self.process.done:
            self.armed = False
            self.process.interrupt(error)


@dataclass
class Lifecycle:
    """What the bodies need: the clock, the host that runs variants, and alarm states."""

    scheduler: Scheduler
    host: VariantHost
    timings: Timings
    alarms_in_alarm: Callable[[str, str, list[str]], list[str]]

    def run(self, endpoint: SandboxEndpoint, body: Body) -> Process:
        if endpoint.process is not None and not endpoint.process.done:
            endpoint.process.cancel()
        endpoint.process = Process(self.scheduler, body).start()
        guard = getattr(endpoint, "guard", None)
        if guard is not None:
            guard.process = endpoint.process
        return endpoint.process

    def healthy(self, endpoint: SandboxEndpoint, fleet: Fleet) -> Generator[Wait, None, str | None]:
        """Ping the fleet's containers until they answer, as SageMaker does; the FailureReason
        or ``None``. Pings are at least 50 ms of real time apart, whatever the time scale."""
        guard = getattr(endpoint, "guard", None)
        while (status := self.host.check(endpoint.endpoint_name, fleet)) == PENDING:
            pause = max(5.0, 0.05 / max(self.scheduler.time_scale, 1e-9))
            if guard is not None:
                guard.extend(pause)
            yield Wait(pause, "ping")
        return status

    def bake(self, guard: Guard | None, seconds: float) -> Body:
        """Wait ``seconds`` while the guard's alarms are watched (an alarm already in ALARM
        trips at once)."""
        if guard is not None:
            tripped = self.alarms_in_alarm(guard.account, guard.region, guard.alarms)
            if tripped:
                guard.armed = False
                raise AlarmTripped(tripped)
        if seconds > 0:
            yield Wait(seconds, "bake")


def create_body(life: Lifecycle, ep: SandboxEndpoint, fleet: Fleet) -> Body:
    ep.pending, ep.pending_start = fleet, utcnow()
    fleet.set_status("Creating")
    life.host.launch(ep.endpoint_name, fleet)
    yield Wait(life.timings.create, "create")
    failure = yield from life.healthy(ep, fleet)
    if failure:
        life.host.stop(ep.endpoint_name, fleet)
        fleet.set_status(None)
        ep.set_status("Failed", failure)
        return
    _go_live(ep, fleet)
    ep.set_status("InService")


def blue_green_body(
    life: Lifecycle, ep: SandboxEndpoint, new: Fleet, policy: dict[str, Any], guard: Guard | None
) -> Body:
    old = _begin_update(ep, new)
    routing = policy["TrafficRoutingConfiguration"]
    try:
        yield from _provision(life, ep, new, guard)
        steps = traffic_steps(routing, new)
        for index, share in enumerate(steps):
            _shift(old, new, share)
            new.set_status("ActivatingTraffic", f"{share:.0%} of traffic on the new fleet")
            final = index == len(steps) - 1
            if not final or routing["Type"] == "ALL_AT_ONCE":
                new.set_status("Baking", f"{share:.0%} of traffic on the new fleet")
                yield from life.bake(guard, routing.get("WaitIntervalInSeconds", 0))
        new.set_status("Baking", "Waiting before terminating the old fleet")
        yield from life.bake(guard, policy.get("TerminationWaitInSeconds", 0))
    except RollbackTrigger as why:
        yield from _roll_back(life, ep, old, new, guard, str(why))
        return
    _complete(life, ep, old, new, guard)


def rolling_body(life: Lifecycle, ep: SandboxEndpoint, new: Fleet, policy: dict[str, Any], guard: Guard | None) -> Body:
    """Rolling update of a single-variant instance endpoint (AWS excludes the others)."""
    old = _begin_update(ep, new)
    old_variant, new_variant = old.variants[0], new.variants[0]
    batch = capacity_in_instances(policy["MaximumBatchSize"], new_variant.desired_count)
    try:
        for shadow in new.shadow_variants:
            life.host.scale(ep.endpoint_name, new, shadow, shadow.desired_count)
        while new_variant.current_count < new_variant.desired_count:
            step = min(batch, new_variant.desired_count - new_variant.current_count)
            new.set_status("Creating", f"Provisioning a batch of {step} instance(s)")
            life.host.scale(ep.endpoint_name, new, new_variant, new_variant.current_count + step)
            yield Wait(life.timings.provision, "provision")
            yield from _require_healthy(life, ep, new)
            new_variant.current_count += step
            old_variant.current_count = max(old_variant.current_count - step, 0)
            life.host.scale(ep.endpoint_name, old, old_variant, old_variant.current_count)
            _shift(old, new, new_variant.current_count / new_variant.desired_count)
            new.set_status("Baking", f"{new_variant.current_count} new instance(s) in service")
            yield from life.bake(guard, policy["WaitIntervalInSeconds"])
    except RollbackTrigger as why:
        yield from _roll_back(life, ep, old, new, guard, str(why))
        return
    _complete(life, ep, old, new, guard)


def delete_body(life: Lifecycle, ep: SandboxEndpoint, on_deleted: Callable[[], None]) -> Body:
    ep.set_status("Deleting")
    yield Wait(life.timings.delete, "delete")
    for fleet in (ep.live, ep.pending):
        if fleet is not None:
            life.host.stop(ep.endpoint_name, fleet)
    on_deleted()


def traffic_steps(routing: dict[str, Any], fleet: Fleet) -> list[float]:
    """The new fleet's share of traffic after each shift step."""
    kind = routing["Type"]
    if kind == "ALL_AT_ONCE":
        return [1.0]
    capacity = fleet_capacity(fleet)
    if kind == "CANARY":
        return [capacity_fraction(routing["CanarySize"], capacity), 1.0]
    step = capacity_fraction(routing["LinearStepSize"], capacity)
    count = math.ceil(round(1 / step, 9))
    return [min(1.0, step * (i + 1)) for i in range(count)]


def fleet_capacity(fleet: Fleet) -> int:
    return sum(v.desired_count for v in fleet.variants) or 1


def capacity_fraction(size: dict[str, Any], capacity: int) -> float:
    if size["Type"] == "INSTANCE_COUNT":
        return min(size["Value"] / capacity, 1.0)
    return min(size["Value"] / 100.0, 1.0)


def capacity_in_instances(size: dict[str, Any], instances: int) -> int:
    if size["Type"] == "INSTANCE_COUNT":
        return max(int(size["Value"]), 1)
    return max(math.ceil(instances * size["Value"] / 100.0), 1)


def _begin_update(ep: SandboxEndpoint, new: Fleet) -> Fleet:
    assert ep.live is not None, "an update needs a live fleet"
    ep.pending, ep.pending_start = new, utcnow()
    ep.set_status("Updating")
    return ep.live


def _provision(life: Lifecycle, ep: SandboxEndpoint, new: Fleet, guard: Guard | None) -> Body:
    new.set_status("Creating")
    life.host.launch(ep.endpoint_name, new)
    yield Wait(life.timings.provision, "provision")
    yield from _require_healthy(life, ep, new)
    for variant in new.all_variants():
        variant.current_count = variant.desired_count


def _require_healthy(life: Lifecycle, ep: SandboxEndpoint, fleet: Fleet) -> Body:
    failure = yield from life.healthy(ep, fleet)
    if failure:
        raise HealthCheckFailed(f"Deployment rolled back: {failure}")


def _shift(old: Fleet, new: Fleet, share: float) -> None:
    new.traffic_share, old.traffic_share = share, 1.0 - share


def _roll_back(life: Lifecycle, ep: SandboxEndpoint, old: Fleet, new: Fleet, guard: Guard | None, reason: str) -> Body:
    if guard is not None:
        guard.armed = False
    ep.set_status("RollingBack")
    _shift(old, new, 0.0)
    new.set_status("Deleting", "Rolling back to the previous endpoint configuration")
    yield Wait(life.timings.rollback, "rollback")
    life.host.stop(ep.endpoint_name, new)
    for variant in old.all_variants():
        variant.go_live()
        life.host.scale(ep.endpoint_name, old, variant, variant.desired_count)  # a rolling update retired some
    ep.pending = None
    ep.set_status("InService", reason)


def _complete(life: Lifecycle, ep: SandboxEndpoint, old: Fleet, new: Fleet, guard: Guard | None) -> None:
    if guard is not None:
        guard.armed = False
    life.host.stop(ep.endpoint_name, old)
    _go_live(ep, new)
    ep.set_status("InService")


def _go_live(ep: SandboxEndpoint, fleet: Fleet) -> None:
    for variant in fleet.all_variants():
        variant.go_live()
    fleet.traffic_share = 1.0
    ep.live, ep.pending, ep.pending_start = fleet, None, None
