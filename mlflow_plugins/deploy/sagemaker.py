"""The ``mlflow deployments`` target ``sagemaker-ops[:/region[/assume_role_arn]]``.

A thin adapter: MLflow's plugin contract on one side, :class:`._sagemaker.SageMakerDeployer` on
the other. Every suite error becomes an ``MlflowException`` with a fitting code here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import wraps
from typing import Any
from urllib.parse import urlparse

from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mlflow.exceptions import MlflowException

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import _mme, _sagemaker, config as target_config
from mlflow_plugins.errors import InvalidValue, OpsError, to_mlflow_exception

FLAVOR = "python_function"
CONTENT_TYPES = ("application/json", "text/csv")


def _mlflow_errors(method):
    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except OpsError as error:
            raise to_mlflow_exception(error) from None

    return wrapper


def parse_target(target_uri: str) -> tuple[str | None, str | None]:
    """``sagemaker-ops:/eu-west-1/arn:aws:iam::1:role/x`` -> (region, role)."""
    path = urlparse(target_uri).path.strip("/") if ":" in target_uri else ""
    if not path:
        return None, None
    region, _, role = path.partition("/")
    return region or None, role or None


class SageMakerOpsDeploymentClient(BaseDeploymentClient):
    """Deploys MLflow models to SageMaker real-time and serverless endpoints, safely."""

    def __init__(self, target_uri: str) -> None:
        super().__init__(target_uri)
        self.region, self.assume_role_arn = parse_target(target_uri)
        self._clients: dict[AwsSettings, Any] = {}

    def _deployer(self, config: dict[str, Any] | None = None) -> _sagemaker.SageMakerDeployer:
        parsed = target_config.parse(config)
        settings = AwsSettings(region=parsed["region_name"] or self.region,
                               assume_role_arn=parsed["assume_role_arn"] or self.assume_role_arn)
        if settings not in self._clients:  # boto3 clients are thread-safe; making one costs ~50 ms
            self._clients[settings] = make_clients(settings)
        return _sagemaker.SageMakerDeployer(self._clients[settings])

    def _multi_model(self, config: dict[str, Any] | None = None) -> _mme.MultiModelDeployer:
        deployer = self._deployer(config)
        return _mme.MultiModelDeployer(deployer.clients)

    @staticmethod
    def _pyfunc(flavor: str | None) -> None:
        if flavor not in (None, FLAVOR):
            raise InvalidValue(name="flavor", value=flavor, reason="the serving runtime serves pyfunc models",
                               allowed=FLAVOR, fix="Leave --flavor out.")

    @staticmethod
    def _no_model_config(config: dict[str, Any] | None, endpoint: str) -> None:
        if config:
            raise InvalidValue(name="config", value=sorted(config), reason="a model on a multi-model endpoint has no settings of its own",
                               allowed="no -C", fix=f"Set instance, scaling and image keys with `mlflow deployments update-endpoint --endpoint {endpoint}`.")

    # ---- deployments: a single-model endpoint, or with --endpoint a model on a multi-model endpoint
    @_mlflow_errors
    def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):
        self._pyfunc(flavor)
        if endpoint is not None:
            self._no_model_config(config, endpoint)
            mme = self._multi_model()
            return _with_lineage(mme, mme.add_model(endpoint, name, model_uri), _mme.LINEAGE_TARGET)
        deployer = self._deployer(config)
        mode = target_config.parse(config)["mode"]
        if mode in ("replace", "add") and deployer.exists(name):  # MLflow's built-in meaning of mode
            return _with_lineage(deployer, deployer.update(name, model_uri, dict(config or {})))
        return _with_lineage(deployer, deployer.create(name, model_uri, {**(config or {}), "mode": "create"}))

    @_mlflow_errors
    def update_deployment(self, name, model_uri=None, flavor=None, config=None, endpoint=None):
        self._pyfunc(flavor)
        if endpoint is not None:
            self._no_model_config(config, endpoint)
            if model_uri is None:
                raise InvalidValue(name="model URI (-m)", value=None, reason="an update on a multi-model endpoint replaces the model",
                                   allowed="any MLflow model URI", fix="Pass -m models:/name/version.")
            mme = self._multi_model()
            return _with_lineage(mme, mme.add_model(endpoint, name, model_uri, replace=True), _mme.LINEAGE_TARGET)
        deployer = self._deployer(config)
        return _with_lineage(deployer, deployer.update(name, model_uri, {"mode": "replace", **(config or {})}))

    @_mlflow_errors
    def delete_deployment(self, name, config=None, endpoint=None):
        if endpoint is not None:
            self._no_model_config(config, endpoint)
            return self._multi_model().delete_model(endpoint, name)
        self._deployer(config).delete(name, config)

    @_mlflow_errors
    def list_deployments(self, endpoint=None):
        if endpoint is not None:
            return self._multi_model().list_models(endpoint)
        return self._deployer().list()

    @_mlflow_errors
    def get_deployment(self, name, endpoint=None):
        if endpoint is not None:
            return self._multi_model().get_model(endpoint, name)
        return self._deployer().get(name)

    @_mlflow_errors
    def predict(self, deployment_name=None, inputs=None, endpoint=None, params=None):
        body, content_type, target_variant = _payload(inputs, params)
        if endpoint is not None and "/" in endpoint and not deployment_name:
            # MLflow's predict CLI takes --name or --endpoint, not both: --endpoint ENDPOINT/MODEL
            endpoint, deployment_name = endpoint.split("/", 1)
        if endpoint is not None:
            if target_variant is not None:
                raise InvalidValue(name="TargetVariant", value=target_variant, reason="a multi-model endpoint has one variant",
                                   allowed="no TargetVariant", fix="Drop the TargetVariant param.")
            if not deployment_name:
                raise InvalidValue(name="--name", value=deployment_name, reason="a multi-model endpoint serves many models",
                                   allowed=f"a model on it (mlflow deployments list --endpoint {endpoint})",
                                   fix=f"Pass --endpoint {endpoint}/MODEL (MLflow's predict CLI takes --name or --endpoint, not both).")
            return PredictionsResponse.from_json(self._multi_model().invoke(endpoint, deployment_name, body, content_type))
        return PredictionsResponse.from_json(self._deployer().invoke(deployment_name, body, content_type, target_variant))

    # ---- multi-model endpoints ------------------------------------------------------------
    @_mlflow_errors
    def create_endpoint(self, name, config=None):
        return self._multi_model(config).create_endpoint(name, config)

    @_mlflow_errors
    def update_endpoint(self, endpoint, config=None):
        return self._multi_model(config).update_endpoint(endpoint, config)

    @_mlflow_errors
    def delete_endpoint(self, endpoint):
        self._multi_model().delete_endpoint(endpoint)

    @_mlflow_errors
    def list_endpoints(self):
        return self._multi_model().list_endpoints()

    @_mlflow_errors
    def get_endpoint(self, endpoint):
        return self._multi_model().get_endpoint(endpoint)

    def explain(self, deployment_name=None, df=None, endpoint=None):
        raise MlflowException("explain is not supported by the sagemaker target: SageMaker endpoints serve "
                              "predictions only. Use SageMaker Clarify for explanations.", error_code="INVALID_PARAMETER_VALUE")


def _with_lineage(deployer: Any, deployed: dict[str, Any], target: str = "sagemaker") -> dict[str, Any]:
    """Mirror a deployed registered model version into SageMaker lineage; a failure is printed
    with the command that finishes it, and never fails the deployment."""
    from mlflow_plugins.lineage import after_target_deploy

    message = after_target_deploy(deployer.clients, deployed, target, deployer.say)
    return {**deployed, "lineage": message or "written"} if deployed.get("registered_model") else deployed


def _payload(inputs: Any, params: dict[str, Any] | None) -> tuple[bytes, str, str | None]:
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
        raise InvalidValue(name="ContentType", value=content_type, reason="the client sends JSON or CSV",
                           allowed=", ".join(CONTENT_TYPES), fix="Pass params={'ContentType': 'text/csv'} or leave it out.")
    if content_type == "text/csv":
        if params:
            raise InvalidValue(name="params", value=sorted(params), reason="a CSV request carries no model params",
                               allowed="ContentType and TargetVariant", fix="Send JSON to pass model params.")
        if isinstance(inputs, pd.DataFrame):
            return inputs.to_csv(index=False).encode(), "text/csv; header=present", target_variant
        if isinstance(inputs, str):
            return inputs.encode(), "text/csv", target_variant
        raise InvalidValue(name="inputs", value=type(inputs).__name__, reason="CSV input must be CSV text or a DataFrame",
                           allowed="str, pandas.DataFrame", fix="Pass the CSV text, or drop ContentType=text/csv.")
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
    from mlflow_plugins.deploy._artifacts import local_model_dir

    port = str((config or {}).get("port", 8080))
    command = [sys.executable, "-c", "from mlflow_plugins.cli import cli; cli()", "serve",
               "--model-dir", local_model_dir(model_uri), "--port", port, "--host", "127.0.0.1"]
    print(f"Serving {model_uri} as {name} on http://127.0.0.1:{port} (Ctrl+C stops)", file=sys.stderr)
    subprocess.run(command, check=False, env=dict(os.environ))


def target_help():
    return (
        "Target: sagemaker-ops[:/region[/assume_role_arn]] (also sagemaker, when the suite is installed).\n"
        "Deploys MLflow models to SageMaker real-time, serverless and async endpoints with stable variant names,\n"
        "canary, linear, rolling and shadow updates, alarm rollback and content-addressed model uploads.\n"
        "Region and credentials come from standard boto3 configuration (AWS_REGION, AWS_PROFILE, ...).\n"
        "predict: params ContentType (application/json or text/csv) and TargetVariant are the client's,\n"
        "not the model's. update without -m promotes a shadow variant (see strategy=shadow).\n"
        "Multi-model endpoints: create-endpoint/update-endpoint/get-endpoint/list-endpoints/delete-endpoint\n"
        "--endpoint E (-C as below, plus image_manifest); create/update/delete/get/predict --endpoint E --name MODEL\n"
        "and list --endpoint E manage the models on it (each checked against the image before upload);\n"
        "predict --endpoint E/MODEL, as MLflow's predict CLI takes --name or --endpoint, not both.\n\n"
        "Config keys (-C key=value):\n" + target_config.help_text()
    )
