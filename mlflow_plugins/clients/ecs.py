"""The ``mlflow deployments`` target ``ecs[:/region]``: MLflow models as Amazon ECS (Fargate) services.

A thin adapter: MLflow's plugin contract on one side, the ``ecs`` target of
:mod:`mlflow_plugins.deploy` on the other. A deployment is named by its service, ``NAME`` or
``CLUSTER/NAME`` (a bare name is looked up in every cluster, and must be unique).
"""

from __future__ import annotations

import os

from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mlflow.exceptions import MlflowException

from mlflow_plugins.clients import _base
from mlflow_plugins.clients._base import mlflow_errors  # the same local runtime
from mlflow_plugins.clients._base import run_local as run_local
from mlflow_plugins.deploy import parse_target
from mlflow_plugins.deploy.ecs import ecs_help
from mlflow_plugins.errors import InvalidValue

PREDICT_VIA_ENV = "MLFLOW_SAGEMAKER_OPS_ECS_PREDICT_VIA"  # load_balancer | task (MLflow's predict CLI has no params)


class EcsDeploymentClient(BaseDeploymentClient):
    """Deploys MLflow models to ECS services on Fargate, with the circuit breaker and rollback."""

    def __init__(self, target_uri: str) -> None:
        super().__init__(target_uri)
        region, role = parse_target(target_uri)
        if role:
            raise InvalidValue(
                name="target",
                value=target_uri,
                reason="the ecs target takes a region only",
                allowed="ecs or ecs:/REGION",
                fix="Pass -t ecs:/eu-west-1; set credentials with AWS_PROFILE.",
            )
        self.targets = _base.Targets(region)

    @staticmethod
    def _checked(flavor: str | None, endpoint: str | None) -> None:
        _base.check_flavor(flavor)
        if endpoint is not None:
            raise InvalidValue(
                name="--endpoint",
                value=endpoint,
                reason="an ECS service serves one model",
                allowed="no --endpoint",
                fix="Use -t sagemaker --endpoint for a multi-model endpoint.",
            )

    @mlflow_errors
    def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):
        self._checked(flavor, endpoint)
        target = self.targets("ecs", config)
        return _base.with_lineage(target, target.create(name, model_uri, target.parse(config)))

    @mlflow_errors
    def update_deployment(self, name, model_uri=None, flavor=None, config=None, endpoint=None):
        self._checked(flavor, endpoint)
        target = self.targets("ecs", config)
        return _base.with_lineage(target, target.update(name, model_uri, config))

    @mlflow_errors
    def delete_deployment(self, name, config=None, endpoint=None):
        self._checked(None, endpoint)
        self.targets("ecs", config).delete(name, config)

    @mlflow_errors
    def list_deployments(self, endpoint=None):
        self._checked(None, endpoint)
        return self.targets("ecs").list()

    @mlflow_errors
    def get_deployment(self, name, endpoint=None):
        self._checked(None, endpoint)
        return self.targets("ecs").get(name)

    @mlflow_errors
    def predict(self, deployment_name=None, inputs=None, endpoint=None, params=None):
        """``params``: ``ContentType`` as for SageMaker, and ``via`` (``load_balancer``, the default
        when the service has one, or ``task``: a running task's address, reachable inside the VPC
        and in the sandbox); the CLI reads ``via`` from MLFLOW_SAGEMAKER_OPS_ECS_PREDICT_VIA."""
        self._checked(None, endpoint)
        params = dict(params or {})
        via = params.pop("via", None) or os.environ.get(PREDICT_VIA_ENV) or None
        body, content_type, target_variant = _base.payload(inputs, params)
        options = {"via": via, "TargetVariant": target_variant}
        return PredictionsResponse.from_json(self.targets("ecs").invoke(deployment_name, body, content_type, options))

    def explain(self, deployment_name=None, df=None, endpoint=None):
        raise MlflowException(
            "explain is not supported by the ecs target: the runtime serves predictions only.",
            error_code="INVALID_PARAMETER_VALUE",
        )


def target_help():
    return (
        "Target: ecs[:/region]. Deploys MLflow models as Amazon ECS services on Fargate: the suite's runtime in ECS\n"
        "mode fetches the model from S3 at start. Rolling updates run with the deployment circuit breaker and\n"
        "rollback on by default; create and update wait for a steady service and fail with ECS's reason when\n"
        "the breaker rolls the deployment back. --name is the service, NAME or CLUSTER/NAME.\n"
        "update without -m changes settings only (for example -C desired_count=3); every setting not given is\n"
        "carried over. delete removes the service, its task definitions, autoscaling, log group and archives.\n"
        f"predict: through the load balancer when there is one, else a running task's address (inside the VPC);\n"
        f"params via=load_balancer|task, or {PREDICT_VIA_ENV} for the CLI.\n\n"
        "Config keys (-C key=value):\n" + ecs_help()
    )
