"""A SageMaker endpoint as a CloudFormation template (``mlflow-sagemaker-ops export``): from the
same arguments as ``mlflow deployments create`` (the archive is uploaded, content-addressed, and
referenced), or read from a live endpoint (single-model or multi-model).

Resources: one ``AWS::SageMaker::Model`` per model (production and shadow; CloudFormation names
them, so a new archive replaces the model cleanly), the ``EndpointConfig`` (variants, shadow
variants, data capture, async, KMS), the ``Endpoint`` (its name, its ``DeploymentConfig`` with
the rollout strategy and rollback alarms, and ``RetainAllVariantProperties`` when autoscaling
owns the instance count), the auto-alarms, and each variant's ``ScalableTarget`` (with its
scheduled actions) and target-tracking ``ScalingPolicy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow_plugins import secrets
from mlflow_plugins.deploy.common import archives, cfn, images
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.scaling import read_spec
from mlflow_plugins.deploy.sagemaker import _alarms, _autoscaling, _plan
from mlflow_plugins.deploy.sagemaker._requests import deployment_config, variant
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig
from mlflow_plugins.errors import ResourceNotFound

STRATEGY_KEYS = (
    "strategy",
    "canary_size",
    "linear_step_size",
    "bake_seconds",
    "termination_wait_seconds",
    "max_execution_seconds",
    "alarms",
)


@dataclass
class Parts:
    """An endpoint in the terms of its requests, with models named by logical id."""

    name: str
    models: dict[str, dict[str, Any]]  # logical id -> CreateModel's container, role, VPC, isolation
    variants: list[dict[str, Any]]  # ProductionVariants, ModelName = a logical id
    shadows: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # DataCaptureConfig, AsyncInferenceConfig, KmsKeyId
    deployment: dict[str, Any] | None = None  # DeploymentConfig
    scaling: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant -> autoscaling value
    alarms: list[dict[str, Any]] = field(default_factory=list)  # PutMetricAlarm requests
    labels: dict[str, str] = field(default_factory=dict)
    source: str = ""


def from_config(
    deployer: Any, name: str, model_uri: str, cfg: SageMakerConfig, folder: str, upload: bool = True
) -> Parts:
    """What ``mlflow deployments create`` with ``cfg`` would make. The archive goes under
    ``folder`` (an export's or a stack's, which no API deploy or delete of ``name`` collects);
    ``upload=False`` (a plan) only names its content address."""
    wanted = _plan.wanted_model(deployer, folder, model_uri, cfg)
    if upload:
        deployer._upload(folder, wanted.local_dir, cfg, wanted.data)  # content-addressed: at most once
    model = {
        "PrimaryContainer": {
            "Image": images.image_uri(deployer.clients, cfg.image_url),
            "ModelDataUrl": wanted.s3_uri,
            "Environment": cfg.env or None,
        },
        "ExecutionRoleArn": cfg.execution_role_arn,
        "VpcConfig": cfg.vpc_config,
        "EnableNetworkIsolation": cfg.network_isolation,
    }
    alarms = _alarms.definitions(name, cfg.variant_name) if cfg.auto_alarms else []
    return Parts(
        name=name,
        models={"Model": model},
        variants=[variant("Model", cfg)],
        settings=_settings(cfg),
        deployment=_guarded(cfg, alarms),
        scaling={cfg.variant_name: cfg.autoscaling} if cfg.autoscaling else {},
        alarms=alarms,
        labels=wanted.labels,
        source=f"mlflow deployments create -t sagemaker --name {name} -m {secrets.strip_uri(model_uri)}",
    )


def from_live(deployer: Any, name: str, cfg: SageMakerConfig) -> Parts:
    """The live endpoint ``name`` as it serves. The rollout strategy is ``cfg``'s when given, else
    the endpoint's LastDeploymentConfig (SageMaker records it at UpdateEndpoint), else ``cfg``'s
    default (all at once, rolled back by the auto-alarms found)."""
    sagemaker = deployer.sagemaker
    current = deployer.describe(name)
    if current is None:
        raise ResourceNotFound(
            kind="SageMaker endpoint", name=name, fix="Check the name with `mlflow deployments list -t sagemaker`."
        )
    config = sagemaker.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
    ids: dict[str, str] = {}  # SageMaker model name -> logical id
    models: dict[str, dict[str, Any]] = {}
    for kind, variants in (
        ("", config["ProductionVariants"]),
        ("Shadow", config.get("ShadowProductionVariants") or []),
    ):
        for entry in variants:
            if entry["ModelName"] not in ids:
                count = sum(1 for logical in models if logical.startswith(f"{kind}Model"))
                logical = f"{kind}Model{count + 1 if count else ''}"
                ids[entry["ModelName"]] = logical
                described = sagemaker.describe_model(ModelName=entry["ModelName"])
                models[logical] = {
                    key: described.get(key)
                    for key in ("PrimaryContainer", "ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation")
                }
                container = dict(models[logical]["PrimaryContainer"] or {})
                if container.get("ModelDataUrl"):  # a copy the template owns: deleting the endpoint leaves it
                    s3 = deployer.clients("s3")
                    container["ModelDataUrl"] = archives.copy_to(
                        s3, container["ModelDataUrl"], f"{archives.EXPORTS}/{name}"
                    )
                models[logical]["PrimaryContainer"] = container
    scaling_client = deployer.clients("application-autoscaling")
    scaling = {}
    for entry in config["ProductionVariants"]:
        found = _autoscaling.registered(scaling_client, name, entry["VariantName"])
        if found is not None:
            scaling[entry["VariantName"]] = as_config(read_spec(scaling_client, found))
    alarms = [
        alarm
        for entry in config["ProductionVariants"]
        for alarm in _alarms.definitions(name, entry["VariantName"])
        if _exists(deployer, alarm["AlarmName"])
    ]
    last = current.get("LastDeploymentConfig")
    if set(cfg.given) & set(STRATEGY_KEYS) or not last:
        if not set(cfg.given) & set(STRATEGY_KEYS):
            deployer.say(
                f"Endpoint {name} has no deployment config on record (it was never updated): the template "
                f"rolls out with strategy={cfg.strategy}. Pass -C strategy=canary (and the other rollout keys) to choose."
            )
        deployment = _guarded(cfg, alarms)
    else:
        deployment = last
    return Parts(
        name=name,
        models=models,
        variants=[{**_variant_fields(v), "ModelName": ids[v["ModelName"]]} for v in config["ProductionVariants"]],
        shadows=[
            {**_variant_fields(v), "ModelName": ids[v["ModelName"]]}
            for v in config.get("ShadowProductionVariants") or []
        ],
        settings={k: config.get(k) for k in ("DataCaptureConfig", "AsyncInferenceConfig", "KmsKeyId")},
        deployment=deployment,
        scaling=scaling,
        alarms=alarms,
        labels=suite_labels.as_dict(sagemaker.list_tags(ResourceArn=current["EndpointArn"])["Tags"]),
        source=f"the live endpoint {name} ({current['EndpointConfigName']})",
    )


def template(parts: Parts, shared_stack: str | None = None) -> dict[str, Any]:
    out = cfn.Template(f"mlflow-sagemaker-ops: SageMaker endpoint {parts.name}", shared_stack)
    out.metadata["exported-from"] = parts.source
    labels = cfn.tags(parts.labels)
    # The endpoint's name is a parameter: the same template makes a staging and a production endpoint.
    out.parameters["EndpointName"] = {
        "Type": "String",
        "Description": "The endpoint's name (its alarms and scaling policy are named after it)",
        "Default": parts.name,
        "AllowedPattern": "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
    }
    # One parameter per distinct value (a shadow model may run with another role, image or VPC)
    params = _Params(out)
    for logical, model in parts.models.items():
        container = dict(model["PrimaryContainer"])
        container["Image"] = params.get("ImageUri", "String", container["Image"], "The serving image (see build-image)")
        role = params.get(
            "ExecutionRoleArn", "String", model["ExecutionRoleArn"], "IAM role SageMaker assumes to run the model"
        )
        vpc = model.get("VpcConfig")
        if vpc:
            vpc = {
                "SecurityGroupIds": params.get(
                    "SecurityGroupIds",
                    "List<AWS::EC2::SecurityGroup::Id>",
                    vpc["SecurityGroupIds"],
                    "Model VPC security groups",
                ),
                "Subnets": params.get("Subnets", "List<AWS::EC2::Subnet::Id>", vpc["Subnets"], "Model VPC subnets"),
            }
        out.add(
            logical,
            "AWS::SageMaker::Model",
            {
                "ExecutionRoleArn": role,
                "PrimaryContainer": {k: v for k, v in container.items() if v not in (None, {}, "")},
                "VpcConfig": vpc or None,
                "EnableNetworkIsolation": model.get("EnableNetworkIsolation") or None,
                "Tags": labels,
            },
        )
    named = [{**v, "ModelName": cfn.get_att(v["ModelName"], "ModelName")} for v in parts.variants]
    shadows = [{**v, "ModelName": cfn.get_att(v["ModelName"], "ModelName")} for v in parts.shadows]
    out.add(
        "EndpointConfig",
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": named,
            "ShadowProductionVariants": shadows or None,
            **{k: v for k, v in parts.settings.items() if v},
            "Tags": labels,
        },
    )
    for alarm in parts.alarms:
        out.add(_alarm_id(alarm), "AWS::CloudWatch::Alarm", _named_after_endpoint(alarm, parts.name))
    deployment = _with_alarm_refs(parts.deployment, parts.alarms)
    out.add(
        "Endpoint",
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": cfn.ref("EndpointName"),
            "EndpointConfigName": cfn.get_att("EndpointConfig", "EndpointConfigName"),
            "DeploymentConfig": deployment,
            # Autoscaling owns the instance count: an update keeps it rather than reset it.
            "RetainAllVariantProperties": True if parts.scaling else None,
            "Tags": labels,
        },
    )
    for variant_name, spec in parts.scaling.items():
        _scaling(out, parts.name, variant_name, spec)
    # Output keys share the CDK's construct ids with parameters: not "EndpointName" (its export is).
    out.output(
        "ServedEndpointName",
        cfn.get_att("Endpoint", "EndpointName"),
        "The endpoint's name",
        export=True,
        export_as="EndpointName",
    )
    out.output("EndpointArn", cfn.ref("Endpoint"), "The endpoint's ARN", export=True)
    out.provenance(parts.labels)
    return out.as_dict()


class _Params:
    """Parameters by value: the same value is one parameter (``ImageUri``), another value the
    next (``ImageUri2``)."""

    def __init__(self, out: cfn.Template) -> None:
        self.out = out
        self.made: dict[tuple[str, str], Any] = {}

    def get(self, name: str, kind: str, value: Any, description: str) -> Any:
        key = (name, repr(value))
        if key not in self.made:
            count = sum(1 for made_name, _ in self.made if made_name == name)
            self.made[key] = self.out.shared(name if not count else f"{name}{count + 1}", kind, value, description)
        return self.made[key]


def _scaling(out: cfn.Template, endpoint: str, variant_name: str, spec: dict[str, Any]) -> None:
    suffix = "".join(part.capitalize() for part in variant_name.replace("_", "-").split("-"))
    target = out.add(
        f"ScalableTarget{suffix}",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": _autoscaling.NAMESPACE,
            "ScalableDimension": _autoscaling.DIMENSION,
            "ResourceId": cfn.sub(f"endpoint/${{Endpoint.EndpointName}}/variant/{variant_name}"),
            "MinCapacity": int(spec["min_capacity"]),
            "MaxCapacity": int(spec["max_capacity"]),
            "ScheduledActions": [
                {
                    "ScheduledActionName": action["name"],
                    "Schedule": action["cron"],
                    "ScalableTargetAction": {
                        k: int(action[s])
                        for k, s in (("MinCapacity", "min_capacity"), ("MaxCapacity", "max_capacity"))
                        if s in action
                    },
                }
                for action in spec.get("schedule", [])
            ]
            or None,
        },
    )
    tracking: dict[str, Any] = {
        "TargetValue": float(spec["target"]),
        "PredefinedMetricSpecification": {"PredefinedMetricType": spec.get("metric", _autoscaling.METRICS[0])},
    }
    for key, name in (("scale_in_cooldown", "ScaleInCooldown"), ("scale_out_cooldown", "ScaleOutCooldown")):
        if key in spec:
            tracking[name] = int(spec[key])
    out.add(
        f"ScalingPolicy{suffix}",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyName": cfn.sub(f"${{EndpointName}}-{variant_name}-target-tracking"),
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": cfn.ref(target),
            "TargetTrackingScalingPolicyConfiguration": tracking,
        },
    )


def _guarded(cfg: SageMakerConfig, alarms: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted(set(cfg.alarms or []) | {a["AlarmName"] for a in alarms})
    return deployment_config(cfg.replace(alarms=names or None))


def _with_alarm_refs(deployment: dict[str, Any] | None, alarms: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rollback alarms that the template makes are referenced (Ref: its name), so the stack
    creates them before the endpoint."""
    if not deployment or "AutoRollbackConfiguration" not in deployment:
        return deployment
    made = {a["AlarmName"]: _alarm_id(a) for a in alarms}
    rollback = [
        {"AlarmName": cfn.ref(made[a["AlarmName"]]) if a["AlarmName"] in made else a["AlarmName"]}
        for a in deployment["AutoRollbackConfiguration"]["Alarms"]
    ]
    return {**deployment, "AutoRollbackConfiguration": {"Alarms": rollback}}


def _alarm_id(alarm: dict[str, Any]) -> str:
    words = alarm["AlarmName"].replace("_", "-").split("-")
    return "Alarm" + "".join(w.capitalize() for w in words if w)


def _named_after_endpoint(alarm: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """An auto-alarm whose name and EndpointName dimension follow the EndpointName parameter."""
    name = alarm["AlarmName"]
    dimensions = [
        {**d, "Value": cfn.ref("EndpointName")} if d["Name"] == "EndpointName" else d for d in alarm["Dimensions"]
    ]
    named = cfn.sub("${EndpointName}" + name[len(endpoint) :]) if name.startswith(endpoint) else name
    return {**alarm, "AlarmName": named, "Dimensions": dimensions}


def _settings(cfg: SageMakerConfig) -> dict[str, Any]:
    return {
        "DataCaptureConfig": cfg.data_capture_config,
        "AsyncInferenceConfig": cfg.async_inference_config,
        "KmsKeyId": cfg.kms_key_id,
    }


def _variant_fields(entry: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "VariantName",
        "ModelName",
        "InitialVariantWeight",
        "InstanceType",
        "InitialInstanceCount",
        "ServerlessConfig",
    )
    return {k: entry[k] for k in keys if k in entry}


def as_config(spec: dict[str, Any]) -> dict[str, Any]:
    """A read-back autoscaling spec (:func:`read_spec`) as an ``autoscaling`` config value."""
    value = {
        k: spec[k]
        for k in ("min_capacity", "max_capacity", "target", "metric", "scale_in_cooldown", "scale_out_cooldown")
        if spec.get(k) is not None
    }
    if spec.get("schedule"):
        value["schedule"] = [
            {
                "name": n,
                "cron": c,
                **({"min_capacity": lo} if lo is not None else {}),
                **({"max_capacity": hi} if hi is not None else {}),
            }
            for n, c, lo, hi in spec["schedule"]
        ]
    return value


def _exists(deployer: Any, alarm: str) -> bool:
    return bool(deployer.clients("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"])
