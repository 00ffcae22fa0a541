"""The drift loop of one deployment: monitor its traffic, and on drift retrain, evaluate and
promote (a rule's ``monitor`` section, :mod:`.monitoring`).

Each step is an MLflow run of the project's entry point (``mlflow.projects.run``, the local
environment): ``monitor`` on the endpoint's requests captured since the last round (``window``
back for the first) against the version it serves; then, when it says drift and ``on_drift: retrain``, ``retrain`` from that
version (registering the new one in the rule's model) and ``evaluate`` of the new version against
it, which promotes it to the rule's stage or alias on a pass. Every run is created first with the
tags ``loop.deployment``, ``loop.step`` and ``loop.parent_run_id`` (the step before), then run.

A promotion is a registry change like any other: the controller's next pass deploys the new
version with the rule's rollout. The loop holds a lease of its own (``<deployment>#monitor``): one
replica runs a round, a deploy of the same deployment is not held up by it, and the lease row
keeps the time of the last round, so replicas and restarts keep one round a period. A round runs
only on a settled deployment (IN_SERVICE on the version it should serve), does not retrain again
from a serving version whose challenger failed (until another version serves or the controller
restarts), and stops before its next step once its lease has lapsed. Each step and its outcome
go to the audit log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_plugins.deploy import parse_target
from registry_hooks.monitoring import seconds
from registry_hooks.policy import Rule

SUFFIX = "#monitor"  # the lease row of a deployment's drift loop (store.LEASE_ONLY: not listed as a deployment)


class LoopFailed(Exception):
    """A step of the loop did not finish; ``str()`` says which and why."""


class DriftLoop:
    def __init__(self, client: Any, registry: Any, store: Any, leases: Any, say: Callable[[str], None]) -> None:
        self.client, self.registry, self.store, self.leases, self.say = client, registry, store, leases, say
        self._tried: dict[str, str] = {}  # deployment -> the serving version whose challenger did not pass
        # MLflow runs an entry point's command (`python -m projects.monitor ...`) in the local
        # environment with `python` from PATH: make that the controller's own interpreter.
        here = str(Path(sys.executable).parent)
        if os.environ.get("PATH", "").split(os.pathsep)[0] != here:
            os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")

    def run(self, rule: Rule, now: float | None = None) -> str | None:
        """One round for ``rule``: what happened, or None when another replica holds the loop or
        ran a round less than a period ago (the lease row keeps the time of the last round, so
        replicas and restarts keep one round a period between them)."""
        assert rule.monitor is not None
        lease = f"{rule.name}{SUFFIX}"
        self.store.ensure(lease)  # the lease is a row of its own in the state database
        if not self.leases.take(lease):
            return None
        try:
            now = time.time() if now is None else now
            last = self.store.get(lease).retry_at or 0.0  # a lease row's retry_at: the time of its last round
            if now - last < rule.monitor.every * 0.9:
                return None
            settled = self._settled(rule)
            if settled is not None:  # said, not audited: it repeats every period until the rollout ends
                self.say(f"{rule.name}: drift loop: skipped: {settled}")
                return settled
            self.store.update(lease, self.leases.owner, retry_at=now)
            return self._round(rule, lease, self._window(rule, last, now))
        finally:
            self.leases.drop(lease)

    def _settled(self, rule: Rule) -> str | None:
        """Why the deployment is not in a state to judge (None when it is): a round reads what one
        version served, and does not retrain while a rollout is under way or failed."""
        try:
            row = self.store.get(rule.name)
        except Exception:  # noqa: BLE001 - no row yet: the controller has not passed over the rule
            return "the deployment is not settled (no pass over it yet): no round until it serves"
        if row.status != "IN_SERVICE" or row.desired_version != row.serving_version:
            return (
                f"the deployment is not settled (status {row.status}, should serve {row.desired_version}, serves "
                f"{row.serving_version}): no round until it serves what it should"
            )
        return None

    @staticmethod
    def _window(rule: Rule, last: float, now: float) -> str:
        """The traffic a round reads: since the last round (so consecutive windows cover every
        captured request once, however late a round starts), or ``window`` back for the first;
        never more than 31 days."""
        assert rule.monitor is not None
        length = seconds(rule.monitor.window) or rule.monitor.every
        start = max(last if last else now - length, now - 31 * 86400)
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        return f"{time.strftime(stamp, time.gmtime(start))}/{time.strftime(stamp, time.gmtime(now))}"

    def _round(self, rule: Rule, lease: str, window: str) -> str:
        monitor = rule.monitor
        assert monitor is not None
        version = self.registry.serving(rule)
        if version is None:
            self.say(f"{rule.name}: drift loop: skipped: nothing serves yet")
            return "nothing serves yet"
        serving = f"models:/{rule.model}/{version}"
        region, role = parse_target(rule.target)
        params = {
            "endpoint": rule.endpoint,
            "model": serving,
            "window": window,
            "region": region or "",
            "assume_role_arn": role or "",
            **monitor.monitor,
        }
        run = self._step(rule, "monitor", params, None)
        tags = self.client.get_run(run).data.tags
        verdict, drifted = tags.get("monitor.verdict", "?"), tags.get("monitor.drifted", "")
        if verdict != "drift" or monitor.on_drift == "log":
            detail = f"{verdict}" + (f" in {drifted}" if drifted else "") + f" (run {run})"
            return self._log(rule, "monitor", verdict.replace(" ", "-"), version, detail)
        if self._tried.get(rule.name) == version:  # its last challenger failed: wait for a new serving version
            detail = (
                f"drift in {drifted} (run {run}); not retraining: the last challenger from version {version} did not "
                "pass. Retrain by hand, or promote another version."
            )
            return self._log(rule, "monitor", "drift", version, detail)
        self._log(rule, "monitor", "drift", version, f"drift in {drifted} (run {run}); retraining")
        self._check_lease(rule, lease, "retrain")
        params = {"base_model": serving, "registered_model": rule.model, **monitor.retrain}
        retrained = self._step(rule, "retrain", params, run)
        new = self._version_of(rule, retrained)
        self._log(rule, "retrain", "succeeded", new, f"version {new} from version {version} (run {retrained})")
        self._check_lease(rule, lease, "evaluate")
        promote_to = rule.stage or f"@{rule.alias}"
        params = {
            "challenger": f"models:/{rule.model}/{new}",
            "champion": serving,
            "promote_to": promote_to,
            **monitor.evaluate,
        }
        evaluated = self._step(rule, "evaluate", params, retrained)
        outcome = self.client.get_run(evaluated).data.tags.get("evaluation.verdict", "?")
        promoted = outcome == "pass"
        if not promoted:
            self._tried[rule.name] = version
        detail = f"version {new}: {outcome} (run {evaluated})" + (f"; promoted to {promote_to}" if promoted else "")
        return self._log(rule, "evaluate", "promoted" if promoted else "not-promoted", new, detail)

    def _check_lease(self, rule: Rule, lease: str, step: str) -> None:
        """Fencing between steps: a round whose lease lapsed (another replica may run one now) stops."""
        if lease in self.leases.lost:
            raise LoopFailed(f"{rule.name}: the drift loop's lease was lost before {step}: another replica runs it now")

    def _step(self, rule: Rule, step: str, params: dict[str, Any], parent: str | None) -> str:
        """Run the project's ``step`` entry point as a run tagged into the loop; its run id."""
        import mlflow.projects

        monitor = rule.monitor
        assert monitor is not None
        experiment = self._experiment(monitor.experiment)
        tags = {"loop.deployment": rule.name, "loop.step": step, "mlflow.runName": f"{rule.name}-{step}"}
        if parent:
            tags["loop.parent_run_id"] = parent
        created = self.client.create_run(experiment, tags=tags)
        run_id = created.info.run_id
        self.say(f"{rule.name}: drift loop: {step} (run {run_id})")
        try:
            submitted = mlflow.projects.run(
                monitor.project,
                entry_point=step,
                parameters={k: str(v) for k, v in params.items()},
                env_manager="local",
                run_id=run_id,
                experiment_id=experiment,
                synchronous=True,
            )
        except Exception as error:  # ExecutionException: the step's process failed; its run says why
            self._log(rule, step, "failed", None, f"run {run_id}: {type(error).__name__}: {error}")
            raise LoopFailed(f"{rule.name}: drift loop step {step} failed (run {run_id}): {error}") from None
        return submitted.run_id

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else self.client.create_experiment(name)

    def _version_of(self, rule: Rule, run_id: str) -> str:
        found = self.client.search_model_versions(f"name = '{rule.model}' and run_id = '{run_id}'")
        if not found:
            raise LoopFailed(f"{rule.name}: retrain run {run_id} registered no version of {rule.model}")
        return str(max(int(v.version) for v in found))

    def _log(self, rule: Rule, step: str, result: str, version: str | None, message: str) -> str:
        line = f"{rule.name}: drift loop: {step} {result}: {message}"
        self.say(line)
        try:
            self.store.log(
                f"loop-{step}", result, rule.name, version=version, message=message, replica=self.leases.owner
            )
        except Exception:  # noqa: BLE001 - the database is away; the line said it
            pass
        return line
