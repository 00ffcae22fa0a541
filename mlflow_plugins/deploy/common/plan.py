"""A deployment's plan: what a create or update would change against the live state, resource by
resource, with the reasons, computed with reads only.

Each target computes its plan from the same reads and the same requests its run sends, and its
run executes that plan: a plan without changes means the run makes no write (``dry_run=true``
prints the plan and stops there; ``mlflow-sagemaker-ops hooks plan`` prints one per rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CREATE, REPLACE, UPDATE, DELETE = "create", "replace", "update", "delete"
ACTIONS = (CREATE, REPLACE, UPDATE, DELETE)


@dataclass(frozen=True)
class Change:
    """One resource's change: ``action`` is create, replace (a new resource takes the old one's
    place: SageMaker models and endpoint configs, ECS task definition revisions), update (in
    place; ``how`` names the rollout) or delete."""

    action: str
    resource: str  # what kind: "SageMaker model", "endpoint config", "ECS service", ...
    name: str
    reasons: tuple[str, ...] = ()
    how: str | None = None

    def line(self) -> str:
        how = f" ({self.how})" if self.how else ""
        why = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return f"{self.action:<8} {self.resource} {self.name}{how}{why}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource": self.resource,
            "name": self.name,
            "reasons": list(self.reasons),
            "how": self.how,
        }


@dataclass(frozen=True)
class Plan:
    target: str  # the target kind: sagemaker, sagemaker-mme, ecs
    deployment: str
    changes: tuple[Change, ...] = field(default_factory=tuple)
    wrote: str = "nothing was written"  # what computing the plan wrote (a stack's: a change set)

    @property
    def empty(self) -> bool:
        return not self.changes

    def touches(self, *resources: str) -> bool:
        return any(change.resource in resources for change in self.changes)

    def lines(self) -> list[str]:
        head = f"Plan for {self.target} deployment {self.deployment}:"
        if self.empty:
            return [f"{head} no change (the run makes no write)"]
        return [head, *(f"  {change.line()}" for change in self.changes)]

    def text(self) -> str:
        return "\n".join(self.lines())

    def answer(self) -> dict[str, Any]:
        """What create and update answer with ``dry_run=true``: the plan; nothing was written."""
        return {
            "name": self.deployment,
            "flavor": "python_function",
            "dry_run": True,
            "wrote": self.wrote,
            "no_change": self.empty,
            "plan": self.text(),
            "changes": [change.as_dict() for change in self.changes],
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "deployment": self.deployment,
            "changes": [change.as_dict() for change in self.changes],
        }


def differences(pairs: Mapping[str, tuple[Any, Any]]) -> tuple[str, ...]:
    """The reasons for each named field whose live value differs from the wanted one:
    ``{"instance count": (1, 2)}`` -> ``("instance count 1 -> 2",)``."""
    return tuple(
        f"{name} {_short(live)} -> {_short(wanted)}" for name, (live, wanted) in pairs.items() if live != wanted
    )


def changed_keys(name: str, live: Mapping[str, Any] | None, wanted: Mapping[str, Any] | None) -> tuple[str, ...]:
    """One reason naming the keys of a mapping (tags, environment) that were added, removed or changed."""
    live, wanted = dict(live or {}), dict(wanted or {})
    kinds = {
        "added": sorted(set(wanted) - set(live)),
        "removed": sorted(set(live) - set(wanted)),
        "changed": sorted(k for k in set(live) & set(wanted) if live[k] != wanted[k]),
    }
    return tuple(f"{name} {', '.join(keys)} {word}" for word, keys in kinds.items() if keys)


def require_model_uri(model_uri: str | None) -> str:
    """A stack's template, or a plan of one, names its model: ``-m`` is required."""
    from mlflow_plugins.errors import MissingSetting

    if model_uri is None:
        raise MissingSetting(
            name="model URI (-m)",
            allowed="any MLflow model URI (a stack's template names its model)",
            fix="Pass -m models:/name/version.",
        )
    return model_uri


def refuse_dry_run_delete(config: Any, get_command: str) -> None:
    """Delete has no plan: ``dry_run`` is refused, not ignored (it would delete)."""
    from mlflow_plugins.deploy.common.keys import dry_run
    from mlflow_plugins.errors import InvalidValue

    if dry_run(config):
        raise InvalidValue(
            name="dry_run",
            value=True,
            reason="dry_run plans create and update; delete has no plan",
            allowed="dry_run with create or update",
            fix=f"See what delete removes with `{get_command}`; drop -C dry_run to delete.",
        )


def plan_of(target: str, deployment: str, changes: Iterable[Change | None], wrote: str | None = None) -> Plan:
    kept = tuple(change for change in changes if change is not None)
    return Plan(target, deployment, kept) if wrote is None else Plan(target, deployment, kept, wrote)


def _short(value: Any, limit: int = 80) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
