"""ECS services whose tasks run, deployments that finish or fail, and the circuit breaker.

moto never starts a service's tasks, so its deployments never finish and nothing can be
invoked. Here, following the ECS API reference (``Deployment``, ``DeploymentCircuitBreaker``,
``Task``) and the Developer Guide ("Rolling update", "How the deployment circuit breaker detects
failures"):

* CreateService starts a PRIMARY deployment IN_PROGRESS. After a provisioning time its tasks
  start (:mod:`._ecs_tasks`: one serving-runtime process per task) and are checked every
  ``CHECK_SECONDS``; a task that passes its health check is RUNNING and, with a load balancer,
  registered in the target group. When the deployment's desired count is running and healthy,
  its rolloutState is COMPLETED and the older deployments' tasks are stopped.
* A task that stops or fails its health check counts as a failed task and is replaced. With
  the circuit breaker on, once the failures reach the threshold (half the desired count,
  at least 3 and at most 200; a task that becomes healthy resets the count, ECS's default
  ``resetOnHealthyTask``), the deployment is FAILED with "ECS deployment circuit breaker: tasks
  failed to start."; with rollback on, a new PRIMARY deployment of the last completed
  deployment's task definition starts. Without the breaker ECS keeps retrying, and so does
  the sandbox.
* UpdateService with a new task definition or ``forceNewDeployment`` starts a new deployment;
  a new desired count alone is applied to the primary one.
* DeleteService makes the service DRAINING, stops its tasks, and INACTIVE after a drain time;
  ListServices leaves INACTIVE services out. CreateService refuses a name that is ACTIVE ("not
  idempotent") or DRAINING, as ECS does; moto silently replaces the service.
* ListTasks filters by ``serviceName`` and defaults to ``desiredStatus=RUNNING``, as ECS does.
* ``deploymentConfiguration`` is kept, with ECS's defaults when absent, and
  ``awsvpcConfiguration.securityGroups`` may be left out (moto requires it).
* Service events are written as ECS words them ("has started 1 tasks", "has reached a steady
  state", "deployment failed: tasks failed to start", "rolling back to deployment").

Where the sandbox differs from ECS: new tasks start beside the old ones whatever the
percentages (the old tasks stop when the new deployment completes); a load balancer's health
check is the container's ``GET /ping`` too; the times are simulated (scaled), but a task's
process start takes real time.
"""

from __future__ import annotations

import copy
import math
import uuid
from typing import Any

from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, Task, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse

from mlflow_plugins.sandbox._clock import Process, Wait
from mlflow_plugins.sandbox._ecs_tasks import HEALTHY
from mlflow_plugins.sandbox._state import current
from mlflow_plugins.sandbox.sagemaker._endpoint import utcnow

PROVISION_SECONDS = 30.0  # Fargate: PROVISIONING -> PENDING before the container starts
CHECK_SECONDS = 10.0  # between health evaluations of a deployment's tasks
DRAIN_SECONDS = 30.0  # DRAINING -> INACTIVE after DeleteService
DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."


def failure_threshold(desired: int) -> int:
    return min(max(math.ceil(0.5 * desired), 3), 200)


def _event(service: Any, message: str) -> None:
    service.events.insert(
        0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": f"(service {service.name}) {message}"}
    )
    del service.events[100:]


def _new_deployment(service: Any, task_definition: str, reason: str | None = None) -> dict[str, Any]:
    now = utcnow()
    deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"
    return {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "platformVersion": service.platform_version,
        "networkConfiguration": service.network_configuration or None,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": reason or f"ECS deployment {deployment_id} in progress.",
    }


class ServiceRollout:
    """Drives one service's deployments; kept on the moto service as ``sandbox_rollout``."""

    def __init__(self, backend: EC2ContainerServiceBackend, service: Any) -> None:
        self.backend, self.service = backend, service
        self.tasks: dict[str, list[Task]] = {}  # deployment id -> its tasks (running or not)
        self.completed: tuple[str, str] | None = None  # (deployment id, task definition) last completed
        self.rollbacks: set[str] = set()  # deployments started by a rollback: a failed one is not rolled back again
        self.processes: list[Process] = []

    # ---- deployments -----------------------------------------------------------------
    def start(self, task_definition: str, reason: str | None = None) -> dict[str, Any]:
        for old in self.service.deployments:
            old["status"] = "ACTIVE"
        deployment = _new_deployment(self.service, task_definition, reason)
        self.service.deployments = [deployment] + list(self.service.deployments)
        self.tasks[deployment["id"]] = []
        process = Process(current().scheduler, self._run(deployment))
        self.processes.append(process)
        process.start()
        return deployment

    def rescale(self) -> None:
        """A new desired count alone: the primary deployment converges to it."""
        primary = self.service.deployments[0]
        primary.update(desiredCount=self.service.desired_count, updatedAt=utcnow())
        if primary["rolloutState"] == "IN_PROGRESS":
            return  # its loop reads the new desired count
        primary["rolloutState"] = "IN_PROGRESS"
        process = Process(current().scheduler, self._run(primary, provision=False))
        self.processes.append(process)
        process.start()

    def _run(self, deployment: dict[str, Any], provision: bool = True):
        if provision:
            yield Wait(PROVISION_SECONDS, "ecs-provision")
        strikes = 0  # the breaker's count: reset when a task becomes healthy
        while deployment["status"] == "PRIMARY" and self.service.status == "ACTIVE":
            desired = self.service.desired_count
            deployment["desiredCount"] = desired
            live, healthy = [], 0
            for task in self.tasks[deployment["id"]]:
                if task.last_status == "STOPPED":
                    continue
                health = current().tasks.health(task.id, self.service.cluster_name, self.service.name)
                if health.state == "STOPPED":
                    self._stop(task, health.reason, health.exit_code, "TaskFailedToStart")
                    deployment["failedTasks"] += 1
                    strikes += 1
                    continue
                live.append(task)
                if health.state == HEALTHY:
                    if task.last_status != "RUNNING":
                        self._running(task)
                        strikes = 0
                    healthy += 1
            breaker = self.service.deployment_configuration.get("deploymentCircuitBreaker") or {}
            if breaker.get("enable") and strikes >= failure_threshold(desired):
                self._trip(deployment, bool(breaker.get("rollback")))
                return
            for task in live[desired:]:  # scaled in
                self._stop(
                    task,
                    f"Scaling activity initiated by (deployment {deployment['id']})",
                    None,
                    "ServiceSchedulerInitiated",
                )
            live = live[:desired]
            started = [self._launch(deployment) for _ in range(desired - len(live))]
            if started:
                _event(
                    self.service, f"has started {len(started)} tasks: {' '.join(f'(task {t.id})' for t in started)}."
                )
            healthy = min(healthy, desired)
            deployment.update(runningCount=healthy, pendingCount=desired - healthy, updatedAt=utcnow())
            self._count()
            if healthy == desired:
                self._complete(deployment)
                return
            yield Wait(CHECK_SECONDS, "ecs-health")

    def _complete(self, deployment: dict[str, Any]) -> None:
        for old in self.service.deployments:
            if old is not deployment:
                self._stop_tasks(old, f"Scaling activity initiated by (deployment {deployment['id']})")
        deployment.update(
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
            updatedAt=utcnow(),
        )
        self.service.deployments = [deployment]
        self.completed = (deployment["id"], deployment["taskDefinition"])
        self._count()
        _event(self.service, f"deployment {deployment['id']} completed.")
        _event(self.service, "has reached a steady state.")

    def _trip(self, deployment: dict[str, Any], rollback: bool) -> None:
        self._stop_tasks(deployment, f"Task stopped by the circuit breaker of (deployment {deployment['id']})")
        deployment.update(
            rolloutState="FAILED", rolloutStateReason=BREAKER_REASON, runningCount=0, pendingCount=0, updatedAt=utcnow()
        )
        _event(self.service, f"(deployment {deployment['id']}) deployment failed: tasks failed to start.")
        if rollback and self.completed is not None and deployment["id"] not in self.rollbacks:
            target_id, task_definition = self.completed
            self.service.task_definition = task_definition
            _event(self.service, f"rolling back to deployment {target_id}.")
            started = self.start(
                task_definition, f"ECS deployment circuit breaker: rolling back to deploymentId {target_id}."
            )
            self.rollbacks.add(started["id"])
        self._count()

    # ---- tasks -----------------------------------------------------------------------
    def _launch(self, deployment: dict[str, Any]) -> Task:
        state = current()
        definition = self.backend.describe_task_definition(deployment["taskDefinition"])
        cluster = self.backend._get_cluster(self.service.cluster_name)
        task = Task(
            cluster,
            definition,
            None,
            None,
            backend=self.backend,
            group=f"service:{self.service.name}",
            launch_type=self.service.launch_type or "FARGATE",
            started_by=deployment["id"],
            networking_configuration=self.service.network_configuration or None,
            platform_version=self.service.platform_version,
        )
        task._transitions = []  # moto advances a task's state on every DescribeTasks; these move only here
        task.last_status, task.health_status, task.created_at = "PROVISIONING", "UNKNOWN", utcnow()
        self.backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        self.tasks[deployment["id"]].append(task)
        container = definition.container_definitions[0]
        process = state.tasks.start(
            task.id, container, state.task_env(self.service.region_name), refused=state.logs.missing_group(container)
        )
        for detail in task.attachments[0]["details"] if task.attachments else []:
            if detail["name"] == "privateIPv4Address":
                detail["value"] = process.ip
        task.containers[0].network_interfaces = [
            {"attachmentId": task.attachments[0]["id"] if task.attachments else "", "privateIpv4Address": process.ip}
        ]
        task.last_status = "PENDING"
        return task

    def _running(self, task: Task) -> None:
        task.last_status, task.health_status, task.started_at = "RUNNING", "HEALTHY", utcnow()
        task.containers[0].last_status, task.containers[0].health_status = "RUNNING", "HEALTHY"
        for balancer in self.service.load_balancers or []:
            _register_target(self.service, balancer, current().tasks.tasks[task.id])

    def _stop(self, task: Task, reason: str, exit_code: int | None, stop_code: str) -> None:
        process = current().tasks.tasks.get(task.id)
        if process is not None:
            for balancer in self.service.load_balancers or []:
                _deregister_target(self.service, balancer, process)
        current().tasks.stop(task.id)
        task.last_status = task.desired_status = "STOPPED"
        task.stopped_reason, task.stop_code, task.stopped_at = reason, stop_code, utcnow()
        task.health_status = "UNHEALTHY" if stop_code == "TaskFailedToStart" else task.health_status
        task.containers[0].last_status = "STOPPED"
        if exit_code is not None:
            task.containers[0].exitCode = exit_code
        if stop_code == "TaskFailedToStart":
            _event(self.service, f"(task {task.id}) failed to start: {reason}.")

    def _stop_tasks(self, deployment: dict[str, Any], reason: str) -> None:
        for task in self.tasks.get(deployment["id"], []):
            if task.last_status != "STOPPED":
                self._stop(task, reason, None, "ServiceSchedulerInitiated")

    def stop_all(self, reason: str) -> None:
        for process in self.processes:
            process.cancel()
        for deployment in self.service.deployments:
            self._stop_tasks(deployment, reason)
        self._count()

    def _count(self) -> None:
        running = [t for ts in self.tasks.values() for t in ts if t.last_status == "RUNNING"]
        pending = [t for ts in self.tasks.values() for t in ts if t.last_status in ("PROVISIONING", "PENDING")]
        self.service.running_count, self.service.pending_count = len(running), len(pending)


def _register_target(service: Any, balancer: dict[str, Any], process: Any) -> None:
    elbv2 = _elbv2(service)
    if process is not None and balancer.get("targetGroupArn") in elbv2.target_groups:
        elbv2.register_targets(balancer["targetGroupArn"], [{"Id": process.ip, "Port": process.port}])


def _deregister_target(service: Any, balancer: dict[str, Any], process: Any) -> None:
    elbv2 = _elbv2(service)
    if balancer.get("targetGroupArn") in elbv2.target_groups:
        elbv2.deregister_targets(balancer["targetGroupArn"], [{"Id": process.ip, "Port": process.port}])


def _elbv2(service: Any) -> Any:
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[service._account_id][service.region_name]


def _backend(response: EC2ContainerServiceResponse) -> Any:
    return ecs_backends[response.current_account][response.region]


def _service(response: EC2ContainerServiceResponse, name_or_arn: str, cluster: str) -> Any:
    return _backend(response)._get_service(cluster, name_or_arn.split("/")[-1])


def rollout(service: Any) -> ServiceRollout | None:
    return getattr(service, "sandbox_rollout", None)


class _ServiceNotActive(InvalidParameterException):
    code = "ServiceNotActiveException"

    def __init__(self) -> None:
        super().__init__("Service was not ACTIVE.")


def install() -> None:
    cls = EC2ContainerServiceResponse
    if getattr(cls.create_service, "_sandbox_hook", False):
        return
    original_create, original_update, original_delete = cls.create_service, cls.update_service, cls.delete_service

    def create_service(self: EC2ContainerServiceResponse) -> Any:
        _default_security_groups(self)
        cluster, name = self._get_param("cluster", "default"), self._get_param("serviceName")
        with current().lock:
            existing = _backend(self).services.get(f"{cluster.split('/')[-1]}:{name}")
            if existing is not None and existing.status == "ACTIVE":
                raise InvalidParameterException("Creation of service was not idempotent.")
            if existing is not None and existing.status == "DRAINING":
                raise InvalidParameterException("Unable to Start a service that is still Draining.")
            result = original_create(self)
            service = _service(self, name, cluster)
            service.deployment_configuration = copy.deepcopy(
                self._get_param("deploymentConfiguration") or DEFAULT_DEPLOYMENT_CONFIGURATION
            )
            service.health_check_grace_period_seconds = self._get_param("healthCheckGracePeriodSeconds")
            service.running_count, service.pending_count = 0, 0
            service.deployments = []
            service.sandbox_rollout = ServiceRollout(_backend(self), service)
            service.sandbox_rollout.start(service.task_definition)
        return result

    def update_service(self: EC2ContainerServiceResponse) -> Any:
        _default_security_groups(self)
        cluster = self._get_param("cluster", "default")
        with current().lock:
            before = _service(self, self._get_param("service"), cluster)
            if before.status != "ACTIVE":
                raise _ServiceNotActive()
            running, pending, task_definition = before.running_count, before.pending_count, before.task_definition
            result = original_update(self)
            service = _service(self, self._get_param("service"), cluster)
            # ECS reports the task definition's ARN; moto keeps the string it was given.
            service.task_definition = _backend(self).describe_task_definition(service.task_definition).arn
            if self._get_param("deploymentConfiguration"):
                service.deployment_configuration = copy.deepcopy(self._get_param("deploymentConfiguration"))
            service.running_count, service.pending_count = running, pending  # moto jumps to the new count
            if service.task_definition != task_definition or self._get_param("forceNewDeployment"):
                rollout(service).start(service.task_definition)
            elif self._get_param("desiredCount") is not None:
                rollout(service).rescale()
        return result

    def delete_service(self: EC2ContainerServiceResponse) -> Any:
        with current().lock:
            result = original_delete(self)  # moto: INACTIVE at once (after its own checks)
            service = _service(self, self._get_param("service"), self._get_param("cluster", "default"))
            service.status, service.desired_count = "DRAINING", 0
            if rollout(service) is not None:
                rollout(service).stop_all(f"Service {service.name} was deleted")

            def drained():
                yield Wait(DRAIN_SECONDS, "ecs-drain")
                service.status = "INACTIVE"

            Process(current().scheduler, drained()).start()
        return result

    _network_interfaces_have_dns_names()
    create_service._sandbox_hook = True  # type: ignore[attr-defined]
    cls.create_service, cls.update_service, cls.delete_service = create_service, update_service, delete_service  # type: ignore[method-assign]
    _patch_listing()


def _default_security_groups(response: EC2ContainerServiceResponse) -> None:
    """securityGroups is optional on ECS (the VPC's default group); moto requires it."""
    awsvpc = (response._get_param("networkConfiguration") or {}).get("awsvpcConfiguration")
    if awsvpc is not None:
        awsvpc.setdefault("securityGroups", [])


def _patch_listing() -> None:
    original_list_tasks, original_list_services = (
        EC2ContainerServiceBackend.list_tasks,
        EC2ContainerServiceBackend.list_services,
    )

    def list_tasks(
        self: Any,
        cluster_str: str | None = None,
        container_instance: str | None = None,
        family: str | None = None,
        started_by: str | None = None,
        service_name: str | None = None,
        desiredStatus: str | None = None,
    ) -> list[Task]:
        tasks = original_list_tasks(
            self, cluster_str, container_instance, family, started_by, None, desiredStatus or "RUNNING"
        )
        if service_name:
            tasks = [t for t in tasks if t.group == f"service:{service_name.split('/')[-1]}"]
        return tasks

    def list_services(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> list[str]:
        cluster = self._get_cluster(cluster_str)
        inactive = {
            s.arn for key, s in self.services.items() if key.startswith(cluster.name + ":") and s.status == "INACTIVE"
        }
        return [arn for arn in original_list_services(self, cluster_str, *args, **kwargs) if arn not in inactive]

    EC2ContainerServiceBackend.list_tasks = list_tasks  # type: ignore[method-assign]
    EC2ContainerServiceBackend.list_services = list_services  # type: ignore[method-assign]


def _network_interfaces_have_dns_names() -> None:
    """moto 5.2.5 builds an awsvpc task's attachment from ``eni.private_dns_name``, which its
    network interfaces lack; EC2 names them ``ip-10-0-1-5.ec2.internal`` (us-east-1) or
    ``ip-10-0-1-5.<region>.compute.internal``."""
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    if hasattr(NetworkInterface, "private_dns_name"):
        return

    def private_dns_name(self: Any) -> str:
        host = "ip-" + str(self.private_ip_address).replace(".", "-")
        region = self.ec2_backend.region_name
        return f"{host}.ec2.internal" if region == "us-east-1" else f"{host}.{region}.compute.internal"

    NetworkInterface.private_dns_name = property(private_dns_name)  # type: ignore[attr-defined]
