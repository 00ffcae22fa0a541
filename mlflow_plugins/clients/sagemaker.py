"""The ``mlflow deployments`` target ``sagemaker-ops[:/region[/assume_role_arn]]`` (and ``sagemaker``
through the override hook): a thin adapter from MLflow's plugin contract to the ``sagemaker``
and ``sagemaker-mme`` targets of :mod:`mlflow_plugins.deploy`. The config is parsed once here."""

from __future__ import annotations

from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mlflow.exceptions import MlflowException

from mlflow_plugins.clients import _base
from mlflow_plugins.clients._base import mlflow_errors  # the same local runtime
from mlflow_plugins.clients._base import run_local as run_local
from mlflow_plugins.deploy import converge, parse_target
from mlflow_plugins.deploy.sagemaker import MultiModelDeployer, sagemaker_help
from mlflow_plugins.errors import InvalidValue


class SageMakerOpsDeploymentClient(BaseDeploymentClient):
    """Deploys MLflow models to SageMaker real-time, serverless and async endpoints and to
    multi-model endpoints, safely."""

    def __init__(self, target_uri: str) -> None:
        super().__init__(target_uri)
        self.targets = _base.Targets(*parse_target(target_uri))

    def _endpoint_api(self, config=None) -> MultiModelDeployer:
        return MultiModelDeployer(self.targets("sagemaker", config).clients)

    # ---- deployments: a single-model endpoint, or with --endpoint a model on a multi-model endpoint
    @mlflow_errors
    def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):
        _base.check_flavor(flavor)
        if endpoint is not None:
            target = self.targets("sagemaker-mme")
            return _base.with_lineage(target, target.create(f"{endpoint}/{name}", model_uri, config))
        target = self.targets("sagemaker", config)
        cfg = target.parse(config)
        if cfg.mode in ("replace", "add"):  # MLflow's built-in meaning of mode: update when it exists
            return _base.with_lineage(target, converge(target, name, model_uri, cfg))
        return _base.with_lineage(target, target.create(name, model_uri, cfg))

    @mlflow_errors
    def update_deployment(self, name, model_uri=None, flavor=None, config=None, endpoint=None):
        _base.check_flavor(flavor)
        if endpoint is not None:
            target = self.targets("sagemaker-mme")
            return _base.with_lineage(target, target.update(f"{endpoint}/{name}", model_uri, config))
        target = self.targets("sagemaker", config)
        return _base.with_lineage(target, target.update(name, model_uri, target.parse(config)))

    @mlflow_errors
    def delete_deployment(self, name, config=None, endpoint=None):
        if endpoint is not None:
            self.targets("sagemaker-mme").delete(f"{endpoint}/{name}", config)
            return
        target = self.targets("sagemaker", config)
        target.delete(name, target.parse(config))

    @mlflow_errors
    def list_deployments(self, endpoint=None):
        if endpoint is not None:
            return self._endpoint_api().list_models(endpoint)
        return self.targets("sagemaker").list()

    @mlflow_errors
    def get_deployment(self, name, endpoint=None):
        if endpoint is not None:
            return self.targets("sagemaker-mme").get(f"{endpoint}/{name}")
        return self.targets("sagemaker").get(name)

    @mlflow_errors
    def predict(self, deployment_name=None, inputs=None, endpoint=None, params=None):
        body, content_type, target_variant = _base.payload(inputs, params)
        options = {"TargetVariant": target_variant}
        if endpoint is not None and "/" in endpoint and not deployment_name:
            # MLflow's predict CLI takes --name or --endpoint, not both: --endpoint ENDPOINT/MODEL
            endpoint, deployment_name = endpoint.split("/", 1)
        if endpoint is not None:
            if not deployment_name:
                raise InvalidValue(
                    name="--name",
                    value=deployment_name,
                    reason="a multi-model endpoint serves many models",
                    allowed=f"a model on it (mlflow deployments list --endpoint {endpoint})",
                    fix=f"Pass --endpoint {endpoint}/MODEL (MLflow's predict CLI takes --name or --endpoint, not both).",
                )
            answer = self.targets("sagemaker-mme").invoke(f"{endpoint}/{deployment_name}", body, content_type, options)
        else:
            answer = self.targets("sagemaker").invoke(deployment_name, body, content_type, options)
        return PredictionsResponse.from_json(answer)

    # ---- multi-model endpoints ------------------------------------------------------------
    @mlflow_errors
    def create_endpoint(self, name, config=None):
        return self._endpoint_api(config).create_endpoint(name, config)

    @mlflow_errors
    def update_endpoint(self, endpoint, config=None):
        return self._endpoint_api(config).update_endpoint(endpoint, config)

    @mlflow_errors
    def delete_endpoint(self, endpoint):
        self._endpoint_api().delete_endpoint(endpoint)

    @mlflow_errors
    def list_endpoints(self):
        return self._endpoint_api().list_endpoints()

    @mlflow_errors
    def get_endpoint(self, endpoint):
        return self._endpoint_api().get_endpoint(endpoint)

    def explain(self, deployment_name=None, df=None, endpoint=None):
        raise MlflowException(
            "explain is not supported by the sagemaker target: SageMaker endpoints serve "
            "predictions only. Use SageMaker Clarify for explanations.",
            error_code="INVALID_PARAMETER_VALUE",
        )


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
        "Config keys (-C key=value):\n" + sagemaker_help()
    )
