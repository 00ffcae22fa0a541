"""The Model Registry side: which version a rule wants, and the status tags the UI shows.

Tags on the model version, per deployment ``<d>``:
``deploy.<d>.status`` (PENDING, DEPLOYING, IN_SERVICE, ROLLED_BACK, FAILED, and RETIRED or
DELETED once another version replaced it or the leave rule deleted the endpoint),
``deploy.<d>.arn``, ``deploy.<d>.time`` (UTC, ISO 8601) and ``deploy.<d>.message``.
On the registered model: ``deploy.<d>.version``, the version serving the deployment now.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow_plugins import secrets

from registry_hooks.policy import Rule

STATUSES = ("PENDING", "DEPLOYING", "IN_SERVICE", "ROLLED_BACK", "FAILED", "RETIRED", "DELETED")
MISSING = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def tag(deployment: str, field: str) -> str:
    return f"deploy.{deployment}.{field}"


class Registry:
    def __init__(self, client: Any) -> None:
        self.client = client  # an MlflowClient

    def desired(self, rule: Rule) -> str | None:
        """The version that holds the rule's stage or alias now, or None."""
        try:
            if rule.alias:
                return str(self.client.get_model_version_by_alias(rule.model, rule.alias).version)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, and still in the UI
                found = self.client.get_latest_versions(rule.model, stages=[rule.stage])
        except MlflowException as error:
            if error.error_code in MISSING:
                return None  # no such model or alias: nothing is wanted
            raise
        return str(max(int(v.version) for v in found)) if found else None

    def status_of(self, rule: Rule, version: str) -> dict[str, str]:
        try:
            tags = self.client.get_model_version(rule.model, version).tags or {}
        except MlflowException as error:
            if error.error_code in MISSING:
                return {}
            raise
        prefix = f"deploy.{rule.name}."
        return {k[len(prefix):]: v for k, v in tags.items() if k.startswith(prefix)}

    def set_status(self, rule: Rule, version: str, status: str, message: str, arn: str | None = None) -> None:
        """Write the deployment's status tags on the version (a deleted version is skipped). MLflow
        sets one tag per call, so ``status`` goes last: once it reads new, the others are too."""
        assert status in STATUSES, status
        values = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "message": secrets.redact(message)[:4900]}
        if arn:
            values["arn"] = arn
        values["status"] = status
        try:
            for field, value in values.items():
                self.client.set_model_version_tag(rule.model, version, tag(rule.name, field), value)
        except MlflowException as error:
            if error.error_code not in MISSING:
                raise

    def set_lineage(self, rule: Rule, version: str, outcome: str) -> None:
        """``deploy.<d>.lineage``: ``written``, or ``failed: <reason>`` (retried)."""
        try:
            self.client.set_model_version_tag(rule.model, version, tag(rule.name, "lineage"), secrets.redact(outcome)[:4900])
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
