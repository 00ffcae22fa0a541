"""What the MLflow deployment clients share, written once: AWS clients per settings, the error
mapping at MLflow's boundary, the request payload, lineage after a deploy, and ``run_local``.

The deployment clients are thin adapters over :mod:`mlflow_plugins.deploy`'s contract; MLflow's
plugin manager wants exactly one ``BaseDeploymentClient`` subclass in each entry-point module, so
this module holds none.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from functools import wraps
from typing import Any

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import Target, make_target
from mlflow_plugins.errors import InvalidValue, OpsError, to_mlflow_exception

FLAVOR = "python_function"
CONTENT_TYPES = ("application/json", "text/csv")


def mlflow_errors(method):
    """Every suite error becomes an ``MlflowException`` with a fitting code."""

    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except OpsError as error:
            raise to_mlflow_exception(error) from None

    return wrapper


def show_progress() -> None:
    """Progress lines of the deploy go to stderr when the application set up no logging (the
    ``mlflow deployments`` CLI does not); an application with its own handlers keeps them."""
    logger = logging.getLogger("mlflow_plugins")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


class Targets:
    """One :class:`~mlflow_plugins.aws.AwsClients` per (region, role), made on first use (a new
    boto3 session per call cost ~200 ms), and the targets over them."""

    def __init__(self, region: str | None, assume_role_arn: str | None = None) -> None:
        self.region, self.assume_role_arn = region, assume_role_arn
        self._clients: dict[AwsSettings, Any] = {}
        show_progress()

    def __call__(self, kind: str, config: Any = None) -> Target:
        raw = config if isinstance(config, dict) else {}
        settings = AwsSettings(
            region=raw.get("region_name") or getattr(config, "region_name", None) or self.region,
            assume_role_arn=raw.get("assume_role_arn")
            or getattr(config, "assume_role_arn", None)
            or self.assume_role_arn,
        )
        if settings not in self._clients:  # boto3 clients are thread-safe
            self._clients[settings] = make_clients(settings)
        return make_target(kind, self._clients[settings])


def check_flavor(flavor: str | None) -> None:
    if flavor not in (None, FLAVOR):
        raise InvalidValue(
            name="flavor",
            value=flavor,
            reason="the serving runtime serves pyfunc models",
            allowed=FLAVOR,
            fix="Leave --flavor out.",
        )


def with_lineage(target: Target, deployed: dict[str, Any]) -> dict[str, Any]:
    """Mirror a deployed registered model version into SageMaker lineage; a failure is reported
    with the command that finishes it, and never fails the deployment. A dry run's plan is
    printed instead, and its flavor says that nothing was written (MLflow's CLI prints the flavor
    in "FLAVOR deployment NAME is created" and "Deployment NAME is updated (with flavor FLAVOR)")."""
    if deployed.get("dry_run"):
        logging.getLogger("mlflow_plugins.deploy").info("%s", deployed["plan"])
        wrote = deployed.get("wrote", "nothing was written")
        return {**deployed, "flavor": f"{deployed['flavor']} (dry run: {wrote}; the plan is on stderr)"}
    if not deployed.get("registered_model"):
        return deployed
    from mlflow_plugins.lineage import after_target_deploy

    message = after_target_deploy(target.clients, deployed, target.kind)
    return {**deployed, "lineage": message or "written"}


def payload(inputs: Any, params: dict[str, Any] | None) -> tuple[bytes, str, str | None]:
    """The request body, its content type and the target variant.

    Two params are the client's, not the model's, and are not sent as model params:
    ``ContentType`` (``application/json``, the default, or ``text/csv``) and ``TargetVariant``.
    A string input is sent as it is (CSV text, or JSON text); a DataFrame is sent as
    ``dataframe_split`` JSON, or as CSV with a header row.
    """
    import pandas as pd

    params = dict(params or {})
    content_type = str(params.pop("ContentType", "application/json"))
    target_variant = params.pop("TargetVariant", None)
    if content_type not in CONTENT_TYPES:
        raise InvalidValue(
            name="ContentType",
            value=content_type,
            reason="the client sends JSON or CSV",
            allowed=", ".join(CONTENT_TYPES),
            fix="Pass params={'ContentType': 'text/csv'} or leave it out.",
        )
    if content_type == "text/csv":
        if params:
            raise InvalidValue(
                name="params",
                value=sorted(params),
                reason="a CSV request carries no model params",
                allowed="ContentType and TargetVariant",
                fix="Send JSON to pass model params.",
            )
        if isinstance(inputs, pd.DataFrame):
            return inputs.to_csv(index=False).encode(), "text/csv; header=present", target_variant
        if isinstance(inputs, str):
            return inputs.encode(), "text/csv", target_variant
        raise InvalidValue(
            name="inputs",
            value=type(inputs).__name__,
            reason="CSV input must be CSV text or a DataFrame",
            allowed="str, pandas.DataFrame",
            fix="Pass the CSV text, or drop ContentType=text/csv.",
        )
    if isinstance(inputs, str):
        return inputs.encode(), content_type, target_variant
    if isinstance(inputs, pd.DataFrame):
        body: dict[str, Any] = {"dataframe_split": json.loads(inputs.to_json(orient="split", index=False))}
    elif isinstance(inputs, dict) and {"dataframe_split", "dataframe_records", "instances", "inputs"} & set(inputs):
        body = dict(inputs)
    else:
        body = {"inputs": inputs}
    if params:
        body["params"] = params
    return json.dumps(body).encode(), content_type, target_variant


def run_local(name, model_uri, flavor=None, config=None):
    """Serve the model locally with the suite's runtime (no Docker): ``-C port=8080``."""
    from mlflow_plugins.deploy import local_model_dir

    port = str((config or {}).get("port", 8080))
    command = [
        sys.executable,
        "-c",
        "from mlflow_plugins.cli import cli; cli()",
        "serve",
        "--model-dir",
        local_model_dir(model_uri),
        "--port",
        port,
        "--host",
        "127.0.0.1",
    ]
    print(f"Serving {model_uri} as {name} on http://127.0.0.1:{port} (Ctrl+C stops)", file=sys.stderr)
    subprocess.run(command, check=False, env=dict(os.environ))
