"""``via=cloudformation``: a deployment owned by a CloudFormation stack, for any target that
exports a template (:meth:`mlflow_plugins.deploy.Target.export`).

A deploy hands the template to CloudFormation through a change set on the deployment's stack:
the change set's changes are printed, it is executed, and the stack is waited for (botocore's
waiters) with its events printed. A change set with no change ends there. A stack that
CloudFormation rolled back fails the deploy with code ``RolledBack`` and CloudFormation's reason
(the registry hooks show it as ROLLED_BACK on the model version). A plan is a change set's
changes; the change set (and the empty stack a CREATE change set makes) is deleted again.

A team that wants every change in a template gets it; the data scientist still only clicks in the
MLflow UI. A deployment that no stack owns is not adopted (CloudFormation's resource import is a
separate, manual step): the target refuses it before calling :meth:`StackOwner.deploy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import WaiterError

from mlflow_plugins.deploy.common import archives
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.cfn import to_yaml
from mlflow_plugins.deploy.common.plan import CREATE, DELETE, REPLACE, UPDATE, Change, Plan, plan_of
from mlflow_plugins.deploy.common.progress import wait_delay
from mlflow_plugins.errors import AwsCallFailed, OwnedElsewhere

PREFIX = "mlflow-sagemaker-ops-"
OWNER_TAG = "aws:cloudformation:stack-name"  # CloudFormation tags every resource it makes
NO_CHANGES = "didn't contain changes"  # CloudFormation's StatusReason of an empty change set
ROLLED_BACK = ("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
STACK = "AWS::CloudFormation::Stack"
EMPTY = ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS")  # a failed or never-executed create: holds nothing


class StackOwner:
    """One deployment's stack: ``name`` is the stack's, ``parameters`` the template's values
    (its ``EndpointName``, say), ``timeout_seconds`` how long a deploy or delete waits."""

    def __init__(
        self,
        clients: Any,
        say: Callable[[str], None],
        target: str,
        deployment: str,
        name: str,
        parameters: dict[str, str],
        timeout_seconds: int,
    ) -> None:
        self.clients, self.cloudformation = clients, clients("cloudformation")
        self.say, self.target, self.deployment, self.name = say, target, deployment, name
        self.parameters, self.timeout_seconds = parameters, timeout_seconds

    def stack(self) -> dict[str, Any] | None:
        """The stack, or None (never made, or deleted)."""
        try:
            found = self.cloudformation.describe_stacks(StackName=self.name)["Stacks"]
        except self.cloudformation.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "ValidationError":  # "Stack ... does not exist"
                return None
            raise
        return found[0] if found and found[0]["StackStatus"] != "DELETE_COMPLETE" else None

    def plan(self, template: dict[str, Any]) -> Plan:
        """The change set's changes; the change set (and a CREATE's empty stack) goes again. A
        stack that holds nothing (a failed create) is not deleted here: the plan says the run will."""
        found = self.stack()
        if found is not None and found["StackStatus"] in EMPTY:
            status = found["StackStatus"]
            return plan_of(
                self.target,
                self.deployment,
                [
                    Change(DELETE, STACK, self.name, (f"it is {status} and holds nothing",)),
                    Change(CREATE, STACK, self.name, ("a change set of the template, once the empty stack is gone",)),
                ],
            )
        change_set, kind = self._change_set(template)
        wrote = "nothing was deployed; a change set was made and deleted again" + (
            " (with the empty stack a first change set makes)" if kind == "CREATE" else ""
        )
        try:
            before = self._resources() if kind == "UPDATE" else {}
            after = template.get("Resources") or {}
            changes = [_change(c["ResourceChange"], before, after) for c in (change_set or {}).get("Changes", [])]
            if changes:
                changes = self._uploads(after) + changes
            return plan_of(self.target, self.deployment, changes, wrote)
        finally:
            if change_set is not None:
                self.cloudformation.delete_change_set(ChangeSetName=change_set["ChangeSetId"])
                if kind == "CREATE":  # a CREATE change set made the stack (REVIEW_IN_PROGRESS, empty)
                    self.cloudformation.delete_stack(StackName=self.name)

    def _resources(self) -> dict[str, Any]:
        """The stack's current template's resources (what a change set's changes are against)."""
        import yaml

        body = self.cloudformation.get_template(StackName=self.name)["TemplateBody"]
        parsed = body if isinstance(body, dict) else yaml.safe_load(body)
        return dict((parsed or {}).get("Resources") or {})

    def _uploads(self, resources: dict[str, Any]) -> list[Change]:
        """The archives the template names that S3 does not have yet: the run uploads them."""
        uris = sorted({uri for uri in _archive_uris(resources) if not archives.stored(self.clients("s3"), uri)})
        return [Change(CREATE, "S3 archive", uri, ("the template's model archive",)) for uri in uris]

    def deploy(self, template: dict[str, Any]) -> bool:
        """Create or update the stack with ``template``; whether it changed anything."""
        started = datetime.now(timezone.utc)
        change_set, kind = self._change_set(template)
        if change_set is None:
            self.say(f"Stack {self.name}: no change (the change set was empty)")
            return False
        for entry in change_set.get("Changes", []):
            self.say(f"  {_change(entry['ResourceChange']).line()}")
        self.cloudformation.execute_change_set(ChangeSetName=change_set["ChangeSetId"])
        self.say(f"Executing change set {change_set['ChangeSetName']} on stack {self.name} ({kind.lower()})")
        try:
            self._wait("stack_create_complete" if kind == "CREATE" else "stack_update_complete")
        except AwsCallFailed:
            found = self.stack()
            status = found["StackStatus"] if found else "DELETE_COMPLETE"
            self._events(started)
            if status in ROLLED_BACK:
                before = (
                    "Nothing of it is left (the stack is empty; the next deploy deletes it first)"
                    if kind == "CREATE"
                    else f"The {self.target} deployment serves what it served before"
                )
                raise AwsCallFailed(
                    operation=f"CloudFormation stack {self.name}",
                    code="RolledBack",
                    detail=f"CloudFormation rolled it back ({status}): {self._reason(started).rstrip('. ')}",
                    fix=f"{before}; fix the cause, then deploy again. "
                    f"See `aws cloudformation describe-stack-events --stack-name {self.name}`.",
                ) from None
            raise
        self._events(started)
        return True

    def delete(self) -> None:
        self.cloudformation.delete_stack(StackName=self.name)
        self.say(f"Deleting stack {self.name}")
        self._wait("stack_delete_complete")

    def _change_set(self, template: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """A change set of ``template`` on the stack (None when it changes nothing)."""
        found = self.stack()
        if found is not None and found["StackStatus"] in EMPTY:
            self.say(f"Stack {self.name} is {found['StackStatus']} and holds nothing; deleting it first")
            self.delete()
            found = None
        kind = "UPDATE" if found is not None else "CREATE"
        made = self.cloudformation.create_change_set(
            StackName=self.name,
            ChangeSetName=f"deploy-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S%f')}",
            ChangeSetType=kind,
            TemplateBody=to_yaml(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            Tags=[{"Key": suite_labels.MANAGED, "Value": "true"}],
            Description=f"mlflow-sagemaker-ops: {self.target} deployment {self.deployment}",
        )
        try:
            self.cloudformation.get_waiter("change_set_create_complete").wait(
                ChangeSetName=made["Id"], WaiterConfig={"Delay": wait_delay(), "MaxAttempts": 600}
            )
        except WaiterError:  # a FAILED change set (empty, or refused: its reason below), or a timeout
            pass
        described = self.cloudformation.describe_change_set(ChangeSetName=made["Id"])
        if described["Status"] not in ("CREATE_COMPLETE", "FAILED"):
            raise AwsCallFailed(
                operation="CreateChangeSet",
                code=described["Status"],
                detail=f"change set {described['ChangeSetName']} of stack {self.name} is still "
                f"{described['Status']} after 600 waits",
                fix=f"See `aws cloudformation describe-change-set --stack-name {self.name} "
                f"--change-set-name {described['ChangeSetName']}`, then deploy again.",
            )
        if described["Status"] == "FAILED":
            self.cloudformation.delete_change_set(ChangeSetName=made["Id"])
            if kind == "CREATE":
                self.cloudformation.delete_stack(StackName=self.name)
            if NO_CHANGES in (described.get("StatusReason") or ""):
                return None, kind
            raise AwsCallFailed(
                operation="CreateChangeSet",
                code="Failed",
                detail=f"CloudFormation refused change set {described['ChangeSetName']} of stack {self.name}: "
                + (described.get("StatusReason") or "no reason given"),
                fix="Fix the cause the reason names (the config keys behind that template value), then deploy again; "
                "the change set was deleted.",
            )
        return described, kind

    def _wait(self, waiter: str) -> None:
        delay = wait_delay()
        try:
            self.cloudformation.get_waiter(waiter).wait(
                StackName=self.name,
                WaiterConfig={"Delay": delay, "MaxAttempts": max(math.ceil(self.timeout_seconds / delay), 1)},
            )
        except Exception as error:  # WaiterError: a failed or rolled-back stack, or a timeout
            raise AwsCallFailed(
                operation=f"waiting for {waiter}",
                code=type(error).__name__,
                detail=str(error),
                fix=f"See `aws cloudformation describe-stack-events --stack-name {self.name}`.",
            ) from None

    def _stack_events(self, since: datetime) -> list[dict[str, Any]]:
        pages = self.cloudformation.get_paginator("describe_stack_events").paginate(StackName=self.name)
        events = [e for page in pages for e in page["StackEvents"] if e["Timestamp"] >= since]
        return sorted(events, key=lambda e: e["Timestamp"])

    def _events(self, since: datetime) -> None:
        """The stack's events of this deploy, oldest first, as progress lines."""
        for event in self._stack_events(since):
            why = f": {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            self.say(f"  {event['LogicalResourceId']} {event['ResourceStatus']}{why}")

    def _reason(self, since: datetime) -> str:
        """The first failed resource's reason, as CloudFormation reports it."""
        failed = [e for e in self._stack_events(since) if e["ResourceStatus"].endswith("_FAILED")]
        if not failed:
            return "no resource reported a failure"
        first = failed[0]
        return f"{first['LogicalResourceId']} ({first['ResourceType']}): {first.get('ResourceStatusReason', '')}"


def owned(tags: dict[str, str]) -> bool:
    """Whether a resource's tags say a CloudFormation stack made it."""
    return OWNER_TAG in tags


def check_owner(kind: str, name: str, tags: dict[str, str] | None, ours: str, via: str) -> None:
    """A live deployment (``tags``; None when there is none) may change this way: through the
    API when no stack owns it, through its stack (``ours``, the suite's) with ``via=cloudformation``.
    A stack the suite did not make is changed by its own tools only."""
    if tags is None:
        return
    owner = tags.get(OWNER_TAG)
    if owner is not None and owner != ours:
        raise OwnedElsewhere(
            kind=kind,
            name=name,
            owner=f"CloudFormation stack {owner}, which this suite did not make",
            fix=f"Change it with that stack's own tools (cdk deploy, aws cloudformation deploy --stack-name {owner}), "
            f"or delete that stack; the suite changes only its own stacks ({ours} for this deployment).",
        )
    if owner is not None and via != "cloudformation":
        raise OwnedElsewhere(
            kind=kind,
            name=name,
            owner=f"CloudFormation stack {owner}",
            fix="Deploy with -C via=cloudformation (or via: cloudformation in the hooks rule); "
            "mlflow deployments delete deletes the stack.",
        )
    if owner is None and via == "cloudformation":
        raise OwnedElsewhere(
            kind=kind,
            name=name,
            owner="no stack (it was deployed through the API)",
            fix=f"Deploy it without via=cloudformation, or delete it (mlflow deployments delete) and deploy again "
            f"with -C via=cloudformation, or import it into stack {ours} with CloudFormation's resource import.",
        )


# Types whose every property change is a replacement (the API has no update for them)
IMMUTABLE = ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::ECS::TaskDefinition")


def _change(
    change: dict[str, Any], before: dict[str, Any] | None = None, after: dict[str, Any] | None = None
) -> Change:
    """A change set's ResourceChange as a plan's change. Where CloudFormation gives no
    ``Details`` (the sandbox's moto), the reasons are the properties that differ between the
    stack's template and the new one."""
    logical, kind = change["LogicalResourceId"], change["ResourceType"]
    action = {"Add": CREATE, "Remove": DELETE}.get(change["Action"])
    if action is None:  # "Conditional": CloudFormation decides during the update; say the worst
        replaced = change.get("Replacement") in ("True", "Conditional") or kind in IMMUTABLE
        action = REPLACE if replaced else UPDATE
    why = tuple(
        f"{d['Target'].get('Name') or d['Target'].get('Attribute')} changes" for d in change.get("Details") or []
    )
    if not why and action in (UPDATE, REPLACE):
        old = ((before or {}).get(logical) or {}).get("Properties") or {}
        new = ((after or {}).get(logical) or {}).get("Properties") or {}
        why = tuple(f"{key} changes" for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key))
    return Change(action, kind, logical, why or (f"CloudFormation: {change['Action']}",))


def _archive_uris(value: Any) -> list[str]:
    """The model archives (``s3://.../model.tar.gz``) a template names."""
    if isinstance(value, dict):
        return [uri for inner in value.values() for uri in _archive_uris(inner)]
    if isinstance(value, list):
        return [uri for inner in value for uri in _archive_uris(inner)]
    if isinstance(value, str) and value.startswith("s3://") and value.endswith("/model.tar.gz"):
        return [value]
    return []
