"""The plan of a SageMaker endpoint deployment (:mod:`mlflow_plugins.deploy.common.plan`): what a
create or update would change, from the reads the update itself makes and the requests it would
send. The update runs the plan it computes: no change, no write; tags or autoscaling alone, in
place; anything the model or its endpoint config holds, a new model and config rolled out with
the configured strategy (SageMaker models and endpoint configs cannot be changed in place).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_plugins.deploy.common import archives, images
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.origin import model_origin
from mlflow_plugins.deploy.common.plan import (
    CREATE,
    DELETE,
    REPLACE,
    UPDATE,
    Change,
    Plan,
    changed_keys,
    differences,
    plan_of,
)
from mlflow_plugins.deploy.common.scaling import read_spec, wanted_spec
from mlflow_plugins.deploy.contract import Live
from mlflow_plugins.deploy.sagemaker import _alarms, _autoscaling
from mlflow_plugins.deploy.sagemaker._live import ARCHIVE, CONFIG, MODEL, find_orphans
from mlflow_plugins.deploy.sagemaker._requests import models_in
from mlflow_plugins.deploy.sagemaker.config import SageMakerConfig
from mlflow_plugins.packaging import digest, model_archive

KIND = "sagemaker"
ENDPOINT = "SageMaker endpoint"
TAGS, SCALING, ALARMS = "tags", "autoscaling", "CloudWatch alarms"
IGNORED_LABELS = (suite_labels.DEPLOYMENT_ID, suite_labels.SUITE_VERSION)  # they change with every deploy


@dataclass(frozen=True)
class Wanted:
    """The model a deploy would serve: its archive's bytes, address and provenance tags."""

    data: bytes
    s3_uri: str
    digest: str
    labels: dict[str, str]
    local_dir: str


def wanted_model(deployer: Any, name: str, model_uri: str, cfg: SageMakerConfig) -> Wanted:
    """The archive a deploy of ``model_uri`` would serve (content-addressed, under the folder
    ``name``) and its suite tags: reads only (the model's download, a tracking-server read for
    its provenance)."""
    local = archives.local_pyfunc_model(model_uri)
    data = model_archive(local)
    address = digest(data)
    bucket = cfg.bucket or archives.default_bucket(deployer.clients)
    uri = f"s3://{bucket}/{archives.PREFIX}/{name}/{address[:24]}/model.tar.gz"
    labels = suite_labels.with_user_tags(
        suite_labels.suite_tags(model_uri, address, model_origin(model_uri, local)), cfg.tags
    )
    return Wanted(data, uri, address, labels, local)


def rollout(cfg: SageMakerConfig, name: str) -> str:
    """How UpdateEndpoint moves traffic, in words."""
    steps = {
        "canary": f"blue/green canary ({cfg.canary_size}% first)",
        "linear": f"blue/green linear ({cfg.linear_step_size}% a step)",
        "rolling": f"rolling ({cfg.linear_step_size}% of capacity a batch)",
        "shadow": "a shadow variant",
    }.get(cfg.strategy, "blue/green all at once")
    alarms = sorted(set(cfg.alarms or []) | (set(_alarms.names(name, cfg.variant_name)) if cfg.auto_alarms else set()))
    guard = f", rollback on alarms {', '.join(alarms)}" if alarms else ", no rollback alarms"
    return f"{steps}, {cfg.bake_seconds} s bake{guard}"


def creation(deployer: Any, name: str, wanted: Wanted, cfg: SageMakerConfig, reason: str) -> list[Change]:
    """A create's resources: what would be made, each once."""
    changes = [
        None
        if archives.stored(deployer.clients("s3"), wanted.s3_uri)
        else Change(CREATE, ARCHIVE, wanted.s3_uri, (f"model digest {wanted.digest[:12]}",)),
        Change(CREATE, MODEL, f"{name}-<timestamp>", (reason,)),
        Change(CREATE, CONFIG, f"{name}-<timestamp>", (_capacity(cfg),)),
        Change(CREATE, ENDPOINT, name, (reason,)),
        Change(CREATE, ALARMS, ", ".join(_alarms.names(name, cfg.variant_name))) if cfg.auto_alarms else None,
        Change(CREATE, SCALING, _autoscaling.resource_id(name, cfg.variant_name), (_scaling_words(cfg.autoscaling),))
        if cfg.autoscaling
        else None,
    ]
    return [change for change in changes if change is not None]


def update_plan(
    deployer: Any,
    name: str,
    wanted: Wanted,
    cfg: SageMakerConfig,
    live_config: dict[str, Any],
    model: dict[str, Any],
    tags: dict[str, str],
) -> Plan:
    """An update of a live endpoint to ``wanted`` with ``cfg`` (the live settings carried over,
    the given ones applied), resource by resource."""
    variant = live_config["ProductionVariants"][0]
    container = model.get("PrimaryContainer", {})
    model_reasons = (
        (f"model digest {str(tags.get(suite_labels.MODEL_DIGEST, 'unknown'))[:12]} -> {wanted.digest[:12]}",)
        if container.get("ModelDataUrl") != wanted.s3_uri and tags.get(suite_labels.MODEL_DIGEST) != wanted.digest[:64]
        else differences({"archive": (container.get("ModelDataUrl"), wanted.s3_uri)})
    )
    model_reasons += differences(
        {
            "image": (container.get("Image"), images.image_uri(deployer.clients, cfg.image_url)),
            "execution role": (model.get("ExecutionRoleArn"), cfg.execution_role_arn),
            "network isolation": (bool(model.get("EnableNetworkIsolation")), cfg.network_isolation),
            "VPC config": (model.get("VpcConfig"), cfg.vpc_config),
        }
    ) + changed_keys("environment", container.get("Environment"), cfg.env)
    config_reasons = _config_reasons(variant, live_config, cfg)
    changes: list[Change | None] = []
    if model_reasons or config_reasons:
        changes += [
            None
            if archives.stored(deployer.clients("s3"), wanted.s3_uri)
            else Change(CREATE, ARCHIVE, wanted.s3_uri, (f"model digest {wanted.digest[:12]}",)),
            Change(REPLACE, MODEL, variant["ModelName"], model_reasons) if model_reasons else None,
            Change(REPLACE, CONFIG, live_config["EndpointConfigName"], config_reasons or ("serves the new model",)),
            Change(UPDATE, ENDPOINT, name, model_reasons + config_reasons, how=rollout(cfg, name)),
        ]
    else:
        live_labels = {k: v for k, v in tags.items() if k not in IGNORED_LABELS and not k.startswith("aws:")}
        wanted_labels = {k: v for k, v in wanted.labels.items() if k not in IGNORED_LABELS}
        changes.append(
            Change(UPDATE, TAGS, name, reasons)
            if (reasons := changed_keys("tags", live_labels, wanted_labels))
            else None
        )
    changes.append(_alarm_change(deployer, name, cfg))
    changes.append(_scaling_change(deployer, name, cfg))
    return plan_of(KIND, name, changes + leftovers(deployer, name, live_config, cfg))


def leftovers(deployer: Any, name: str, live_config: dict[str, Any], cfg: SageMakerConfig) -> list[Change | None]:
    """What an interrupted or failed deploy left (configs and models the endpoint does not use):
    a run collects them, so running a failed update again finishes its work."""
    if cfg.archive or len(name) > 40:
        return []  # the user keeps every model and config; longer names share their 40-character prefix
    live = Live(True, config=live_config["EndpointConfigName"], models=tuple(models_in(live_config)))
    # Archives are not among them: an update keeps the replaced model's archive (as it always
    # has); `delete`, and the registry hooks' clean after a crash, collect archives.
    found = find_orphans(deployer, name, live)
    return [Change(DELETE, kind, resource, ("left by an interrupted or failed deploy",)) for kind, resource in found]


def promotion(deployer: Any, name: str, live: dict[str, Any], shadow_model: str, cfg: SageMakerConfig) -> Plan:
    """An update without a model: the shadow variant's model becomes the production model, and
    the production model it replaces goes once it serves."""
    why = (f"promote the shadow model {shadow_model} to production",)
    production = live["ProductionVariants"][0]["ModelName"]
    return plan_of(
        KIND,
        name,
        [
            Change(REPLACE, CONFIG, live["EndpointConfigName"], why),
            Change(UPDATE, ENDPOINT, name, why, how=rollout(cfg, name)),
            None if cfg.archive else Change(DELETE, MODEL, production, ("replaced by the promoted model",)),
            _alarm_change(deployer, name, cfg),
            _scaling_change(deployer, name, cfg),
        ],
    )


def beside(deployer: Any, name: str, wanted: Wanted, live: dict[str, Any], cfg: SageMakerConfig) -> Plan:
    """``strategy=shadow`` or ``mode=add``: the model joins the live one in a new config."""
    why = (
        f"the model shadows production ({cfg.shadow_sampling_percent}% of requests copied)"
        if cfg.strategy == "shadow"
        else f"the model is added as variant {cfg.variant_name}"
    )
    return plan_of(
        KIND,
        name,
        [
            None
            if archives.stored(deployer.clients("s3"), wanted.s3_uri)
            else Change(CREATE, ARCHIVE, wanted.s3_uri, (f"model digest {wanted.digest[:12]}",)),
            Change(CREATE, MODEL, f"{name}-<timestamp>", (why,)),
            Change(REPLACE, CONFIG, live["EndpointConfigName"], (why,)),
            Change(UPDATE, ENDPOINT, name, (why,), how="all at once" if cfg.mode == "add" else rollout(cfg, name)),
            _alarm_change(deployer, name, cfg),
            _scaling_change(deployer, name, cfg),
            *leftovers(deployer, name, live, cfg),
        ],
    )


def _config_reasons(variant: dict[str, Any], live: dict[str, Any], cfg: SageMakerConfig) -> tuple[str, ...]:
    pairs: dict[str, tuple[Any, Any]] = {"serverless config": (variant.get("ServerlessConfig"), cfg.serverless_config)}
    if not cfg.serverless_config:
        pairs["instance type"] = (variant.get("InstanceType"), cfg.instance_type)
        pairs["instance count"] = (variant.get("InitialInstanceCount"), cfg.instance_count)
    pairs.update(
        {
            "variant name": (variant["VariantName"], cfg.variant_name),
            "data capture": (live.get("DataCaptureConfig"), cfg.data_capture_config),
            "async inference": (live.get("AsyncInferenceConfig"), cfg.async_inference_config),
            "KMS key": (live.get("KmsKeyId"), cfg.kms_key_id),
            "shadow variants": (bool(live.get("ShadowProductionVariants")), False),
        }
    )
    return differences(pairs)


def _alarm_change(deployer: Any, name: str, cfg: SageMakerConfig) -> Change | None:
    if not cfg.auto_alarms:
        return None
    wanted = _alarms.names(name, cfg.variant_name)
    found = deployer.clients("cloudwatch").describe_alarms(AlarmNames=wanted)["MetricAlarms"]
    missing = sorted(set(wanted) - {a["AlarmName"] for a in found})
    return Change(CREATE, ALARMS, ", ".join(missing), ("auto_alarms=true",)) if missing else None


def _scaling_change(deployer: Any, name: str, cfg: SageMakerConfig) -> Change | None:
    """Autoscaling as configured against its registration (without the key, a registration stays)."""
    if not cfg.autoscaling:
        return None
    scaling = deployer.clients("application-autoscaling")
    resource = _autoscaling.resource_id(name, cfg.variant_name)
    found = _autoscaling.registered(scaling, name, cfg.variant_name)
    if found is None:
        return Change(CREATE, SCALING, resource, (_scaling_words(cfg.autoscaling),))
    live = read_spec(scaling, found)
    wanted = wanted_spec(cfg.autoscaling, _autoscaling.METRICS[0])
    reasons = differences({key: (live.get(key), value) for key, value in wanted.items()})
    return Change(UPDATE, SCALING, resource, reasons) if reasons else None


def _scaling_words(spec: dict[str, Any] | None) -> str:
    spec = spec or {}
    return f"{spec.get('min_capacity')} to {spec.get('max_capacity')} instances, target {spec.get('target')}"


def _capacity(cfg: SageMakerConfig) -> str:
    if cfg.serverless_config:
        return f"serverless {cfg.serverless_config}"
    return f"{cfg.instance_count} x {cfg.instance_type}"
