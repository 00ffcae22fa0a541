"""ECS service deployments that finish, and a deployment configuration that is kept.

moto never starts a service's tasks, so the ``services_stable`` waiter (one deployment, and
``runningCount == desiredCount``) never passes. Here, as on ECS
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html):

* CreateService starts a PRIMARY deployment IN_PROGRESS with no running tasks; after the task
  start time its tasks run and its rolloutState is COMPLETED.
* UpdateService with a new task definition or ``forceNewDeployment`` starts a new PRIMARY
  deployment; the old one becomes ACTIVE and is drained when the new one completes.
* ``deploymentConfiguration`` (circuit breaker, maximum and minimum healthy percent) is kept,
  with ECS's defaults when absent.
* ``awsvpcConfiguration.securityGroups`` may be left out, as on ECS (moto requires it).

Failing tasks and circuit-breaker rollback come with the ECS target (sandbox serving).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from moto.ecs.models import ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse

from mlflow_plugins.sandbox._clock import Process, Wait
from mlflow_plugins.sandbox._state import current
from mlflow_plugins.sandbox.sagemaker._endpoint import utcnow

TASK_START_SECONDS = 60.0
DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def _deployment(service: Any) -> dict[str, Any]:
    now = utcnow()
    deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"
    return {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": service.desired_count,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "platformVersion": service.platform_version,
        "networkConfiguration": service.network_configuration or None,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
    }


def _roll_out(service: Any, deployment: dict[str, Any]):
    yield Wait(TASK_START_SECONDS, "ecs-tasks")
    if deployment["status"] != "PRIMARY":  # a newer deployment took over
        return
    deployment.update(
        runningCount=service.desired_count,
        desiredCount=service.desired_count,
        pendingCount=0,
        rolloutState="COMPLETED",
        rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
        updatedAt=utcnow(),
    )
    service.deployments = [deployment]
    service.running_count, service.pending_count = service.desired_count, 0


def _start_deployment(service: Any) -> None:
    for old in service.deployments:
        old["status"] = "ACTIVE"
    deployment = _deployment(service)
    service.deployments = [deployment] + list(service.deployments)
    Process(current().scheduler, _roll_out(service, deployment)).start()


def _backend(response: EC2ContainerServiceResponse) -> Any:
    return ecs_backends[response.current_account][response.region]


def _service(response: EC2ContainerServiceResponse, name_or_arn: str, cluster: str) -> Any:
    return _backend(response)._get_service(cluster, name_or_arn.split("/")[-1])


def install() -> None:
    cls = EC2ContainerServiceResponse
    if getattr(cls.create_service, "_sandbox_hook", False):
        return
    original_create, original_update = cls.create_service, cls.update_service

    def create_service(self: EC2ContainerServiceResponse) -> Any:
        # securityGroups is optional on ECS (the VPC's default group); moto requires it.
        awsvpc = (self._get_param("networkConfiguration") or {}).get("awsvpcConfiguration")
        if awsvpc is not None:
            awsvpc.setdefault("securityGroups", [])
        result = original_create(self)
        with current().lock:
            service = _service(self, self._get_param("serviceName"), self._get_param("cluster", "default"))
            service.deployment_configuration = copy.deepcopy(
                self._get_param("deploymentConfiguration") or DEFAULT_DEPLOYMENT_CONFIGURATION
            )
            service.running_count, service.pending_count = 0, service.desired_count
            service.deployments = []
            _start_deployment(service)
        return result

    def update_service(self: EC2ContainerServiceResponse) -> Any:
        cluster = self._get_param("cluster", "default")
        with current().lock:
            before = _service(self, self._get_param("service"), cluster)
            running, task_definition = before.running_count, before.task_definition
            result = original_update(self)
            service = _service(self, self._get_param("service"), cluster)
            # ECS reports the task definition's ARN; moto keeps the string it was given.
            service.task_definition = _backend(self).describe_task_definition(service.task_definition).arn
            if self._get_param("deploymentConfiguration"):
                service.deployment_configuration = copy.deepcopy(self._get_param("deploymentConfiguration"))
            service.running_count = running  # moto jumps straight to the new count
            if service.task_definition != task_definition or self._get_param("forceNewDeployment"):
                _start_deployment(service)
            elif self._get_param("desiredCount") is not None:
                service.deployments = [d for d in service.deployments if d["status"] == "PRIMARY"]
                primary = service.deployments[0]
                primary.update(rolloutState="IN_PROGRESS", desiredCount=service.desired_count)
                Process(current().scheduler, _roll_out(service, primary)).start()
        return result

    create_service._sandbox_hook = True  # type: ignore[attr-defined]
    cls.create_service, cls.update_service = create_service, update_service  # type: ignore[method-assign]
