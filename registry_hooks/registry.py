"""The Model Registry side: which version a rule wants, and the status tags the UI shows.

Tags on the model version, per deployment ``<d>``:
``deploy.<d>.status`` (PENDING, DEPLOYING, IN_SERVICE, ROLLED_BACK, FAILED, and RETIRED or
DELETED once another version replaced it or the leave rule deleted the endpoint),
``deploy.<d>.arn``, ``deploy.<d>.time`` (UTC, ISO 8601) and ``deploy.<d>.message``.
On the registered model: ``deploy.<d>.version``, the version serving the deployment now.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mlflow.exceptions import MlflowException

from mlflow_plugins import secrets
from registry_hooks.policy import Rule

STATUSES = (
    "PENDING",
    "DEPLOYING",
    "IN_SERVICE",
    "ROLLED_BACK",
    "FAILED",
    "RETIRED",
    "DELETING",
    "DELETED",
    "SUPERSEDED",
)
STALE_ON_NEW_DEPLOY = ("arn", "lineage")  # facts of an earlier deployment of the version
MISSING = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def tag(deployment: str, field: str) -> str:
    return f"deploy.{deployment}.{field}"


class Registry:
    def __init__(self, client: Any) -> None:
        self.client = client  # an MlflowClient

    def desired(self, rule: Rule) -> str | None:
        """The version the rule should serve now, or None (see :meth:`holders`)."""
        holders = self.holders(rule)
        return holders[0] if holders else None

    def holders(self, rule: Rule) -> list[str]:
        """Every version holding the rule's alias or stage, the one to serve first.

        A stage can hold several versions: the UI's transition leaves the others there unless
        "Transition existing ... versions to Archived" is ticked. A transition is an intent to serve
        that version, so the most recent transition wins: MLflow stamps ``last_updated_timestamp``
        at every transition (tags do not change it), the version number breaks ties."""
        try:
            if rule.alias:
                return [str(self.client.get_model_version_by_alias(rule.model, rule.alias).version)]
            found = [
                v
                for v in self.client.search_model_versions(f"name = '{_quoted(rule.model)}'")
                if v.current_stage == rule.stage
            ]
        except MlflowException as error:
            if error.error_code in MISSING:
                return []  # no such model or alias: nothing is wanted
            raise
        found.sort(key=lambda v: (v.last_updated_timestamp or 0, int(v.version)), reverse=True)
        return [str(v.version) for v in found]

    def status_of(self, rule: Rule, version: str) -> dict[str, str]:
        try:
            tags = self.client.get_model_version(rule.model, version).tags or {}
        except MlflowException as error:
            if error.error_code in MISSING:
                return {}
            raise
        prefix = f"deploy.{rule.name}."
        return {k[len(prefix) :]: v for k, v in tags.items() if k.startswith(prefix)}

    def set_status(self, rule: Rule, version: str, status: str, message: str, arn: str | None = None) -> None:
        """Write the deployment's status tags on the version (a deleted version is skipped). MLflow
        sets one tag per call, so ``status`` goes last: once it reads new, the others are too."""
        assert status in STATUSES, status
        if status == "DEPLOYING":  # a new deployment of this version: an earlier one's ARN and lineage are not its
            self._drop(rule, version, STALE_ON_NEW_DEPLOY)
        values = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "message": secrets.redact(message)[:4900],
        }
        if arn:
            values["arn"] = arn
        values["status"] = status
        try:
            for field, value in values.items():
                self.client.set_model_version_tag(rule.model, version, tag(rule.name, field), value)
        except MlflowException as error:
            if error.error_code not in MISSING:
                raise

    def _drop(self, rule: Rule, version: str, fields: tuple[str, ...]) -> None:
        present = self.status_of(rule, version)
        for field in fields:
            if field in present:
                try:
                    self.client.delete_model_version_tag(rule.model, version, tag(rule.name, field))
                except MlflowException as error:
                    if error.error_code not in MISSING:
                        raise

    def set_lineage(self, rule: Rule, version: str, outcome: str) -> None:
        """``deploy.<d>.lineage``: ``written``, or ``failed: <reason>`` (retried)."""
        try:
            self.client.set_model_version_tag(
                rule.model, version, tag(rule.name, "lineage"), secrets.redact(outcome)[:4900]
            )
        except MlflowException as error:
            if error.error_code not in MISSING:
                raise

    def set_serving(self, rule: Rule, version: str | None) -> None:
        key = tag(rule.name, "version")
        try:
            if version is None:
                self.client.delete_registered_model_tag(rule.model, key)
            else:
                self.client.set_registered_model_tag(rule.model, key, version)
        except MlflowException as error:
            if error.error_code not in MISSING:
                raise

    def serving(self, rule: Rule) -> str | None:
        try:
            return (self.client.get_registered_model(rule.model).tags or {}).get(tag(rule.name, "version"))
        except MlflowException as error:
            if error.error_code in MISSING:
                return None
            raise


def _quoted(name: str) -> str:
    """A registered model name inside a single-quoted search filter."""
    return name.replace("\\", "\\\\").replace("'", "\\'")
