"""The one contract every deployment target implements, and what is written once on top of it.

A target is where a model can go (a SageMaker endpoint, a model on a multi-model endpoint, an ECS
service; next: a CloudFormation stack, a batch job). Both front doors drive targets only through
this contract: the MLflow deployment clients (:mod:`mlflow_plugins.clients`) and the registry
hooks (:mod:`registry_hooks.targets`). So create-or-update (:func:`converge`) and every later
capability written against :class:`Target` reach every target and both front doors at once.

Names: a SageMaker target's deployment is its endpoint; a multi-model target's is
``ENDPOINT/MODEL``; an ECS target's is ``NAME`` or ``CLUSTER/NAME``.

What each method promises:

* ``parse(config)`` validates a raw config (dict of ``-C`` values) into the target's typed,
  frozen config. It makes no AWS call and raises :class:`~mlflow_plugins.errors.OpsError`
  naming the key, the value, what is allowed and the fix.
* ``plan(name, model_uri, config)`` is what :func:`converge` would change (create, or update, or
  replace a Failed deployment), resource by resource with the reasons, from reads only
  (:class:`~mlflow_plugins.deploy.common.plan.Plan`). ``update`` runs the plan it computes: a plan
  without changes means no write. With ``dry_run=true`` in the config, ``create``, ``update``
  and :func:`converge` answer the plan (:meth:`Plan.answer`) and write nothing.
* ``export(name, model_uri, config, shared_stack)`` is a CloudFormation template (a dict) of what
  ``create`` would make; the model archive is uploaded (content-addressed) and referenced.
* ``observe(name, config)`` lets a rollout in flight settle, then reads what serves now
  (:class:`Live`); it may repair the target's own tags, and makes no other write.
* ``create`` / ``update`` deploy and wait (unless ``synchronous=false``); on a failure the old
  state is intact or the new one complete, and the error says which. They return what ``get``
  returns.
* ``delete(name, config)`` removes the deployment and what the suite made for it.
* ``get(name)`` / ``list()`` describe deployments as plain dicts (MLflow's deployment API).
* ``invoke(name, body, content_type, options)`` returns the model's answer as text.
* ``clean(name, live, config)`` deletes what an interrupted deploy of ``name`` left behind and
  ``live`` does not use; it runs only under the deployment's lease.
* ``archive(name)`` is the S3 archive the deployment serves (for lineage), or None.

Thread-safety: a target holds boto3 clients, which are thread-safe; it keeps no per-call state,
so one target may serve several deployments from several threads.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mlflow_plugins.deploy.common.keys import dry_run
from mlflow_plugins.deploy.common.plan import Plan

SERVING = "InService"  # the one status of Live that means "serves"
FAILED = "Failed"


@dataclass(frozen=True)
class Live:
    """What a deployment serves now, in the contract's terms."""

    exists: bool
    status: str | None = None  # InService, Failed, or the target's own word for another state
    arn: str | None = None
    config: str | None = None  # the target's revision: endpoint config, task definition, archive key
    registered_model: str | None = None
    version: str | None = None
    failure_reason: str | None = None
    models: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        return self.exists and self.status == SERVING


@runtime_checkable
class Target(Protocol):
    kind: str  # the ``target`` of a deployment's lineage Action: sagemaker, sagemaker-mme, ecs
    clients: Any  # an AwsClients: where lineage and other shared steps get their clients

    def parse(self, config: Mapping[str, Any] | None) -> Any: ...

    def plan(self, name: str, model_uri: str | None, config: Any) -> Plan: ...

    def export(self, name: str, model_uri: str, config: Any, shared_stack: str | None = None) -> dict[str, Any]: ...

    def observe(self, name: str, config: Any) -> Live: ...

    def create(self, name: str, model_uri: str, config: Any) -> dict[str, Any]: ...

    def update(self, name: str, model_uri: str | None, config: Any) -> dict[str, Any]: ...

    def delete(self, name: str, config: Any) -> None: ...

    def get(self, name: str) -> dict[str, Any]: ...

    def list(self) -> builtins.list[dict[str, Any]]: ...

    def invoke(self, name: str, body: bytes, content_type: str, options: Mapping[str, Any]) -> str: ...

    def clean(self, name: str, live: Live, config: Any) -> builtins.list[str]: ...

    def archive(self, name: str) -> str | None: ...


def converge(target: Target, name: str, model_uri: str, config: Any, live: Live | None = None) -> dict[str, Any]:
    """Make ``name`` serve ``model_uri``: create it when absent, update it when present, and
    replace it when it is Failed (SageMaker refuses to update a Failed endpoint). The one place
    where create-or-update is decided, for both front doors."""
    if dry_run(config):
        return target.plan(name, model_uri, config).answer()
    live = live if live is not None else target.observe(name, config)
    if live.exists and live.status == FAILED:
        target.delete(name, config)
        live = Live(exists=False)
    if live.exists:
        return target.update(name, model_uri, config)
    return target.create(name, model_uri, config)
