"""Waiting for an ECS deployment to settle, with progress, and finding out why one failed.

botocore's ``services_stable`` waiter passes once a service has one deployment running its
desired count, which is also true after the circuit breaker rolled a failed deployment back: a
caller that trusts it reports a rollback as a success. Here the waiter watches one deployment
by its id, built per call from a botocore waiter model over DescribeServices: it stops when that
deployment is COMPLETED (and alone), FAILED, or gone. Progress (each change of the deployment's
counts and every new service event) is printed by a hook on the waiter's own DescribeServices
calls, as for SageMaker.

Why a deployment failed comes from ECS itself: the deployment's ``rolloutStateReason``, its last
stopped task's ``stoppedReason`` and exit code, and the last lines of that task's log stream.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from botocore.waiter import WaiterModel, create_waiter_with_client

from mlflow_plugins.deploy.common.progress import Say, wait_delay
from mlflow_plugins.deploy.ecs._spec import CONTAINER, STREAM_PREFIX

LOG_LINES = 5


def _deployment_waiter(ecs: Any, deployment_id: str, timeout_seconds: int) -> Any:
    delay = wait_delay()
    mine = f"services[0].deployments[?id=='{deployment_id}'"  # closed with "]" (or "&& ...]") below
    model = WaiterModel(
        {
            "version": 2,
            "waiters": {
                "DeploymentSettled": {
                    "operation": "DescribeServices",
                    "delay": delay,
                    "maxAttempts": max(math.ceil(timeout_seconds / delay), 1),
                    "acceptors": [
                        {
                            "matcher": "path",
                            "state": "success",
                            "expected": True,
                            "argument": f"length({mine} && rolloutState=='COMPLETED']) == `1` && length(services[0].deployments) == `1`",
                        },
                        {
                            "matcher": "path",
                            "state": "success",
                            "expected": True,
                            "argument": f"length({mine} && rolloutState=='FAILED']) == `1`",
                        },
                        {
                            "matcher": "path",
                            "state": "success",
                            "expected": True,
                            "argument": f"length({mine}]) == `0`",
                        },
                        {
                            "matcher": "pathAny",
                            "state": "failure",
                            "expected": "MISSING",
                            "argument": "failures[].reason",
                        },
                        {
                            "matcher": "pathAny",
                            "state": "failure",
                            "expected": "DRAINING",
                            "argument": "services[].status",
                        },
                        {
                            "matcher": "pathAny",
                            "state": "failure",
                            "expected": "INACTIVE",
                            "argument": "services[].status",
                        },
                    ],
                }
            },
        }
    )
    return create_waiter_with_client("DeploymentSettled", model, ecs)


class Progress:
    """Prints the watched deployment's counts when they change, and each new service event."""

    def __init__(self, say: Say, deployment_id: str, since: datetime | None = None) -> None:
        self.say, self.deployment_id = say, deployment_id
        self.started = datetime.now(timezone.utc)
        self.since = since or self.started
        self.seen: set[str] = set()
        self.last: tuple[Any, ...] | None = None

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        services = parsed.get("services") or []
        if not services:
            return
        elapsed = (datetime.now(timezone.utc) - self.started).total_seconds()
        for event in reversed(services[0].get("events") or []):
            created = event.get("createdAt")
            if event["id"] not in self.seen and (created is None or created >= self.since):
                self.seen.add(event["id"])
                self.say(f"  [{elapsed:6.1f}s] {event['message']}")
        for deployment in services[0].get("deployments") or []:
            if deployment["id"] != self.deployment_id:
                continue
            state = (
                deployment.get("rolloutState"),
                deployment.get("runningCount"),
                deployment.get("pendingCount"),
                deployment.get("failedTasks"),
            )
            if state != self.last:
                self.last = state
                self.say(
                    f"  [{elapsed:6.1f}s] {deployment['id']} {state[0]}: {state[1]}/{deployment.get('desiredCount')} "
                    f"running, {state[2]} pending, {state[3]} failed"
                )


def wait_for_deployment(
    ecs: Any,
    cluster: str,
    service: str,
    deployment_id: str,
    timeout_seconds: int,
    say: Say,
    since: datetime | None = None,
) -> dict[str, Any]:
    """Wait until the deployment settles; the service as last described. Raises the waiter's
    ``WaiterError`` on a timeout or when the service goes away."""
    progress = Progress(say, deployment_id, since)
    events = ecs.meta.events
    events.register("after-call.ecs.DescribeServices", progress)
    try:
        _deployment_waiter(ecs, deployment_id, timeout_seconds).wait(cluster=cluster, services=[service])
    finally:
        events.unregister("after-call.ecs.DescribeServices", progress)
    return ecs.describe_services(cluster=cluster, services=[service])["services"][0]


def deployment_of(service: dict[str, Any], deployment_id: str) -> dict[str, Any] | None:
    return next((d for d in service.get("deployments") or [] if d["id"] == deployment_id), None)


def why_tasks_failed(ecs: Any, logs: Any, cluster: str, deployment_id: str) -> str:
    """The last stopped task of a deployment: its stoppedReason, exit code and last log lines."""
    arns = ecs.list_tasks(cluster=cluster, startedBy=deployment_id, desiredStatus="STOPPED")["taskArns"]
    if not arns:
        return ""
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns[-100:])["tasks"]
    task = max(tasks, key=lambda t: t.get("stoppedAt") or t.get("createdAt") or 0)
    container = (task.get("containers") or [{}])[0]
    exit_code = f" (exit code {container['exitCode']})" if container.get("exitCode") is not None else ""
    detail = f" Last stopped task {task['taskArn'].split('/')[-1]}: {task.get('stoppedReason', 'stopped')}{exit_code}."
    lines = _log_tail(ecs, logs, task)
    return detail + (f" Its last log lines: {' | '.join(lines)}" if lines else "")


def _log_tail(ecs: Any, logs: Any, task: dict[str, Any]) -> list[str]:
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    options = (definition["containerDefinitions"][0].get("logConfiguration") or {}).get("options") or {}
    if "awslogs-group" not in options:
        return []
    stream = f"{options.get('awslogs-stream-prefix', STREAM_PREFIX)}/{CONTAINER}/{task['taskArn'].split('/')[-1]}"
    try:
        found = logs.get_log_events(
            logGroupName=options["awslogs-group"], logStreamName=stream, limit=LOG_LINES, startFromHead=False
        )["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"] for event in found]
