"""``via=cloudformation`` for SageMaker endpoints: the stack ``mlflow-sagemaker-ops-<endpoint>``
owns the endpoint, changed through change sets (:mod:`mlflow_plugins.deploy.common.stack`) of
the deployment's exported template (:mod:`._export`; the archive uploaded, content-addressed).
SageMaker's alarm rollback of the endpoint update rolls the stack back too."""

from __future__ import annotations

from typing import Any

from mlflow_plugins.deploy.common import archives
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.plan import Plan
from mlflow_plugins.deploy.common.scaling import read_spec
from mlflow_plugins.deploy.common.stack import PREFIX, StackOwner, check_owner
from mlflow_plugins.deploy.sagemaker import _alarms, _autoscaling, _export
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig, parse


def stack_name(endpoint: str) -> str:
    return f"{PREFIX}{endpoint}"


def folder(endpoint: str) -> str:
    """Where the stack's archives go: no API deploy or delete of the endpoint collects them."""
    return f"{archives.STACKS}/{endpoint}"


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
        """The change set's changes; nothing is uploaded (the template names the archive's address)."""
        return self.owner(name, cfg).plan(self._template(name, model_uri, cfg, upload=False))

    def deploy(self, name: str, model_uri: str, cfg: SageMakerConfig) -> dict[str, Any]:
        template = self._template(name, model_uri, cfg)
        retained = template["Resources"]["Endpoint"]["Properties"].get("RetainAllVariantProperties")
        if retained and "instance_count" in cfg.given:
            self.deployer.say(
                f"instance_count={cfg.instance_count} is the endpoint config's; autoscaling owns the live count "
                "(RetainAllVariantProperties keeps it): change min_capacity and max_capacity to move it"
            )
        self.owner(name, cfg).deploy(template)
        return self.deployer.get(name)

    def delete(self, name: str, cfg: SageMakerConfig) -> None:
        """The stack, then the archives its deploys uploaded."""
        self.owner(name, cfg).delete()
        bucket = cfg.bucket or archives.default_bucket(self.deployer.clients)
        archives.delete_folder(self.deployer.clients("s3"), bucket, folder(name))

    def _template(self, name: str, model_uri: str, cfg: SageMakerConfig, upload: bool = True) -> dict[str, Any]:
        """The deployment's template, once it is sure that a stack may own the endpoint."""
        found = self.stack(name, cfg)
        described = self.deployer.describe(name)
        tags = (
            suite_labels.as_dict(self.deployer.sagemaker.list_tags(ResourceArn=described["EndpointArn"])["Tags"])
            if described
            else None
        )
        check_owner("SageMaker endpoint", name, tags, stack_name(name), "cloudformation")
        if found is not None:
            cfg = self._carried(name, cfg)
        return _export.template(_export.from_config(self.deployer, name, model_uri, cfg, folder(name), upload))

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
