"""``via=cloudformation``: a SageMaker endpoint owned by a CloudFormation stack.

A create or update exports the deployment (:mod:`._export`: the archive uploaded,
content-addressed) and hands the template to CloudFormation through a change set on the stack
``mlflow-sagemaker-ops-<endpoint>``: the change set's changes are printed, it is executed, and the
stack is waited for with its events printed as they come. A stack that CloudFormation rolled
back (SageMaker's alarm rollback of the endpoint update rolls the stack back too) fails the
deploy with code ``RolledBack`` and CloudFormation's reason, which the registry hooks show as
ROLLED_BACK on the model version. ``delete`` deletes the stack.

A team that wants every change in a template gets it; the data scientist still only clicks in the
MLflow UI. An endpoint that no stack owns is not adopted (CloudFormation's resource import is a
separate, manual step): create with ``via=cloudformation`` from the start, or delete it first.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.cfn import to_yaml
from mlflow_plugins.deploy.common.plan import CREATE, DELETE, REPLACE, UPDATE, Change, Plan, plan_of
from mlflow_plugins.deploy.common.progress import wait_delay
from mlflow_plugins.deploy.sagemaker import _export
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig
from mlflow_plugins.errors import AwsCallFailed, ResourceConflict

PREFIX = "mlflow-sagemaker-ops-"
OWNER_TAG = "aws:cloudformation:stack-name"  # CloudFormation tags every resource it makes
NO_CHANGES = "didn't contain changes"  # CloudFormation's StatusReason of an empty change set
ROLLED_BACK = ("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


def stack_name(endpoint: str) -> str:
    return f"{PREFIX}{endpoint}"


class StackDeployer:
    def __init__(self, deployer: Any) -> None:
        self.deployer, self.say = deployer, deployer.say
        self.cloudformation = deployer.clients("cloudformation")

    def stack(self, endpoint: str) -> dict[str, Any] | None:
        """The endpoint's stack, or None (never made, or deleted)."""
        try:
            found = self.cloudformation.describe_stacks(StackName=stack_name(endpoint))["Stacks"]
        except self.cloudformation.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "ValidationError":  # "Stack ... does not exist"
                return None
            raise
        return found[0] if found and found[0]["StackStatus"] != "DELETE_COMPLETE" else None

    def plan(self, name: str, model_uri: str, cfg: SageMakerConfig) -> Plan:
        """The change set's changes, as a plan; the change set is deleted again."""
        change_set, kind = self._change_set(name, model_uri, cfg)
        try:
            if change_set is None:
                return plan_of("sagemaker", name, [])
            return plan_of("sagemaker", name, [_change(c["ResourceChange"]) for c in change_set.get("Changes", [])])
        finally:
            if change_set is not None:
                self.cloudformation.delete_change_set(ChangeSetName=change_set["ChangeSetId"])
                if kind == "CREATE":  # a CREATE change set made the stack (REVIEW_IN_PROGRESS, empty)
                    self.cloudformation.delete_stack(StackName=stack_name(name))

    def deploy(self, name: str, model_uri: str, cfg: SageMakerConfig) -> dict[str, Any]:
        started = datetime.now(timezone.utc)
        change_set, kind = self._change_set(name, model_uri, cfg)
        stack = stack_name(name)
        if change_set is None:
            self.say(f"Stack {stack}: no change (the change set was empty)")
            return self.deployer.get(name)
        for entry in change_set.get("Changes", []):
            self.say(f"  {_change(entry['ResourceChange']).line()}")
        self.cloudformation.execute_change_set(ChangeSetName=change_set["ChangeSetId"])
        self.say(f"Executing change set {change_set['ChangeSetName']} on stack {stack} ({kind.lower()})")
        waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
        try:
            self._wait(waiter, stack, cfg)
        except AwsCallFailed:
            found = self.stack(name)
            status = found["StackStatus"] if found else "DELETE_COMPLETE"
            self._events(stack, started)
            if status in ROLLED_BACK:
                raise AwsCallFailed(
                    operation="ExecuteChangeSet",
                    code="RolledBack",
                    detail=f"CloudFormation rolled stack {stack} back ({status}): {self._reason(stack, started)}",
                    fix=f"The endpoint serves what it served before; fix the cause, then deploy again. "
                    f"See `aws cloudformation describe-stack-events --stack-name {stack}`.",
                ) from None
            raise
        self._events(stack, started)
        return self.deployer.get(name)

    def delete(self, name: str, cfg: SageMakerConfig) -> None:
        stack = stack_name(name)
        self.cloudformation.delete_stack(StackName=stack)
        self.say(f"Deleting stack {stack}")
        self._wait("stack_delete_complete", stack, cfg)

    def _change_set(self, name: str, model_uri: str, cfg: SageMakerConfig) -> tuple[dict[str, Any] | None, str]:
        """A change set of the deployment's template on its stack (None when it changes nothing)."""
        stack = stack_name(name)
        found = self.stack(name)
        if found is not None and found["StackStatus"] in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):
            # a failed create, or one interrupted before its change set ran: empty, it goes first
            self.say(f"Stack {stack} is {found['StackStatus']} and holds nothing; deleting it first")
            self.delete(name, cfg)
            found = None
        if found is None and self.deployer.describe(name) is not None:
            raise ResourceConflict(
                kind="SageMaker endpoint not owned by a stack",
                name=name,
                fix=f"Delete it (mlflow deployments delete) and deploy with -C via=cloudformation, or import it into "
                f"stack {stack} with CloudFormation's resource import.",
            )
        template = _export.template(_export.from_config(self.deployer, name, model_uri, cfg))
        kind = "UPDATE" if found is not None else "CREATE"
        made = self.cloudformation.create_change_set(
            StackName=stack,
            ChangeSetName=f"deploy-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S%f')}",
            ChangeSetType=kind,
            TemplateBody=to_yaml(template),
            Parameters=[{"ParameterKey": "EndpointName", "ParameterValue": name}],
            Tags=[{"Key": suite_labels.MANAGED, "Value": "true"}],
            Description=f"mlflow-sagemaker-ops: {name}",
        )
        try:
            self.cloudformation.get_waiter("change_set_create_complete").wait(
                ChangeSetName=made["Id"], WaiterConfig={"Delay": wait_delay(), "MaxAttempts": 600}
            )
        except Exception:  # noqa: BLE001 - a FAILED change set: empty, or refused (its reason below)
            pass
        described = self.cloudformation.describe_change_set(ChangeSetName=made["Id"])
        if described["Status"] == "FAILED":
            self.cloudformation.delete_change_set(ChangeSetName=made["Id"])
            if NO_CHANGES in (described.get("StatusReason") or ""):
                return None, kind
            raise AwsCallFailed(
                operation="CreateChangeSet",
                code="Failed",
                detail=described.get("StatusReason") or "the change set failed",
                fix="Fix the template's cause (see the reason), then deploy again.",
            )
        return described, kind

    def _wait(self, waiter: str, stack: str, cfg: SageMakerConfig) -> None:
        delay = wait_delay()
        try:
            self.cloudformation.get_waiter(waiter).wait(
                StackName=stack,
                WaiterConfig={"Delay": delay, "MaxAttempts": max(math.ceil(cfg.timeout_seconds / delay), 1)},
            )
        except Exception as error:  # WaiterError: a failed or rolled-back stack, or a timeout
            raise AwsCallFailed(
                operation=f"waiting for {waiter}",
                code=type(error).__name__,
                detail=str(error),
                fix=f"See `aws cloudformation describe-stack-events --stack-name {stack}`.",
            ) from None

    def _stack_events(self, stack: str, since: datetime) -> list[dict[str, Any]]:
        pages = self.cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack)
        events = [e for page in pages for e in page["StackEvents"] if e["Timestamp"] >= since]
        return sorted(events, key=lambda e: e["Timestamp"])

    def _events(self, stack: str, since: datetime) -> None:
        """The stack's events of this deploy, oldest first, as progress lines."""
        for event in self._stack_events(stack, since):
            why = f": {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            self.say(f"  {event['LogicalResourceId']} {event['ResourceStatus']}{why}")

    def _reason(self, stack: str, since: datetime) -> str:
        """The first failed resource's reason, as CloudFormation reports it."""
        failed = [e for e in self._stack_events(stack, since) if e["ResourceStatus"].endswith("_FAILED")]
        if not failed:
            return "no resource reported a failure"
        first = failed[0]
        return f"{first['LogicalResourceId']} ({first['ResourceType']}): {first.get('ResourceStatusReason', '')}"


def _change(change: dict[str, Any]) -> Change:
    """A change set's ResourceChange as a plan's change."""
    action = {"Add": CREATE, "Remove": DELETE}.get(change["Action"])
    if action is None:
        action = REPLACE if change.get("Replacement") == "True" else UPDATE
    why = tuple(
        f"{d['Target'].get('Name') or d['Target'].get('Attribute')} changes" for d in change.get("Details") or []
    ) or (f"CloudFormation: {change['Action']}",)
    return Change(action, change["ResourceType"], change["LogicalResourceId"], why)
