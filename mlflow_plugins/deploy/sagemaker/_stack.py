"""``via=cloudformation`` for SageMaker endpoints: the stack ``mlflow-sagemaker-ops-<endpoint>``
owns the endpoint, changed through change sets (:mod:`mlflow_plugins.deploy.common.stack`) of
the deployment's exported template (:mod:`._export`; the archive uploaded, content-addressed).
SageMaker's alarm rollback of the endpoint update rolls the stack back too."""

from __future__ import annotations

from typing import Any

from mlflow_plugins.deploy.common.plan import Plan
from mlflow_plugins.deploy.common.scaling import read_spec
from mlflow_plugins.deploy.common.stack import EMPTY, PREFIX, StackOwner
from mlflow_plugins.deploy.sagemaker import _alarms, _autoscaling, _export
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig, parse
from mlflow_plugins.errors import ResourceConflict


def stack_name(endpoint: str) -> str:
    return f"{PREFIX}{endpoint}"


class StackDeployer:
    def __init__(self, deployer: Any) -> None:
        self.deployer = deployer

    def owner(self, name: str, cfg: SageMakerConfig) -> StackOwner:
        return StackOwner(
            self.deployer.clients,
            self.deployer.say,
            "sagemaker",
            name,
            stack_name(name),
            {"EndpointName": name},
            cfg.timeout_seconds,
        )

    def stack(self, name: str, cfg: SageMakerConfig) -> dict[str, Any] | None:
        return self.owner(name, cfg).stack()

    def plan(self, name: str, model_uri: str, cfg: SageMakerConfig) -> Plan:
        return self.owner(name, cfg).plan(self._template(name, model_uri, cfg))

    def deploy(self, name: str, model_uri: str, cfg: SageMakerConfig) -> dict[str, Any]:
        self.owner(name, cfg).deploy(self._template(name, model_uri, cfg))
        return self.deployer.get(name)

    def delete(self, name: str, cfg: SageMakerConfig) -> None:
        self.owner(name, cfg).delete()

    def _template(self, name: str, model_uri: str, cfg: SageMakerConfig) -> dict[str, Any]:
        """The deployment's template, once it is sure that a stack may own the endpoint."""
        found = self.stack(name, cfg)
        if (found is None or found["StackStatus"] in EMPTY) and self.deployer.describe(name) is not None:
            raise ResourceConflict(
                kind="SageMaker endpoint not owned by a stack",
                name=name,
                fix=f"Delete it (mlflow deployments delete) and deploy with -C via=cloudformation, or import it into "
                f"stack {stack_name(name)} with CloudFormation's resource import.",
            )
        if found is not None:
            cfg = self._carried(name, cfg)
        return _export.template(_export.from_config(self.deployer, name, model_uri, cfg))

    def _carried(self, name: str, cfg: SageMakerConfig) -> SageMakerConfig:
        """An update keeps every setting it does not give, as through the API; autoscaling and
        the auto-alarms too (a template without them would delete them)."""
        current = self.deployer.describe(name)
        if current is None:
            return cfg
        live = self.deployer.sagemaker.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
        values = dict(self.deployer.read_live(current, live).carried)
        given = cfg.given_values()
        variant = live["ProductionVariants"][0]["VariantName"]
        scaling = self.deployer.clients("application-autoscaling")
        found = _autoscaling.registered(scaling, name, variant)
        if "autoscaling" not in given and found is not None:
            values["autoscaling"] = _export.as_config(read_spec(scaling, found))
        if "auto_alarms" not in given:
            names = _alarms.names(name, variant)
            alarms = self.deployer.clients("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
            values["auto_alarms"] = len(alarms) == len(names)
        return parse({**values, **given})
