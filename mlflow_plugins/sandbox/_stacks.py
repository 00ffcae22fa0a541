"""Stack updates and change sets in the sandbox as CloudFormation runs them: all or nothing.

moto updates a stack's resources in template order, retries a failing one five times, deletes a
replaced resource at once, does not update the resources that refer to a replaced one, and
leaves a failed stack UPDATE_IN_PROGRESS (its ``execute_change_set`` has a TODO for rollback).
Here, an update (UpdateStack, or ExecuteChangeSet of a CREATE or UPDATE change set):

* updates the changed resources and every resource that refers to one of them (``Ref``,
  ``Fn::GetAtt``, ``Fn::Sub``), in dependency order, each once;
* deletes what it replaced (and what the template dropped) only once all of it succeeded;
* on a failure, rolls back: an endpoint it updated is updated back to its previous config, what
  it made is deleted, the stack's resources and template are the old ones, and the stack is
  ``UPDATE_ROLLBACK_COMPLETE`` (``ROLLBACK_COMPLETE`` for a create) with the failed resource's
  event and CloudFormation's reason.

Where this differs from CloudFormation: the call runs the whole update before it answers (the
stack is final when ExecuteChangeSet returns; a waiter sees it at once); rollback undoes what the
sandbox's own handlers made (SageMaker, CloudWatch, Application Auto Scaling), not moto's.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import models, parsing
from moto.cloudformation.exceptions import ValidationError

log = logging.getLogger("mlflow_plugins.sandbox")
_SUB_NAMES = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


@dataclass
class Transaction:
    """What the handlers did in the running stack operation: undo steps (run on rollback, newest
    first) and cleanup steps (run once it all succeeded)."""

    undo: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    cleanup: list[tuple[str, Callable[[], None]]] = field(default_factory=list)


_running = threading.local()


def transaction() -> Transaction | None:
    """The stack operation in progress on this thread (None outside one: moto's own paths)."""
    return getattr(_running, "transaction", None)


class StackRolledBack(Exception):
    def __init__(self, logical_id: str, resource_type: str, reason: str) -> None:
        super().__init__(reason)
        self.logical_id, self.resource_type, self.reason = logical_id, resource_type, reason


def update(self: parsing.ResourceMap, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
    """ResourceMap.update, all or nothing (see the module's docstring)."""
    diff = self.build_resource_diff(template, parameters)
    resources = template.get("Resources") or {}
    touched = _with_dependents(set(diff["Add"]) | set(diff["Modify"]), resources)
    snapshot = (
        dict(self._parsed_resources),
        self._resource_json_map,
        self._template,
        dict(self.input_parameters),
    )
    running = _running.transaction = Transaction()
    current = ""
    try:
        self._template = template
        if parameters:
            self.input_parameters = parameters
        self.load_mapping()
        self.load_parameters()
        self.load_conditions()
        self._resource_json_map = resources
        for logical_id in _ordered(resources):
            if logical_id not in touched:
                continue
            current = logical_id
            if logical_id in diff["Add"] or logical_id not in self._parsed_resources:
                _ = self[logical_id]  # moto creates it (and what it refers to) on first read
            else:
                changed = parsing.parse_and_update_resource(
                    logical_id, resources[logical_id], self, account_id=self._account_id, region_name=self._region_name
                )
                if changed is not None:  # None: a moto type without an update handler keeps its resource
                    self._parsed_resources[logical_id] = changed
    except Exception as error:  # noqa: BLE001 - any failure rolls the whole update back
        kind = resources.get(current, {}).get("Type", "AWS::CloudFormation::Stack")
        _run(reversed(running.undo), "roll back")
        self._parsed_resources, self._resource_json_map, self._template, self.input_parameters = snapshot
        _running.transaction = None
        raise StackRolledBack(current, kind, _reason(error)) from None
    _running.transaction = None
    old_resources = snapshot[1]
    for logical_id in diff["Remove"]:
        if logical_id in snapshot[0]:
            running.cleanup.append(
                (logical_id, lambda r=snapshot[0][logical_id], j=old_resources[logical_id]: self._delete_resource(r, j))
            )
            self._parsed_resources.pop(logical_id, None)
    _run(reversed(running.cleanup), "clean up")


def _run(steps: Any, what: str) -> None:
    for name, step in steps:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - every step is tried, as CloudFormation's cleanup does
            log.warning("sandbox CloudFormation: could not %s %s: %s", what, name, error)


def _reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    return str(error) or type(error).__name__


def _references(value: Any) -> set[str]:
    """The logical ids a resource refers to: Ref, Fn::GetAtt, and ${Name} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= set(_SUB_NAMES.findall(text))
                found |= _references(inner[1:] if isinstance(inner, list) else [])
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _depends(resources: dict[str, Any]) -> dict[str, set[str]]:
    return {
        name: (_references(body) | set(_as_list(body.get("DependsOn")))) & set(resources)
        for name, body in resources.items()
    }


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _with_dependents(changed: set[str], resources: dict[str, Any]) -> set[str]:
    """``changed`` and every resource that refers to one of them, transitively (a replaced
    resource's new name or ARN reaches them)."""
    depends = _depends(resources)
    touched = set(changed)
    grew = True
    while grew:
        more = {name for name, needs in depends.items() if needs & touched} - touched
        touched |= more
        grew = bool(more)
    return touched


def _ordered(resources: dict[str, Any]) -> list[str]:
    """Resources in dependency order (template order among equals)."""
    depends, done, order = _depends(resources), set(), []

    def visit(name: str, seen: tuple[str, ...]) -> None:
        if name in done or name in seen:
            return
        for needed in sorted(depends[name], key=list(resources).index):
            visit(needed, (*seen, name))
        done.add(name)
        order.append(name)

    for name in resources:
        visit(name, ())
    return order


def _execute_change_set(original: Callable[..., None]) -> Callable[..., None]:
    """ExecuteChangeSet: a rollback's status and events; after success, the stack's outputs and
    exports (moto leaves those of the stack's first template)."""

    def execute(self: models.CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        assert change_set is not None  # describe_change_set raises for an unknown one
        stack = self.stacks[change_set.stack_id]
        try:
            original(self, change_set_name, stack_name)
        except StackRolledBack as failure:
            _rolled_back(stack, failure, creating=change_set.change_set_type == "CREATE")
            change_set.execution_status = "EXECUTE_FAILED"
            return
        stack._parse_template()  # moto keeps the new template's text, not its outputs and exports
        stack.output_map = stack._create_output_map()
        for name in [n for n, e in self.exports.items() if e.exporting_stack_id == stack.stack_id]:
            self.exports.pop(name)
        for export in stack.exports:
            self.exports[export.name] = export

    return execute


def _stack_update(original: Callable[..., None]) -> Callable[..., None]:
    def update_stack(self: models.Stack, *args: Any, **kwargs: Any) -> None:
        before = self.template, self.template_dict
        try:
            original(self, *args, **kwargs)
        except StackRolledBack as failure:
            self.template, self.template_dict = before  # moto set the new one before the update
            _rolled_back(self, failure, creating=False)

    return update_stack


def _rolled_back(stack: models.Stack, failure: StackRolledBack, creating: bool) -> None:
    """The stack's events and status after a rollback, as CloudFormation reports them."""
    verb = "CREATE" if creating else "UPDATE"
    physical = getattr(stack.resource_map._parsed_resources.get(failure.logical_id), "physical_resource_id", "")
    stack.events.append(
        models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=failure.logical_id,
            physical_resource_id=physical or "",
            resource_type=failure.resource_type,
            resource_status=f"{verb}_FAILED",
            resource_status_reason=failure.reason,
            resource_properties=None,
        )
    )
    reason = f"The following resource(s) failed to {verb.lower()}: [{failure.logical_id}]. "
    prefix = "ROLLBACK" if creating else "UPDATE_ROLLBACK"
    stack._add_stack_event(f"{prefix}_IN_PROGRESS", resource_status_reason=reason)
    stack._add_stack_event(f"{prefix}_COMPLETE")
    stack.status = f"{prefix}_COMPLETE"
    log.info("sandbox CloudFormation: %s %s: %s", stack.name, stack.status, failure.reason)


def _create_stack(original: Callable[..., Any]) -> Callable[..., Any]:
    """CreateStack all or nothing: a resource that fails rolls the stack back (what the
    sandbox's handlers made is deleted) to ROLLBACK_COMPLETE, and the call answers as AWS's does
    (moto answered a 500 and left the stack CREATE_PENDING). moto creates resources lazily,
    some while it checks the exports' uniqueness, so the whole call is the operation."""

    def create_stack(self: models.CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Any:
        running = _running.transaction = Transaction()
        try:
            return original(self, name, *args, **kwargs)
        except ValidationError:
            raise  # a template or parameter refused: an error answer, as on AWS
        except Exception as error:  # noqa: BLE001 - a resource failed: the create rolls back
            _run(reversed(running.undo), "roll back")
            stack = next(s for s in self.stacks.values() if s.name == name)
            resources = stack.template_dict.get("Resources") or {}
            failed = next((n for n in resources if n not in stack.resource_map._parsed_resources), name)
            for logical_id in resources:
                stack.resource_map._parsed_resources.pop(logical_id, None)
            stack.output_map._output_json_map = {}  # a rolled-back stack has no outputs
            for export in [n for n, e in self.exports.items() if e.exporting_stack_id == stack.stack_id]:
                self.exports.pop(export)
            kind = resources.get(failed, {}).get("Type", "AWS::CloudFormation::Stack")
            _rolled_back(stack, StackRolledBack(failed, kind, _reason(error)), creating=True)
            return stack
        finally:
            _running.transaction = None

    return create_stack


def _list_defaults(original: Callable[..., None]) -> Callable[..., None]:
    """A List parameter's default is a list, as a value passed for it is (moto splits only the
    values passed: ``Ref`` of a defaulted ``List<AWS::EC2::Subnet::Id>`` was a string)."""

    def load_parameters(self: parsing.ResourceMap) -> None:
        original(self)
        for name, slot in (self._template.get("Parameters") or {}).items():
            kind, value = slot.get("Type", "String"), self.resolved_parameters.get(name)
            if isinstance(value, str) and (kind == "CommaDelimitedList" or kind.startswith("List<")):
                self.resolved_parameters[name] = value.split(",")
                self._parsed_resources[name] = self.resolved_parameters[name]

    return load_parameters


def install() -> None:
    if getattr(parsing.ResourceMap.update, "_sandbox", False):
        return
    parsing.ResourceMap.load_parameters = _list_defaults(parsing.ResourceMap.load_parameters)  # type: ignore[method-assign]
    models.CloudFormationBackend.create_stack = _create_stack(models.CloudFormationBackend.create_stack)  # type: ignore[method-assign]
    update._sandbox = True  # type: ignore[attr-defined]
    parsing.ResourceMap.update = update  # type: ignore[method-assign]
    models.CloudFormationBackend.execute_change_set = _execute_change_set(  # type: ignore[method-assign]
        models.CloudFormationBackend.execute_change_set
    )
    models.Stack.update = _stack_update(models.Stack.update)  # type: ignore[method-assign]
