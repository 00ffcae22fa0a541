"""One fixture per deployment target and one per front door: the contract suite
(``test_target_contract.py``) runs every test against every pairing. A new target passes by
implementing :class:`mlflow_plugins.deploy.Target` and adding one :class:`Place` here, the way
Optuna ships its storage tests.

Everything runs in this process against the session's sandbox (no ``mlflow`` CLI subprocess:
each costs ~4 s of imports); the CLI's own entry points are proven by tests/deploy.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest

from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.deploy.conftest import models  # noqa: F401  (two model versions, a shared fixture)


@dataclass
class Place:
    """A deployment target as the suite drives it: its kind, a deployment name, a valid config,
    a bad one, and how to prepare the account (a cluster, a multi-model endpoint)."""

    kind: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    bad_config: dict[str, Any] = field(default_factory=lambda: {"instnce_type": "ml.m5.large"})
    predict_options: dict[str, Any] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return "ecs" if self.kind == "ecs" else "sagemaker"


def _sagemaker(aws: Any) -> Place:
    return Place("sagemaker", "churn", {"execution_role_arn": EXECUTION_ROLE_ARN})


def _mme(aws: Any) -> Place:
    from mlflow_plugins.aws import AwsSettings, make_clients
    from mlflow_plugins.deploy.sagemaker import MultiModelDeployer

    MultiModelDeployer(make_clients(AwsSettings())).create_endpoint("fleet", {"execution_role_arn": EXECUTION_ROLE_ARN})
    return Place("sagemaker-mme", "fleet/churn", {}, bad_config={"instance_type": "ml.m5.large"})


def _ecs(aws: Any) -> Place:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    aws("ecs").create_cluster(clusterName="models")
    config = {
        "cluster": "models",
        "subnets": [subnet],
        "execution_role_arn": EXECUTION_ROLE_ARN,
        "task_role_arn": EXECUTION_ROLE_ARN,
    }
    return Place("ecs", "churn", config, bad_config={**config, "memory": 3000}, predict_options={"via": "task"})


PLACES = {"sagemaker": _sagemaker, "sagemaker-mme": _mme, "ecs": _ecs}


@pytest.fixture(params=sorted(PLACES))
def place(request, aws) -> Place:
    logging.getLogger("mlflow_plugins").setLevel(logging.INFO)
    return PLACES[request.param](aws)


class MlflowDoor:
    """``mlflow deployments`` through MLflow's own plugin loading (``get_deploy_client``)."""

    def __init__(self, place: Place) -> None:
        from mlflow.deployments import get_deploy_client

        self.place = place
        self.client = get_deploy_client("sagemaker-ops" if place.scheme == "sagemaker" else "ecs")
        self.created = False

    def _where(self) -> dict[str, Any]:
        if self.place.kind == "sagemaker-mme":
            endpoint, name = self.place.name.split("/")
            return {"name": name, "endpoint": endpoint}
        return {"name": self.place.name}

    def deploy(self, model_uri: str, config: dict[str, Any] | None = None) -> None:
        config = self.place.config if config is None else config
        where = self._where()
        if self.created:
            self.client.update_deployment(model_uri=model_uri, config=config or None, **where)
        else:
            self.client.create_deployment(model_uri=model_uri, config=config or None, **where)
            self.created = True

    def delete(self) -> None:
        self.client.delete_deployment(config=self.place.config or None, **self._where())


class HooksDoor:
    """The registry hooks' target for a rule of a deploy policy (what the controller drives)."""

    def __init__(self, place: Place) -> None:
        from registry_hooks.policy import parse
        from registry_hooks.targets import Targets

        self.place = place
        self.targets = Targets(say=logging.getLogger("tests.contract").info)
        self.parse = parse

    def rule(self, config: dict[str, Any] | None = None) -> Any:
        config = self.place.config if config is None else config
        if self.place.kind == "sagemaker-mme":
            endpoint, name = self.place.name.split("/")
            body = {
                name: {
                    "model": "m",
                    "stage": "Production",
                    "multi_model_endpoint": endpoint,
                    **({"config": config} if config else {}),
                }
            }
        else:
            body = {
                self.place.name: {
                    "model": "m",
                    "stage": "Production",
                    "target": self.place.scheme,
                    **({"config": config} if config else {}),
                }
            }
        return self.parse(json.dumps({"version": 1, "deployments": body})).rules[0]

    def deploy(self, model_uri: str, config: dict[str, Any] | None = None) -> None:
        target = self.targets(self.rule(config))
        target.deploy(target.observe(), model_uri)

    def delete(self) -> None:
        self.targets(self.rule()).delete()


DOORS = {"mlflow": MlflowDoor, "hooks": HooksDoor}


@pytest.fixture(params=sorted(DOORS))
def door(request, place):
    return DOORS[request.param](place)


@pytest.fixture
def target(place):
    """The contract object itself, for reads (observe, invoke, clean)."""
    from mlflow_plugins.aws import AwsSettings, make_clients
    from mlflow_plugins.deploy import make_target

    return make_target(place.kind, make_clients(AwsSettings()))


def sandbox_calls(sandbox: Any) -> list[str]:
    """The sandbox's journal of AWS calls since its last reset, S3's included."""
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/calls", timeout=30) as reply:
        return [f"{c['service']}:{c['operation']}" for c in json.loads(reply.read())["calls"]]


def inventory(aws: Any) -> dict[str, list[str]]:
    """Everything a deployment can leave in the account."""
    sm, s3, ecs = aws("sagemaker"), aws("s3"), aws("ecs")
    clusters = ecs.list_clusters()["clusterArns"]
    return {
        "endpoints": sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]),
        "endpoint configs": sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]),
        "models": sorted(m["ModelName"] for m in sm.list_models()["Models"]),
        "objects": sorted(
            f"{b['Name']}/{o['Key']}"
            for b in s3.list_buckets()["Buckets"]
            for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
        ),
        "services": sorted(arn for c in clusters for arn in ecs.list_services(cluster=c)["serviceArns"]),
        "task definitions": sorted(  # an INACTIVE revision is still there until DeleteTaskDefinitions
            ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
            + [f"{arn} (INACTIVE)" for arn in ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]]
        ),
        "alarms": sorted(a["AlarmName"] for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]),
        "scalable targets": sorted(
            t["ResourceId"]
            for ns in ("sagemaker", "ecs")
            for t in aws("application-autoscaling").describe_scalable_targets(ServiceNamespace=ns)["ScalableTargets"]
        ),
    }
