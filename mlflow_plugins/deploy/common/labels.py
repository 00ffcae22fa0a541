"""The suite's own tags on every resource it makes: the managed marker, the deployment id, the
model URI and digest, provenance (registered model, version, run id) and the suite's version;
then the user's tags (which may never use the suite's prefix, see :mod:`.keys`)."""

from __future__ import annotations

from typing import Any

import mlflow_plugins
from mlflow_plugins import secrets
from mlflow_plugins.deploy.common.keys import SUITE_PREFIX
from mlflow_plugins.deploy.common.origin import ModelOrigin

MANAGED = f"{SUITE_PREFIX}managed"
DEPLOYMENT_ID = f"{SUITE_PREFIX}deployment-id"
MODEL_URI = f"{SUITE_PREFIX}model-uri"
MODEL_DIGEST = f"{SUITE_PREFIX}model-digest"
REGISTERED_MODEL = f"{SUITE_PREFIX}registered-model"
MODEL_VERSION = f"{SUITE_PREFIX}model-version"
RUN_ID = f"{SUITE_PREFIX}run-id"
SUITE_VERSION = f"{SUITE_PREFIX}version"


def suite_tags(
    model_uri: str, digest: str, origin: ModelOrigin | None, deployment: str | None = None
) -> dict[str, str]:
    values = {
        MANAGED: "true",
        MODEL_URI: secrets.strip_uri(model_uri)[:256],
        MODEL_DIGEST: digest[:64],
        SUITE_VERSION: mlflow_plugins.__version__,
        **(origin.tags() if origin else {}),
    }
    if deployment is not None:
        values[DEPLOYMENT_ID] = deployment
    return values


def with_user_tags(values: dict[str, str], user: dict[str, Any] | None) -> dict[str, str]:
    return {**values, **{str(k): str(v) for k, v in (user or {}).items()}}


def is_suite(key: str) -> bool:
    return key.startswith(SUITE_PREFIX)


def is_users(key: str) -> bool:
    """A tag the user set: neither the suite's nor AWS's own (``aws:``, CloudFormation's say)."""
    return not key.startswith(SUITE_PREFIX) and not key.startswith("aws:")


def as_dict(tags: list[dict[str, str]], key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in tags}
