"""SageMaker real-time and serverless deployments: the logic behind ``-t sagemaker``.

* Names: the endpoint is the deployment name; each deploy creates a model and an endpoint config
  named ``<name>-<deployment id>`` and tags all three (managed marker, deployment id, model URI,
  model digest, registered model, version and run id, suite version, and the user's tags).
* The variant name is stable across updates (``variant_name``, default ``primary``), so
  blue/green, canary, linear and rolling updates keep it, as AWS requires.
* A failed create deletes whatever it created, in reverse order, so nothing is half-created.
* An update runs UpdateEndpoint with the strategy's DeploymentConfig; when it completes, the
  previous config and the models only it used are deleted (kept with ``archive=true``); when AWS rolls it back,
  the new ones are deleted and the update fails with SageMaker's reason (the alarm named).
* ``strategy=shadow`` creates a config that keeps the live model in production and adds the new
  one as a shadow variant (``<variant>-shadow``) that gets ``shadow_sampling_percent`` of the
  requests copied; an update without a model URI then promotes the shadow's model, with the
  configured strategy. Any other update drops the shadow.
* Waiting uses botocore's ``endpoint_in_service`` / ``endpoint_deleted`` waiters; progress (each
  status change) is printed by a hook on the waiter's DescribeEndpoint calls.
"""

from __future__ import annotations

import builtins
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from mlflow_plugins import secrets
from mlflow_plugins.deploy.common import archives, images, keys, s3uri
from mlflow_plugins.deploy.common import labels as suite_labels
from mlflow_plugins.deploy.common.journal import Journal, attempt, incomplete, outcome
from mlflow_plugins.deploy.common.origin import model_origin
from mlflow_plugins.deploy.common.plan import DELETE, Change, Plan, plan_of
from mlflow_plugins.deploy.common.progress import Progress, wait_delay
from mlflow_plugins.deploy.contract import Live
from mlflow_plugins.deploy.sagemaker import _alarms, _autoscaling, _invoke, _live, _plan
from mlflow_plugins.deploy.sagemaker._requests import (
    MANAGED,
    deployment_config,
    layout,
    models_in,
    resource_name,
    resource_tags,
)
from mlflow_plugins.deploy.sagemaker._requests import (
    variant as variant_spec,
)
from mlflow_plugins.deploy.sagemaker.config import SAGEMAKER_NAME, SageMakerConfig, parse
from mlflow_plugins.deploy.sagemaker.shadow_report import compare_shadow
from mlflow_plugins.errors import (
    AwsCallFailed,
    InvalidValue,
    MissingSetting,
    ResourceConflict,
    ResourceNotFound,
    as_domain_error,
)

SHADOW_URI = "mlflow-sagemaker-ops:shadow-model-uri"
DEPLOYMENT_ID = suite_labels.DEPLOYMENT_ID
Say = Callable[[str], None]
log = logging.getLogger("mlflow_plugins.deploy.sagemaker")


@dataclass(frozen=True)
class LiveRead:
    """What an update reads of the live deployment before it writes."""

    carried: dict[str, Any]  # the settings an update that does not repeat them keeps
    tags: dict[str, str]  # the endpoint's tags
    archive: str | None  # the archive its first production variant serves
    model: dict[str, Any]  # DescribeModel of its first production variant's model


@dataclass(frozen=True)
class Prepared:
    """An update's reads, its settings and its plan."""

    cfg: SageMakerConfig
    live: dict[str, Any]  # DescribeEndpointConfig of the live config
    was: LiveRead
    wanted: _plan.Wanted | None  # None: a shadow's promotion
    plan: Plan


def scaling_range(target: dict[str, Any] | None) -> dict[str, int] | None:
    """A variant's autoscaling range from its ScalableTarget (None when it has none)."""
    if target is None:
        return None
    return {"min_capacity": target["MinCapacity"], "max_capacity": target["MaxCapacity"]}


def stderr(message: str) -> None:
    """The default progress line: the ``mlflow_plugins.deploy`` logger (the front doors give it
    a stderr handler when the application configured none)."""
    log.info("%s", message)


class SageMakerDeployer:
    def __init__(self, clients: Any, say: Say = stderr) -> None:
        self.clients = clients
        self.sagemaker = clients("sagemaker")
        self.say = say

    # ---- create -------------------------------------------------------------------------
    def create(self, name: str, model_uri: str, config: dict[str, Any] | SageMakerConfig | None) -> dict[str, Any]:
        cfg = parse(config)
        check_name(name)
        role = require_role(cfg)
        if self.describe(name) is not None:
            raise ResourceConflict(
                kind="SageMaker endpoint", name=name, fix="Use `mlflow deployments update`, or delete it first."
            )
        local = archives.local_pyfunc_model(model_uri)  # before any write: a missing model makes no bucket
        self._check_alarms(cfg)
        model = self._upload(name, local, cfg)
        created = self.journal(name)
        if model.bytes_uploaded:  # a new archive: a failed create takes it away again
            created.add("archive", model.s3_uri)
        try:
            origin = model_origin(model_uri, model.local_dir)  # a tracking-server read: once per create
            cfg = self.auto_alarms(name, cfg, created)
            config_name, _ = self._model_and_config(name, model, cfg, role, model_uri, origin, created)
            labels = resource_tags(cfg, model, model_uri, config_name, origin)
            self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name, Tags=labels)
            created.add("endpoint", name)
            self.say(f"Creating endpoint {name} ({config_name}); uploaded {model.bytes_uploaded} bytes")
            if cfg.synchronous:
                described = self.wait(name, "endpoint_in_service", cfg)
                self.scale(name, cfg, created)
        except Exception as error:
            left = created.undo()
            raise as_domain_error(error, outcome(left, "Nothing was left behind.", "run create again")) from None
        if not cfg.synchronous or described is None:
            return self.get(name)
        # The answer is what this create wrote and the waiter's last read: no read-back.
        return self.answer(
            described, suite_labels.as_dict(labels), model.s3_uri, self._scaling_answer(name, described, cfg, None)
        )

    def journal(self, name: str) -> Journal:
        """The undo steps of one operation on endpoint ``name``."""

        def sagemaker_delete(kind: str, field: str) -> Callable[[str], None]:
            return lambda resource: getattr(self.sagemaker, f"delete_{kind}")(**{field: resource})

        def delete_endpoint(resource: str) -> None:
            self.sagemaker.delete_endpoint(EndpointName=resource)
            self.wait(resource, "endpoint_deleted", parse(None))

        return Journal(
            {
                "endpoint": delete_endpoint,
                "endpoint_config": sagemaker_delete("endpoint_config", "EndpointConfigName"),
                "model": sagemaker_delete("model", "ModelName"),
                "alarms": lambda resource: _alarms.delete(self.clients("cloudwatch"), *resource.split("/", 1)),
                "scaling": lambda resource: _autoscaling.remove(
                    self.clients("application-autoscaling"), *resource.split("/", 1)
                ),
                "archive": lambda uri: s3uri.delete_object(self.clients("s3"), uri),
            },
            deployment=name,
            names={
                "alarms": lambda resource: ", ".join(_alarms.names(*resource.split("/", 1))),
                "scaling": lambda resource: "endpoint/{}/variant/{}".format(*resource.split("/", 1)),
            },
        )

    def scale(self, name: str, cfg: SageMakerConfig, created: Journal | None = None) -> None:
        """Register autoscaling when configured; without the key, a registration survives."""
        if cfg.autoscaling:
            if created is not None:
                created.add("scaling", f"{name}/{cfg.variant_name}")
            _autoscaling.apply(self.clients("application-autoscaling"), name, cfg.variant_name, cfg.autoscaling)
            self.say(
                f"Autoscaling {name}/{cfg.variant_name}: {cfg.autoscaling['min_capacity']} to "
                f"{cfg.autoscaling['max_capacity']} instances, target {cfg.autoscaling['target']}"
            )

    def _model_and_config(
        self,
        name: str,
        model: Any,
        cfg: SageMakerConfig,
        role: str,
        model_uri: str,
        origin: Any,
        created: Journal,
        live: dict[str, Any] | None = None,
        reuse: str | None = None,
    ) -> tuple[str, builtins.list[str]]:
        """A new SageMaker model for ``model`` (or the live model ``reuse``, when the plan keeps
        it) and an endpoint config serving it, laid out by :func:`._requests.layout` against the
        ``live`` endpoint config: the config's name and the models it serves."""
        resource = resource_name(name)
        labels = resource_tags(cfg, model, model_uri, resource, origin)
        if reuse is None:
            self._create_model(resource, model.s3_uri, cfg, role, labels)
            created.add("model", resource)
        serves = self._create_config(resource, *layout(reuse or resource, cfg, live), cfg, labels)
        created.add("endpoint_config", resource)
        return resource, serves

    def _create_model(
        self, resource: str, s3_uri: str, cfg: SageMakerConfig, role: str, labels: builtins.list[dict[str, str]]
    ) -> None:
        container = {
            "Image": images.image_uri(self.clients, cfg.image_url),
            "ModelDataUrl": s3_uri,
            "Environment": cfg.env or {},
        }
        model_args: dict[str, Any] = {
            "ModelName": resource,
            "ExecutionRoleArn": role,
            "PrimaryContainer": container,
            "Tags": labels,
            "EnableNetworkIsolation": cfg.network_isolation,
        }
        if cfg.vpc_config:
            model_args["VpcConfig"] = cfg.vpc_config
        self.sagemaker.create_model(**model_args)

    def _create_config(
        self,
        resource: str,
        variants: builtins.list[dict[str, Any]],
        shadows: builtins.list[dict[str, Any]],
        cfg: SageMakerConfig,
        labels: builtins.list[dict[str, str]],
    ) -> builtins.list[str]:
        config_args: dict[str, Any] = {"EndpointConfigName": resource, "ProductionVariants": variants, "Tags": labels}
        if shadows:
            config_args["ShadowProductionVariants"] = shadows
        for key, field in (
            ("data_capture_config", "DataCaptureConfig"),
            ("async_inference_config", "AsyncInferenceConfig"),
            ("kms_key_id", "KmsKeyId"),
        ):
            if getattr(cfg, key):
                config_args[field] = getattr(cfg, key)
        self.sagemaker.create_endpoint_config(**config_args)
        return models_in(config_args)

    # ---- plan and update ---------------------------------------------------------------
    def plan(self, name: str, model_uri: str | None, config: dict[str, Any] | SageMakerConfig | None) -> Plan:
        """What :meth:`create` (``name`` absent, or Failed: converge replaces it) or :meth:`update`
        would change, with reads only."""
        cfg = parse(config)
        current = self.describe(name)
        if current is None or current["EndpointStatus"] == "Failed":
            check_name(name)
            require_role(cfg)
            if model_uri is None:
                raise MissingSetting(
                    name="model URI (-m)", allowed="any MLflow model URI", fix="Pass -m models:/name/version."
                )
            wanted = _plan.wanted_model(self, name, model_uri, cfg)
            gone = (
                [
                    Change(
                        DELETE,
                        _plan.ENDPOINT,
                        name,
                        (
                            f"it is Failed ({current.get('FailureReason', 'no reason')}); SageMaker updates no Failed endpoint",
                        ),
                    )
                ]
                if current
                else []
            )
            return plan_of(_plan.KIND, name, gone + _plan.creation(self, name, wanted, cfg, "new endpoint"))
        return self._prepare(name, model_uri, config, current).plan

    def _prepare(
        self, name: str, model_uri: str | None, config: dict[str, Any] | SageMakerConfig | None, current: dict[str, Any]
    ) -> Prepared:
        """An update's reads and checks, and its plan."""
        live = self.sagemaker.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
        given = config.given_values() if isinstance(config, SageMakerConfig) else dict(config or {})
        was = self.read_live(current, live)
        cfg = parse({**was.carried, **given})
        shadows = live.get("ShadowProductionVariants") or []
        if model_uri is None and not (shadows and cfg.strategy != "shadow"):
            raise MissingSetting(
                name="model URI (-m)",
                allowed="any MLflow model URI, or none to promote a shadow variant",
                fix="Pass -m models:/name/version."
                + ("" if shadows else f" Endpoint {name} has no shadow variant to promote."),
            )
        live_variants = [v["VariantName"] for v in current.get("ProductionVariants", [])]
        if cfg.mode == "add" and cfg.variant_name in live_variants:
            raise InvalidValue(
                name="variant_name",
                value=cfg.variant_name,
                reason="mode=add adds a new variant; this one serves already",
                allowed=f"a name other than {', '.join(live_variants)}",
                fix="Pass -C variant_name=<new name>.",
            )
        if cfg.mode == "create":
            raise InvalidValue(
                name="mode",
                value="create",
                reason=f"endpoint {name} exists; update changes it",
                allowed="replace, add",
                fix="Leave mode out (replace), or delete the endpoint first.",
            )
        if cfg.strategy != "all_at_once" and live_variants != [cfg.variant_name]:
            raise InvalidValue(
                name="variant_name",
                value=cfg.variant_name,
                reason=f"a {cfg.strategy} update keeps the variant names; the endpoint has {live_variants}",
                allowed=", ".join(live_variants),
                fix=f"Pass -C variant_name={live_variants[0]}.",
            )
        if model_uri is None:
            shadow = shadows[0]["ModelName"]
            return Prepared(cfg, live, was, None, _plan.promotion(self, name, live, shadow, cfg))
        require_role(cfg)
        wanted = _plan.wanted_model(self, name, model_uri, cfg)
        if cfg.strategy == "shadow" or cfg.mode == "add":
            return Prepared(cfg, live, was, wanted, _plan.beside(self, name, wanted, live, cfg))
        return Prepared(cfg, live, was, wanted, _plan.update_plan(self, name, wanted, cfg, live, was.model, was.tags))

    def update(
        self, name: str, model_uri: str | None, config: dict[str, Any] | SageMakerConfig | None
    ) -> dict[str, Any]:
        """Run the update's plan: no change, no write; tags, alarms or autoscaling alone, in
        place; otherwise roll out a new model and config with the configured strategy.
        ``strategy=shadow`` puts the model in a shadow variant beside the live model; an update
        without a model URI then promotes the shadow's model to production."""
        parse(config)  # a bad config fails before any AWS call
        current = self.describe(name)
        if current is None:
            raise ResourceNotFound(
                kind="SageMaker endpoint", name=name, fix="Create it with `mlflow deployments create`."
            )
        prepared = self._prepare(name, model_uri, config, current)
        cfg, live, was, wanted = prepared.cfg, prepared.live, prepared.was, prepared.wanted
        self.say(prepared.plan.text())
        if wanted is None:
            return self._promote(name, current, live, cfg, was, prepared.plan)
        if prepared.plan.empty:
            return self.get(name)
        if not prepared.plan.touches(_plan.ENDPOINT):
            return self._in_place(name, current, live, cfg, wanted, prepared.plan)
        assert model_uri is not None  # a wanted model has its URI
        role = require_role(cfg)
        self._check_alarms(cfg)
        model = self._upload(name, wanted.local_dir, cfg, wanted.data)
        created = self.journal(name)
        if model.bytes_uploaded:
            created.add("archive", model.s3_uri)
        shadowing = cfg.strategy == "shadow"
        shadows = live.get("ShadowProductionVariants") or []
        try:
            origin = model_origin(model_uri, model.local_dir)  # a tracking-server read: once per update
            # The endpoint's alarms (a failed update keeps them): made when the plan says they are missing
            cfg = (
                self.auto_alarms(name, cfg, self.journal(name))
                if prepared.plan.touches(_plan.ALARMS)
                else with_auto_alarm_names(name, cfg)
            )
            keep = None if prepared.plan.touches(_plan.MODEL) else live["ProductionVariants"][0]["ModelName"]
            config_name, serves = self._model_and_config(
                name, model, cfg, role, model_uri, origin, created, live, reuse=keep
            )
            # Adding a variant changes the variant names, which a DeploymentConfig (blue/green
            # guardrails) forbids; without one SageMaker applies the new config all at once.
            guarded = {} if cfg.mode == "add" else {"DeploymentConfig": deployment_config(cfg)}
            self.sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=config_name, **guarded)
        except Exception as error:
            left = created.undo()
            raise as_domain_error(error, outcome(left, "The endpoint is unchanged.", "run update again")) from None
        self.say(f"Updating endpoint {name} to {config_name} ({cfg.strategy}); uploaded {model.bytes_uploaded} bytes")
        if not cfg.synchronous:
            return self.get(name)
        after = self.settle(name, config_name, created, cfg, previous=live["EndpointConfigName"])
        if shadowing or cfg.mode == "add":  # the endpoint's model tags stay those of the production model
            labels = [{"Key": SHADOW_URI, "Value": secrets.strip_uri(model_uri)[:256]}] if shadowing else []
            labels.append({"Key": DEPLOYMENT_ID, "Value": config_name})
        else:
            labels = resource_tags(cfg, model, model_uri, config_name, origin)
        drop_shadow = bool(shadows) and not shadowing
        users = None if shadowing or cfg.mode == "add" else {str(k): str(v) for k, v in (cfg.tags or {}).items()}
        self._finish(name, after, labels, drop_shadow, live, serves, cfg, users, prepared.plan.touches(_plan.SCALING))
        # The answer is what this update wrote over what it read before: no read-back.
        production = was.archive if shadowing or cfg.mode == "add" else model.s3_uri
        tags = {**was.tags, **suite_labels.as_dict(labels)}
        if drop_shadow:
            tags.pop(SHADOW_URI, None)
        if users is not None:  # the user's tags this update dropped are gone
            tags = {k: v for k, v in tags.items() if not suite_labels.is_users(k) or k in users}
        return self.answer(after, tags, production, self._scaling_answer(name, after, cfg, was))

    def _in_place(
        self,
        name: str,
        current: dict[str, Any],
        live: dict[str, Any],
        cfg: SageMakerConfig,
        wanted: _plan.Wanted,
        plan: Plan,
    ) -> dict[str, Any]:
        """The same model and endpoint config: only the plan's tags, alarms and autoscaling
        change, in place (the endpoint serves on, untouched), and what earlier deploys left goes."""
        if plan.touches(_plan.TAGS):
            labels = {**wanted.labels, DEPLOYMENT_ID: live["EndpointConfigName"]}
            arns = [current["EndpointArn"], live["EndpointConfigArn"]] + [
                self.sagemaker.describe_model(ModelName=m)["ModelArn"] for m in models_in(live)
            ]
            for arn in arns:
                stale = [
                    t["Key"]
                    for t in self.sagemaker.list_tags(ResourceArn=arn)["Tags"]
                    if t["Key"] not in labels and suite_labels.is_users(t["Key"])
                ]
                if stale:
                    self.sagemaker.delete_tags(ResourceArn=arn, TagKeys=stale)
                self.sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in labels.items()])
        if plan.touches(_plan.ALARMS):
            self.auto_alarms(name, cfg, self.journal(name))
        if plan.touches(_plan.SCALING):
            self.scale(name, cfg)
        if any(change.action == DELETE for change in plan.changes):
            served = Live(True, config=live["EndpointConfigName"], models=tuple(models_in(live)))
            _live.collect_orphans(self, name, served)  # configs and models (see _plan.leftovers)
        return self.get(name)

    def _promote(
        self,
        name: str,
        current: dict[str, Any],
        live: dict[str, Any],
        cfg: SageMakerConfig,
        was: LiveRead,
        plan: Plan,
    ) -> dict[str, Any]:
        """The shadow variant's model becomes the production model, with the configured strategy,
        once the comparison on the mirrored traffic is reported (agreement, latencies, errors)."""
        shadow_model = live["ShadowProductionVariants"][0]["ModelName"]
        try:
            self.say(
                f"Shadow of {name} against production, before promotion: {compare_shadow(self.clients, name).summary()}"
            )
        except Exception as error:  # noqa: BLE001 - a report that cannot be read never blocks the promotion
            self.say(f"Shadow of {name}: no comparison ({type(error).__name__}: {error})")
        described_model = self.sagemaker.describe_model(ModelName=shadow_model)
        labels = suite_labels.as_dict(self.sagemaker.list_tags(ResourceArn=described_model["ModelArn"])["Tags"])
        resource = resource_name(name)
        created = self.journal(name)
        try:
            alarms = plan.touches(_plan.ALARMS)
            cfg = self.auto_alarms(name, cfg, self.journal(name)) if alarms else with_auto_alarm_names(name, cfg)
            self._create_config(
                resource,
                [variant_spec(shadow_model, cfg)],
                [],
                cfg,
                [{"Key": k, "Value": v} for k, v in {**labels, DEPLOYMENT_ID: resource}.items()],
            )
            created.add("endpoint_config", resource)
            self.sagemaker.update_endpoint(
                EndpointName=name, EndpointConfigName=resource, DeploymentConfig=deployment_config(cfg)
            )
        except Exception as error:
            left = created.undo()
            raise as_domain_error(error, outcome(left, "The endpoint is unchanged.", "run update again")) from None
        self.say(f"Promoting the shadow model {shadow_model} of {name} ({cfg.strategy})")
        if not cfg.synchronous:
            return self.get(name)
        after = self.settle(name, resource, created, cfg, previous=live["EndpointConfigName"])
        promoted = {k: v for k, v in labels.items() if k.startswith("mlflow-sagemaker-ops:")}
        retagged = [{"Key": k, "Value": v} for k, v in {**promoted, DEPLOYMENT_ID: resource}.items()]
        self._finish(name, after, retagged, True, live, [shadow_model], cfg, None, plan.touches(_plan.SCALING))
        tags = {**was.tags, **suite_labels.as_dict(retagged)}
        tags.pop(SHADOW_URI, None)
        archive = described_model.get("PrimaryContainer", {}).get("ModelDataUrl")
        return self.answer(after, tags, archive, self._scaling_answer(name, after, cfg, was))

    def settle(
        self, name: str, config_name: str, created: Journal, cfg: SageMakerConfig, previous: str | None = None
    ) -> dict[str, Any]:
        """Wait for the update to finish. SageMaker rolled it back when the endpoint serves the
        ``previous`` config again: what the update created is deleted and it fails with SageMaker's
        reason (the alarm named). An endpoint that serves a third config was changed by someone
        else meanwhile: that is no rollback, and it fails saying so."""
        after = self.wait(name, "endpoint_in_service", cfg) or self.sagemaker.describe_endpoint(EndpointName=name)
        if after["EndpointConfigName"] == config_name:
            return after
        if previous is not None and after["EndpointConfigName"] != previous:
            raise AwsCallFailed(
                operation="UpdateEndpoint",
                code="Replaced",
                detail=f"endpoint {name} serves {after['EndpointConfigName']}, neither this update's "
                f"{config_name} nor the {previous} it replaced: another deploy changed it meanwhile",
                fix="Check who else deploys to it (`mlflow deployments get`), then update again.",
            )
        created.undo()
        raise AwsCallFailed(
            operation="UpdateEndpoint",
            code="RolledBack",
            detail=after.get("FailureReason", "SageMaker rolled the update back").rstrip("."),
            fix=f"The endpoint still serves {after['EndpointConfigName']}; fix the cause, then update again.",
        )

    def _finish(
        self,
        name: str,
        after: dict[str, Any],
        labels: builtins.list[dict[str, str]],
        drop_shadow: bool,
        live: dict[str, Any],
        serves: builtins.list[str],
        cfg: SageMakerConfig,
        users: dict[str, str] | None = None,
        rescale: bool = True,
    ) -> None:
        """Once the new config serves: tag the endpoint, apply autoscaling (when the plan changes
        it: the registration is on the stable variant and survives), retire what it replaced.
        Each step is tried even when one fails, and a failure says truthfully that the endpoint
        serves the new config and what is unfinished."""
        steps = [
            (
                "tag the endpoint with its new model",
                lambda: self._retag(after["EndpointArn"], labels, drop_shadow, users),
            ),
            ("delete the replaced config and models", lambda: self._retire_all(name, live, serves, cfg, after)),
        ]
        if rescale:
            steps.insert(1, ("apply autoscaling", lambda: self.scale(name, cfg)))
        unfinished = []
        for step, run in steps:
            try:
                run()
            except Exception as error:  # noqa: BLE001 - every step is tried, every failure named
                unfinished.append(f"{step} ({error})")
        if unfinished:
            raise AwsCallFailed(
                operation="UpdateEndpoint",
                code="Unfinished",
                detail=f"endpoint {name} serves {after['EndpointConfigName']} now, but could not "
                + "; ".join(unfinished),
                fix="The registry hooks finish it at their next pass (observe and clean); by hand, "
                "`mlflow deployments update` again replaces it cleanly.",
            )

    def _retire_all(
        self, name: str, live: dict[str, Any], serves: builtins.list[str], cfg: SageMakerConfig, after: dict[str, Any]
    ) -> None:
        if left := self.retire(live, serves, cfg, name, after["EndpointConfigName"]):
            raise RuntimeError(f"left: {'; '.join(left)}; the next update or delete collects them")

    def _retag(
        self, arn: str, labels: builtins.list[dict[str, str]], drop_shadow: bool, users: dict[str, str] | None = None
    ) -> None:
        """The endpoint's tags say what it serves now (AddTags overwrites existing keys); with
        ``users`` (the user's tags of this deploy), the user's tags it no longer has go."""
        self.sagemaker.add_tags(ResourceArn=arn, Tags=labels)
        gone = [SHADOW_URI] if drop_shadow else []
        if users is not None:
            live = self.sagemaker.list_tags(ResourceArn=arn)["Tags"]
            gone += [t["Key"] for t in live if suite_labels.is_users(t["Key"]) and t["Key"] not in users]
        if gone:
            self.sagemaker.delete_tags(ResourceArn=arn, TagKeys=gone)

    def retire(
        self,
        live: dict[str, Any],
        serving: builtins.list[str],
        cfg: SageMakerConfig,
        endpoint: str | None = None,
        serving_config: str | None = None,
    ) -> builtins.list[str]:
        """Once the new config serves, delete the old config and every model of it that the new
        one does not serve (kept with ``archive=true``); given the ``endpoint`` and the config it
        serves, also what earlier failed updates of it left. What could not be deleted, named."""
        if cfg.archive:
            return []
        retired = self.journal(live["EndpointConfigName"])
        retired.add("endpoint_config", live["EndpointConfigName"])
        for model in models_in(live):
            if model not in serving:
                retired.add("model", model)
        left = retired.undo()
        if endpoint is not None and serving_config is not None and len(endpoint) <= 40:
            try:
                swept = _live.collect_orphans(self, endpoint, Live(True, config=serving_config, models=tuple(serving)))
            except Exception as error:  # noqa: BLE001 - named below, the deploy itself is done
                left.append(f"configs and models named {endpoint}-* ({type(error).__name__}: {error})")
            else:
                left = [entry for entry in left if entry.split(" ", 2)[1] not in swept]
        return left

    def auto_alarms(self, name: str, cfg: SageMakerConfig, created: Journal) -> SageMakerConfig:
        """With auto_alarms, create the usual alarms and add them to the rollback alarms."""
        if not cfg.auto_alarms:
            return cfg
        created.add("alarms", f"{name}/{cfg.variant_name}")
        made = _alarms.create(self.clients("cloudwatch"), name, cfg.variant_name)
        return cfg.replace(alarms=sorted(set(cfg.alarms or []) | set(made)))

    def read_live(self, current: dict[str, Any], config: dict[str, Any]) -> LiveRead:
        """What an update reads of the live deployment (its first production model and the
        endpoint's tags): the settings it carries over for every key the update does not repeat
        (MLflow's own client loses data capture, env and the rest on update: mlflow/mlflow#7255,
        #9159), the tags and the served archive."""
        variant = config["ProductionVariants"][0]
        model = self.sagemaker.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer", {})
        live_tags = self.sagemaker.list_tags(ResourceArn=current["EndpointArn"])["Tags"]
        kept: dict[str, Any] = {
            "variant_name": variant["VariantName"],
            "data_capture_config": config.get("DataCaptureConfig"),
            "async_inference_config": config.get("AsyncInferenceConfig"),
            "kms_key_id": config.get("KmsKeyId"),
            "env": container.get("Environment") or None,
            "image_url": container.get("Image"),
            "network_isolation": model.get("EnableNetworkIsolation", False),
            "vpc_config": model.get("VpcConfig"),
            "execution_role_arn": model.get("ExecutionRoleArn"),
            "tags": {k: v for k, v in suite_labels.as_dict(live_tags).items() if suite_labels.is_users(k)} or None,
        }
        if "ServerlessConfig" in variant:
            kept["serverless_config"] = variant["ServerlessConfig"]
        else:
            kept.update(instance_type=variant.get("InstanceType"), instance_count=variant.get("InitialInstanceCount"))
        return LiveRead(
            carried={key: value for key, value in kept.items() if value is not None},
            tags=suite_labels.as_dict(live_tags),
            archive=container.get("ModelDataUrl"),
            model=model,
        )

    # ---- delete, get, list --------------------------------------------------------------
    def delete(self, name: str, config: dict[str, Any] | SageMakerConfig | None = None) -> None:
        """DeleteEndpoint is the point of no return: if it fails, the endpoint is unchanged with its
        alarms and autoscaling. After it, every step runs even if one fails, and what is left is
        named; a second delete (the endpoint gone) collects what the first one left."""
        cfg = parse(config)
        current = self.describe(name)
        if current is None:
            if self._collect_leftovers(name, cfg):
                return
            raise ResourceNotFound(
                kind="SageMaker endpoint", name=name, fix="Check the name with `mlflow deployments list`."
            )
        live = self.config_or_none(current["EndpointConfigName"])
        served = [
            self.sagemaker.describe_model(ModelName=m)["PrimaryContainer"].get("ModelDataUrl", "")
            for m in models_in(live)
        ]
        try:
            self.sagemaker.delete_endpoint(EndpointName=name)
        except self.sagemaker.exceptions.ClientError as error:  # the endpoint keeps its alarms and scaling
            raise as_domain_error(
                error,
                f"Endpoint {name} is unchanged, with its alarms and autoscaling; "
                "check the message, then run delete again.",
            ) from None
        self.say(f"Deleting endpoint {name}")
        left: builtins.list[str] = []
        if cfg.synchronous:
            left += attempt(f"endpoint {name} (still deleting)", lambda: self.wait(name, "endpoint_deleted", cfg))
        gone = self.journal(name)
        for variant in current.get("ProductionVariants", []):  # only once the endpoint is going
            gone.add("scaling", f"{name}/{variant['VariantName']}")
            gone.add("alarms", f"{name}/{variant['VariantName']}")
        gone.add("endpoint_config", current["EndpointConfigName"])
        for model in models_in(live):
            gone.add("model", model)
        left += gone.undo()
        buckets = {s3uri.split(uri)[0] for uri in served if uri.startswith("s3://")}
        swept: builtins.list[str] = []
        left += self._remove_archives_and_orphans(name, cfg, buckets, swept)
        left = [entry for entry in left if entry.split(" ", 2)[1] not in swept]  # the sweep got it after all
        if left:
            raise incomplete(f"endpoint {name} is deleted", left)

    def _remove_archives_and_orphans(
        self, name: str, cfg: SageMakerConfig, buckets: set[str], swept: builtins.list[str] | None = None
    ) -> builtins.list[str]:
        """The endpoint's content-addressed archives, and the configs and models that earlier
        failures of it left (their names start with it); what could not go, named."""
        left: builtins.list[str] = []
        if not buckets:
            found: builtins.list[str] = []
            left += attempt(
                "the region's default bucket", lambda: found.append(cfg.bucket or archives.default_bucket(self.clients))
            )
            buckets = set(found)
        for bucket in sorted(buckets):
            prefix = _live.archive_prefix(bucket, name)
            left += attempt(f"model archives under {prefix}", lambda: s3uri.delete_prefix(self.clients("s3"), prefix))
        if len(name) <= 40:
            left += attempt(
                f"endpoint configs and models named {name}-*",
                lambda: (swept if swept is not None else []).extend(
                    _live.collect_orphans(self, name, Live(exists=False), None)
                ),
            )
        return left

    def _collect_leftovers(self, name: str, cfg: SageMakerConfig) -> bool:
        """After a delete that stopped midway (the endpoint is gone): remove the scaling, the
        suite's alarms, configs, models and archives still named for it. False when none is left."""
        scaling, cloudwatch = self.clients("application-autoscaling"), self.clients("cloudwatch")
        variants = {
            t["ResourceId"].split("/")[3]
            for page in scaling.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="sagemaker")
            for t in page["ScalableTargets"]
            if t["ResourceId"].startswith(f"endpoint/{name}/variant/")
        }
        alarms = [
            alarm
            for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{name}-")
            for alarm in page["MetricAlarms"]
            if (alarm.get("AlarmDescription") or "").startswith("mlflow-sagemaker-ops:")
            and {"Name": "EndpointName", "Value": name} in alarm.get("Dimensions", [])
        ]
        mine = re.compile(rf"^{re.escape(name[:40])}-\d{{14}}-[0-9a-f]{{6}}$")
        configs = [
            c["EndpointConfigName"]
            for page in self.sagemaker.get_paginator("list_endpoint_configs").paginate(NameContains=name[:40])
            for c in page["EndpointConfigs"]
            if mine.match(c["EndpointConfigName"])
        ]
        models = [
            m["ModelName"]
            for page in self.sagemaker.get_paginator("list_models").paginate(NameContains=name[:40])
            for m in page["Models"]
            if mine.match(m["ModelName"])
        ]
        bucket = cfg.bucket or archives.default_bucket(self.clients)
        s3 = self.clients("s3")
        try:
            prefix = s3uri.split(_live.archive_prefix(bucket, name))[1]
            archived = bool(s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))
        except s3.exceptions.NoSuchBucket:
            archived = False
        if not (variants or alarms or configs or models or archived):
            return False
        left: builtins.list[str] = []
        for variant in sorted(variants):
            left += attempt(
                f"scalable target of {name}/{variant}", partial(_autoscaling.remove, scaling, name, variant)
            )
        if alarms:
            left += attempt(
                "alarms " + ", ".join(a["AlarmName"] for a in alarms),
                lambda: cloudwatch.delete_alarms(AlarmNames=[a["AlarmName"] for a in alarms]),
            )
        left += self._remove_archives_and_orphans(name, cfg, {bucket})
        if left:
            raise incomplete(f"endpoint {name} was deleted before", left, "Run delete again, or delete them by hand.")
        self.say(f"Endpoint {name} was already deleted; removed what an earlier delete left")
        return True

    def get(self, name: str) -> dict[str, Any]:
        described = self.describe(name)
        if described is None:
            raise ResourceNotFound(
                kind="SageMaker endpoint", name=name, fix="Check the name with `mlflow deployments list`."
            )
        labels = suite_labels.as_dict(self.sagemaker.list_tags(ResourceArn=described["EndpointArn"])["Tags"])
        scaling = self.clients("application-autoscaling")
        return self.answer(
            described,
            labels,
            _live.serving_archive(self, described["EndpointConfigName"]),
            [
                scaling_range(_autoscaling.registered(scaling, name, v["VariantName"]))
                for v in described.get("ProductionVariants", [])
            ],
        )

    @staticmethod
    def answer(
        described: dict[str, Any],
        labels: dict[str, str],
        archive: str | None,
        scaling: builtins.list[dict[str, int] | None],
    ) -> dict[str, Any]:
        """What get, create and update answer: the endpoint as DescribeEndpoint describes it, its
        tags, the archive its first production variant serves and each variant's autoscaling range."""
        return {
            "name": described["EndpointName"],
            "flavor": "python_function",
            "endpoint_arn": described["EndpointArn"],
            "status": described["EndpointStatus"],
            "endpoint_config": described["EndpointConfigName"],
            "variants": [v["VariantName"] for v in described.get("ProductionVariants", [])],
            "shadow_variants": [v["VariantName"] for v in described.get("ShadowProductionVariants", [])],
            "model_uri": labels.get("mlflow-sagemaker-ops:model-uri"),
            "model_s3_uri": archive,
            "shadow_model_uri": labels.get(SHADOW_URI),
            "registered_model": labels.get("mlflow-sagemaker-ops:registered-model"),
            "model_version": labels.get("mlflow-sagemaker-ops:model-version"),
            "run_id": labels.get("mlflow-sagemaker-ops:run-id"),
            "deployment_id": labels.get("mlflow-sagemaker-ops:deployment-id"),
            "autoscaling": scaling,
            "failure_reason": described.get("FailureReason"),
        }

    def _scaling_answer(
        self, name: str, described: dict[str, Any], cfg: SageMakerConfig, was: LiveRead | None
    ) -> builtins.list[dict[str, int] | None]:
        """Each variant's autoscaling range after a create or update: the configured one where this
        call registered it; none on a new endpoint; otherwise the registration as it stands (an
        update without the key keeps it: one read)."""
        answer: builtins.list[dict[str, int] | None] = []
        for variant in described.get("ProductionVariants", []):
            if cfg.autoscaling and variant["VariantName"] == cfg.variant_name:
                answer.append({k: cfg.autoscaling[k] for k in ("min_capacity", "max_capacity")})
            elif was is None:
                answer.append(None)
            else:
                found = _autoscaling.registered(self.clients("application-autoscaling"), name, variant["VariantName"])
                answer.append(scaling_range(found))
        return answer

    def list(self) -> builtins.list[dict[str, Any]]:
        found = []
        for page in self.sagemaker.get_paginator("list_endpoints").paginate():
            for summary in page["Endpoints"]:
                found_tags = self.sagemaker.list_tags(ResourceArn=summary["EndpointArn"])["Tags"]
                if any(t["Key"] == MANAGED for t in found_tags):
                    found.append(
                        {
                            "name": summary["EndpointName"],
                            "status": summary["EndpointStatus"],
                            "endpoint_arn": summary["EndpointArn"],
                        }
                    )
        return found

    def invoke(
        self, name: str, body: bytes, content_type: str = "application/json", target_variant: str | None = None
    ) -> str:
        """The endpoint's JSON answer to ``body`` (through S3 for an asynchronous endpoint)."""
        described = self.describe(name)
        if described is None:
            raise ResourceNotFound(
                kind="SageMaker endpoint", name=name, fix="Check the name with `mlflow deployments list`."
            )
        return _invoke.invoke(self.clients, described, body, content_type, target_variant, self.say)

    # ---- helpers ------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self.describe(name) is not None

    def config_or_none(self, config_name: str) -> dict[str, Any] | None:
        try:
            return self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        except self.sagemaker.exceptions.ClientError:
            return None  # already gone: nothing of it to clean up

    def describe(self, name: str) -> dict[str, Any] | None:
        try:
            return self.sagemaker.describe_endpoint(EndpointName=name)
        except self.sagemaker.exceptions.ClientError as error:
            # A missing endpoint is a ValidationException, and so are other faults: the code alone
            # cannot tell them apart, so absence is confirmed by listing (never by message text).
            if error.response["Error"]["Code"] == "ValidationException" and not self._listed(name):
                return None
            raise as_domain_error(error, "Check your AWS credentials and region.") from None

    def _check_alarms(self, cfg: SageMakerConfig) -> None:
        """The rollback alarms must exist before the first write (a read: DescribeAlarms), or AWS
        would refuse the update only after the upload."""
        wanted = sorted(set(cfg.alarms or []))
        if not wanted:
            return
        cloudwatch = self.clients("cloudwatch")
        found: set[str] = set()
        for start in range(0, len(wanted), 100):  # DescribeAlarms takes up to 100 names
            pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=wanted[start : start + 100])
            found |= {
                a["AlarmName"] for page in pages for a in page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
            }
        missing = [a for a in wanted if a not in found]
        if missing:
            raise InvalidValue(
                name="alarms",
                value=missing,
                reason="no CloudWatch alarm has that name in this account and region",
                allowed="names of existing alarms (aws cloudwatch describe-alarms)",
                fix="Create the alarm first, fix the name, or use -C auto_alarms=true.",
            )

    def _listed(self, name: str) -> bool:
        pages = self.sagemaker.get_paginator("list_endpoints").paginate(NameContains=name)
        return any(e["EndpointName"] == name for page in pages for e in page["Endpoints"])

    def _upload(
        self, name: str, local_dir: str, cfg: SageMakerConfig, data: bytes | None = None
    ) -> archives.UploadedModel:
        """The model's archive at its content address (``data``: the archive, when built already)."""
        s3 = self.clients("s3")
        bucket = cfg.bucket or archives.default_bucket(self.clients)
        archives.ensure_bucket(s3, bucket, self.clients.region)
        if data is None:
            return archives.upload_model(s3, bucket, name, local_dir, cfg.kms_key_id)
        return archives.upload_archive(s3, bucket, name, data, local_dir, cfg.kms_key_id)

    def wait(self, name: str, waiter: str, cfg: SageMakerConfig) -> dict[str, Any] | None:
        """Wait with botocore's ``waiter``; the endpoint as the waiter's last DescribeEndpoint saw it
        (None when that was an error, as when the endpoint is gone)."""
        delay = wait_delay()
        progress = Progress(self.say, name)
        events = self.sagemaker.meta.events
        events.register("after-call.sagemaker.DescribeEndpoint", progress)
        try:
            self.sagemaker.get_waiter(waiter).wait(
                EndpointName=name,
                WaiterConfig={"Delay": delay, "MaxAttempts": max(math.ceil(cfg.timeout_seconds / delay), 1)},
            )
        except Exception as error:  # WaiterError: Failed status or timeout
            raise AwsCallFailed(
                operation=f"waiting for {waiter}",
                code=type(error).__name__,
                detail=str(error),
                fix=f"See `mlflow deployments get -t sagemaker --name {name}` for the endpoint's state.",
            ) from None
        finally:
            events.unregister("after-call.sagemaker.DescribeEndpoint", progress)
        return progress.seen if progress.seen and "EndpointStatus" in progress.seen else None


def with_auto_alarm_names(name: str, cfg: SageMakerConfig) -> SageMakerConfig:
    """The rollback alarms with the usual alarms' names (``auto_alarms``), which exist already."""
    if not cfg.auto_alarms:
        return cfg
    return cfg.replace(alarms=sorted(set(cfg.alarms or []) | set(_alarms.names(name, cfg.variant_name))))


def check_name(name: str) -> None:
    keys.check_name(
        name,
        SAGEMAKER_NAME,
        "deployment name",
        "it breaks SageMaker's endpoint naming rule",
        "1 to 63 letters, digits and hyphens, starting with a letter or digit",
        "churn-prod",
    )


def require_role(cfg: SageMakerConfig) -> str:
    if not cfg.execution_role_arn:
        raise MissingSetting(
            name="execution_role_arn",
            allowed="an IAM role ARN that SageMaker can assume",
            fix="Pass -C execution_role_arn=arn:aws:iam::<account>:role/<role>.",
        )
    return cfg.execution_role_arn
