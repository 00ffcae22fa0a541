"""One pass of the level-triggered loop for one deployment: desired state against actual state.

Desired: the version holding the rule's stage or alias (the registry, read now). Actual: what
the endpoint serves, read from AWS (after any rollout in flight has settled). A pass runs only
under the deployment's lease, so one replica at a time drives a deployment; it converges from any
starting point, so a lost event, a crash or a restart loses nothing and a repeated event does
nothing twice. A burst of promotions coalesces because a pass deploys whatever the registry says
when it runs. Failures retry with exponential backoff up to the rule's ``max_attempts``, then the
deployment is FAILED for that version; a rollout that SageMaker rolled back is ROLLED_BACK. Both
stay so until another version is promoted or ``hooks retry`` is run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from mlflow_plugins.errors import OpsError
from registry_hooks.policy import Rule
from registry_hooks.registry import Registry
from registry_hooks.store import LeaseLost, Row, Store

MUTATING = ("Create", "Update", "Delete", "AddTags", "Put", "Register")


class Leases:
    """The leases this replica holds, renewed by a heartbeat; a lease that could not be renewed
    is lost, and the next mutating AWS call of that deployment's thread fails (fencing)."""

    def __init__(self, store: Store, owner: str, seconds: float) -> None:
        self.store, self.owner, self.seconds = store, owner, seconds
        self.held: set[str] = set()
        self.lost: set[str] = set()
        self.local = threading.local()
        self._lock = threading.Lock()

    def take(self, name: str) -> bool:
        if not self.store.acquire(name, self.owner, self.seconds):
            return False
        with self._lock:
            self.held.add(name)
            self.lost.discard(name)
        self.local.name = name
        return True

    def drop(self, name: str) -> None:
        with self._lock:
            self.held.discard(name)
        self.local.name = None
        self.store.release(name, self.owner)

    def heartbeat(self) -> None:
        with self._lock:
            names = list(self.held)
        for name in names:
            if not self.store.renew(name, self.owner, self.seconds):
                with self._lock:
                    self.lost.add(name)

    def fence(self, event_name: str, **_: Any) -> None:
        """botocore ``before-call`` hook: no mutating call once this thread's lease is lost."""
        name = getattr(self.local, "name", None)
        operation = event_name.rsplit(".", 1)[-1]
        if name in self.lost and operation.startswith(MUTATING):
            raise LeaseLost(name)


class Reconciler:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        targets: Callable[[Rule], Any],
        leases: Leases,
        say: Callable[[str], None],
        retry_base: float = 2.0,
        retry_cap: float = 300.0,
        lineage: bool = True,
    ) -> None:
        self.store, self.registry, self.targets, self.leases, self.say = store, registry, targets, leases, say
        self.retry_base, self.retry_cap, self.lineage = retry_base, retry_cap, lineage

    @property
    def replica(self) -> str:
        return self.leases.owner

    def run(self, rule: Rule) -> float | None:
        """Converge ``rule`` if this replica gets its lease; the time of its next retry, if any."""
        self.store.ensure(rule.name)
        if not self.leases.take(rule.name):
            return None  # another replica drives it now
        try:
            return self._converge(rule)
        except LeaseLost as error:
            self.say(str(error))
            return None
        finally:
            self.leases.drop(rule.name)

    # ---- the pass --------------------------------------------------------------------------
    def _converge(self, rule: Rule) -> float | None:
        row = self.store.get(rule.name)
        holders = self.registry.holders(rule)
        want = holders[0] if holders else None
        self._supersede(rule, want, holders[1:])
        if want != row.desired_version:
            self._set(rule, desired_version=want, attempts=0, retry_at=0.0, status="PENDING", message=None)
            if want is not None:
                self._status(rule, want, "PENDING", f"{rule.source} -> {rule.where}: waiting to deploy")
            row = self.store.get(rule.name)
        target = self.targets(rule)
        live = target.observe()
        serving = live.version if live.exists and live.registered_model == rule.model else None
        if want is None:
            return self._leave(rule, row, target, live, serving)
        if serving == want and live.serving:
            self._confirm(rule, row, target, live, want)
            self._lineage(rule, want, live.arn, target)  # retried at every pass until written
            return None
        if row.status in ("FAILED", "ROLLED_BACK"):
            return None  # for this version; promoting another one starts again
        if live.exists and live.registered_model != rule.model:
            return self._conflict(rule, want, live)
        if row.retry_at > time.time():
            return row.retry_at
        return self._deploy(rule, row, target, live, want)

    def _supersede(self, rule: Rule, want: str | None, others: list[str]) -> None:
        """Versions that hold the stage too, but moved there before ``want`` did: each says on its own
        page why it is not served, and what to do."""
        for version in others:
            if self.registry.status_of(rule, version).get("status") == "SUPERSEDED":
                continue
            message = (
                f"{rule.source} holds version {want} too, moved there after this one: {rule.where} serves the most "
                f"recent transition. To serve this version, transition it to {rule.source} again (ticking "
                f'"Transition existing {rule.source} versions to Archived" keeps one version there).'
            )
            self._status(rule, version, "SUPERSEDED", message)
            self.store.log(
                "supersede", "superseded", rule.name, version, *self._trigger(rule, want), message, self.replica
            )

    def _confirm(self, rule: Rule, row: Row, target: Any, live: Any, want: str) -> None:
        """The endpoint serves the wanted version: make the tags and the row say so."""
        target.clean(live)
        if row.status == "IN_SERVICE" and row.serving_version == want:
            return
        self._serving(rule, want, live.arn, previous=row.serving_version, message=f"serving {rule.where}")
        self._set(rule, status="IN_SERVICE", serving_version=want, attempts=0, retry_at=0.0, message=None)
        self.store.log(
            "confirm", "in-service", rule.name, want, "reconcile", None, "the endpoint already serves it", self.replica
        )

    def _deploy(self, rule: Rule, row: Row, target: Any, live: Any, want: str) -> float | None:
        trigger, actor = self._trigger(rule, want)
        verb = "update" if live.exists else "create"
        self.say(f"{rule.name}: deploying {rule.model} version {want} to {rule.where} ({verb}, {trigger})")
        self._status(rule, want, "DEPLOYING", f"{verb} {rule.where} with version {want}")
        self._set(rule, status="DEPLOYING", deploys=row.deploys + 1)
        self.store.log(verb, "started", rule.name, want, trigger, actor, None, self.replica)
        try:
            target.clean(live)
            arn = target.deploy(live, f"models:/{rule.model}/{want}")
        except LeaseLost:
            raise
        except OpsError as error:
            if error.fields.get("code") == "RolledBack":
                self._status(rule, want, "ROLLED_BACK", str(error))
                self._set(rule, status="ROLLED_BACK", message=str(error))
                self.store.log(verb, "rolled-back", rule.name, want, trigger, actor, str(error), self.replica)
                return None
            return self._failed(rule, row, want, verb, trigger, actor, error)
        except Exception as error:  # any other failure (network, registry): retried the same way
            return self._failed(rule, row, want, verb, trigger, actor, error)
        self._serving(rule, want, arn, previous=serving_before(row, live, rule), message=f"serving {rule.where}")
        self._set(rule, status="IN_SERVICE", serving_version=want, attempts=0, retry_at=0.0, message=None)
        self.store.log(verb, "succeeded", rule.name, want, trigger, actor, arn, self.replica)
        self._lineage(rule, want, arn, target)
        return None

    def _lineage(self, rule: Rule, version: str, arn: str | None, target: Any) -> None:
        """Mirror the served version (run, datasets, parents, this deployment) into SageMaker
        lineage, with the one lineage step both front doors use. A failure never fails the
        deployment: it goes to the ``deploy.<d>.lineage`` tag and the next pass tries again;
        ``written`` there ends the retries."""
        if not self.lineage or not arn or self.registry.status_of(rule, version).get("lineage") == "written":
            return
        from mlflow_plugins.lineage import after_deploy

        try:
            failure = after_deploy(
                target.clients("sagemaker"),
                rule.model,
                version,
                arn,
                target.kind,
                target.archive(),
                tracking_client=self.registry.client,
            )
        except LeaseLost:
            raise
        except Exception as error:  # noqa: BLE001 - reading the archive failed: reported, retried next pass
            failure = f"{type(error).__name__}: {error}"
        self._fence(rule)  # the fence may have stopped the lineage writes: then this replica writes nothing more
        outcome = "written" if failure is None else f"failed: {failure}"
        if failure is not None:
            self.say(f"{rule.name}: lineage of version {version} {outcome}")
        self.registry.set_lineage(rule, version, outcome)

    def _conflict(self, rule: Rule, want: str, live: Any) -> float | None:
        """The endpoint exists and is not this model's (another model's, or not made by the suite):
        it is never taken over."""
        owner = (
            f"registered model {live.registered_model!r}"
            if live.registered_model
            else "no registered model of the suite"
        )
        message = (
            f"endpoint {rule.where} exists and serves {owner}, not {rule.model!r}: it is left alone. "
            f"Delete it, or give this rule another `endpoint:` in {rule.name!r}."
        )
        self._status(rule, want, "FAILED", message)
        self._set(rule, status="FAILED", message=message)
        self.store.log("deploy", "conflict", rule.name, want, *self._trigger(rule, want), message, self.replica)
        return None

    def _failed(
        self, rule: Rule, row: Row, want: str, verb: str, trigger: str, actor: str | None, error: Exception
    ) -> float | None:
        attempts = row.attempts + 1
        reason = f"{type(error).__name__}: {error}".rstrip(".")
        if attempts >= rule.max_attempts:
            message = (
                f"failed {attempts} times, giving up: {reason}. Fix the cause, then press Retry on the "
                f"Deployments page (or run `mlflow-sagemaker-ops hooks retry {rule.name}`), or promote another version."
            )
            self._status(rule, want, "FAILED", message)
            self._set(rule, status="FAILED", attempts=attempts, message=message)
            self.store.log(verb, "failed", rule.name, want, trigger, actor, message, self.replica)
            return None
        delay = min(self.retry_base * 2 ** (attempts - 1), self.retry_cap)
        message = f"attempt {attempts} of {rule.max_attempts} failed, retrying in {delay:g} s: {reason}"
        self._status(rule, want, "PENDING", message)
        self._set(rule, status="PENDING", attempts=attempts, retry_at=time.time() + delay, message=message)
        self.store.log(verb, "retrying", rule.name, want, trigger, actor, message, self.replica)
        self.say(f"{rule.name}: {message}")
        return time.time() + delay

    def _leave(self, rule: Rule, row: Row, target: Any, live: Any, serving: str | None) -> float | None:
        """No version holds the stage or alias: apply the rule's ``on_leave``."""
        if serving is None:
            if row.serving_version is not None:  # the endpoint went away (a delete this pass did not see end)
                if self.registry.status_of(rule, row.serving_version).get("status") == "DELETING":
                    self._status(rule, row.serving_version, "DELETED", f"left {rule.source}; {rule.where} is gone")
                self._fence(rule)
                self.registry.set_serving(rule, None)
                self._set(rule, serving_version=None, status="ABSENT", message=None)
            return None
        if rule.on_leave == "keep":
            if row.status != "KEPT":
                message = (
                    f"no version holds {rule.source}; {rule.where} kept serving version {serving} (on_leave: keep)"
                )
                self._status(rule, serving, "IN_SERVICE", message, live.arn)
                self._set(rule, status="KEPT", serving_version=serving, message=message)
                self.store.log("keep", "kept", rule.name, serving, *self._trigger(rule, None), message, self.replica)
            return None
        if row.retry_at > time.time():
            return row.retry_at
        trigger, actor = self._trigger(rule, None)
        self.store.log("delete", "started", rule.name, serving, trigger, actor, None, self.replica)
        self._status(rule, serving, "DELETING", f"left {rule.source}; deleting {rule.where} (on_leave: delete)")
        self._set(rule, status="DELETING")
        try:
            target.delete()
        except LeaseLost:
            raise
        except Exception as error:
            return self._failed(rule, row, serving, "delete", trigger, actor, error)
        kind = {"sagemaker-mme": "model", "ecs": "ECS service"}.get(rule.kind, "endpoint")
        message = f"left {rule.source}; {kind} {rule.where} deleted (on_leave: delete)"
        self._status(rule, serving, "DELETED", message)
        self.registry.set_serving(rule, None)
        self._set(rule, status="DELETED", serving_version=None, attempts=0, retry_at=0.0, message=message)
        self.store.log("delete", "succeeded", rule.name, serving, trigger, actor, message, self.replica)
        return None

    # ---- helpers ---------------------------------------------------------------------------
    def _serving(self, rule: Rule, version: str, arn: str | None, previous: str | None, message: str) -> None:
        """The new version's IN_SERVICE goes last: once it shows, the other tags are written too."""
        if previous and previous != version:
            self._status(rule, previous, "RETIRED", f"replaced by version {version} on {rule.where}")
        self._fence(rule)
        self.registry.set_serving(rule, version)
        self._status(rule, version, "IN_SERVICE", message, arn)

    def _fence(self, rule: Rule) -> None:
        """Registry writes are fenced like AWS calls: a replica that lost the lease (frozen past it,
        while another replica took over) writes no tag. The store's row names the lease holder."""
        if rule.name in self.leases.lost or self.store.get(rule.name).lease_owner != self.replica:
            raise LeaseLost(rule.name)

    def _status(self, rule: Rule, version: str, status: str, message: str, arn: str | None = None) -> None:
        """Write the version's status tags, then say so in the log (``<deployment>: version 3 is
        IN_SERVICE``): a process that follows the log learns of a change without polling the registry."""
        self._fence(rule)
        self.registry.set_status(rule, version, status, message, arn)
        self.say(f"{rule.name}: version {version} is {status}")

    def _trigger(self, rule: Rule, version: str | None) -> tuple[str, str | None]:
        """What moved ``version`` last (with None: the model's newest event), and who; else the
        poller. A version leaves a stage by another version's event too (archive_existing_versions)."""
        event = self.store.latest_event(rule.model, version)
        if event is None:
            return "poll", None
        return f"{event['source']}:{event['kind']}:{event['target']} (event {event['id']})", event["actor"]

    def _set(self, rule: Rule, **values: Any) -> None:
        self.store.update(rule.name, self.replica, **values)


def serving_before(row: Row, live: Any, rule: Rule) -> str | None:
    """The version the endpoint served before this deploy (to mark it RETIRED)."""
    if live.exists and live.registered_model == rule.model and live.version:
        return live.version
    return row.serving_version
