"""``hooks plan``: what the controller would change now, rule by rule, with reads only (the
registry, then each target's :meth:`~mlflow_plugins.deploy.Target.plan`), as it decides it in
:class:`~registry_hooks.reconcile.Reconciler`: the version holding the rule's stage or alias is
deployed unless it serves already; with none, ``on_leave: delete`` deletes what serves.

The plan does not read the controller's database: a version whose deploy FAILED or ROLLED_BACK
is planned as a deploy here, where the controller waits for a new promotion.
"""

from __future__ import annotations

from mlflow_plugins.deploy import Change, Plan
from registry_hooks.policy import Rule
from registry_hooks.registry import Registry
from registry_hooks.targets import Targets


def plan_rule(rule: Rule, registry: Registry, targets: Targets) -> Plan:
    want = registry.desired(rule)
    target = targets(rule)
    live = target.observe()
    serving = live.version if live.exists and live.registered_model == rule.model else None
    if want is None:
        if serving is not None and rule.on_leave == "delete":
            why = f"no version holds {rule.source} (on_leave: delete); it serves version {serving}"
            return Plan(target.kind, rule.deployment, (Change("delete", "deployment", rule.where, (why,)),))
        return Plan(target.kind, rule.deployment)
    if serving == want and live.serving:
        return Plan(target.kind, rule.deployment)  # the controller confirms it, and writes nothing to AWS
    return target.target.plan(rule.deployment, f"models:/{rule.model}/{want}", target.config)
