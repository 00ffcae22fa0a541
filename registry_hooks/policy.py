"""The deploy policy: which registry state deploys where, read from YAML and checked at start.

::

    version: 1
    deployments:
      truck-delay-prod:                 # the deployment: also the endpoint name unless `endpoint` says
        model: truck-delay              # a registered model
        stage: Production               # or `alias: champion` (exactly one of the two)
        target: sagemaker:/us-east-1    # sagemaker or sagemaker-ops [:/region[/assume_role_arn]], or ecs[:/region]
        config:                         # the target's config keys (`mlflow deployments help -t sagemaker|ecs`)
          execution_role_arn: arn:aws:iam::123456789012:role/SageMakerExecutionRole
          strategy: canary
        on_leave: delete                # when no version holds the stage/alias: delete or keep (default)
        # multi_model_endpoint: fleet   # instead of an endpoint of its own: the model `truck-delay-prod`
        #                               # on that multi-model endpoint (made with create-endpoint); no config
        max_attempts: 5                 # failed deploys retried with backoff, then FAILED
        # monitor: {every: 1h, on_drift: retrain, ...}  # drift monitoring and its action (.monitoring)

Every error names the file and line, the bad value, what is allowed and the fix. Duplicate YAML
keys are errors (PyYAML would silently keep the last one), and each ``config`` is checked by the
same validation as ``mlflow deployments ... -C`` (:func:`mlflow_plugins.deploy.parse_config`). With
``target: ecs``, ``endpoint`` names the ECS service (in ``config.cluster``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlflow_plugins.deploy import parse_config, parse_target
from mlflow_plugins.errors import OpsError
from registry_hooks import monitoring
from registry_hooks.monitoring import Monitor
from registry_hooks.store import LEASE_ONLY

TARGETS = ("sagemaker", "sagemaker-ops", "ecs")
SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
ECS_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}")
STAGES = ("Staging", "Production")
ON_LEAVE = ("keep", "delete")
RULE_KEYS = (
    "model",
    "stage",
    "alias",
    "target",
    "endpoint",
    "multi_model_endpoint",
    "config",
    "on_leave",
    "max_attempts",
    "monitor",
)
TOP_KEYS = ("version", "deployments")


class PolicyError(OpsError):
    fmt = "{file}:{line}: {problem}. Allowed: {allowed}. {fix}"
    mlflow_code = "INVALID_PARAMETER_VALUE"


@dataclass(frozen=True)
class Rule:
    name: str
    model: str
    stage: str | None
    alias: str | None
    target: str
    endpoint: str
    config: dict[str, Any] = field(default_factory=dict)
    on_leave: str = "keep"
    max_attempts: int = 5
    line: int = 0
    multi_model_endpoint: str | None = None  # then the rule's model is a model named ``name`` on that MME
    monitor: Monitor | None = None  # drift monitoring and what it starts (:mod:`.monitoring`)

    @property
    def source(self) -> str:
        """What the rule follows, as MLflow writes it: ``Production`` or ``@champion``."""
        return self.stage if self.stage else f"@{self.alias}"

    @property
    def where(self) -> str:
        """What serves it, for messages: the endpoint, or ``mme/model`` on a multi-model endpoint."""
        return f"{self.multi_model_endpoint}/{self.name}" if self.multi_model_endpoint else self.endpoint

    @property
    def kind(self) -> str:
        """The deployment target (:func:`mlflow_plugins.deploy.make_target`) that serves it."""
        if self.multi_model_endpoint:
            return "sagemaker-mme"
        return "ecs" if self.target.split(":", 1)[0] == "ecs" else "sagemaker"

    @property
    def deployment(self) -> str:
        """The target's name for it: the endpoint or service, or ``MME/MODEL``."""
        return self.where

    @property
    def region(self) -> str | None:
        return parse_target(self.target)[0]

    @property
    def assume_role_arn(self) -> str | None:
        return parse_target(self.target)[1]


@dataclass(frozen=True)
class Policy:
    file: str
    rules: tuple[Rule, ...]

    def for_model(self, model: str) -> list[Rule]:
        return [r for r in self.rules if r.model == model]


def load(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise PolicyError(
            file=str(path),
            line=0,
            problem=f"cannot read the policy ({error.strerror})",
            allowed="a readable YAML file",
            fix="Pass --policy with the path of deploy-policy.yaml.",
        ) from None
    return parse(text, str(path))


def parse(text: str, file: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise PolicyError(
            file=file,
            line=mark.line + 1 if mark else 0,
            problem=f"not valid YAML ({getattr(error, 'problem', error)})",
            allowed="YAML",
            fix="Fix the syntax at that line.",
        ) from None
    top = _mapping(root, file, "the policy", TOP_KEYS)
    version = _scalar(top, "version", file, default=1)
    if version != 1:
        raise PolicyError(
            file=file,
            line=_line(top["version"][0]),
            problem=f"version={version!r} is not supported",
            allowed="1",
            fix="Write `version: 1`.",
        )
    if "deployments" not in top:
        raise PolicyError(
            file=file,
            line=_line(root),
            problem="the policy has no `deployments`",
            allowed="a mapping of deployment names to rules",
            fix="Add a `deployments:` section (see the README).",
        )
    deployments = _mapping(top["deployments"][1], file, "deployments", None)
    rules = tuple(_rule(name, node, file, _line(key)) for name, (key, node) in deployments.items())
    if not rules:
        raise PolicyError(
            file=file,
            line=_line(top["deployments"][1]),
            problem="`deployments` is empty",
            allowed="at least one deployment",
            fix="Add one deployment rule.",
        )
    _check_unique_endpoints(rules, file)
    return Policy(file=file, rules=rules)


def _rule(name: str, node: yaml.Node, file: str, line: int) -> Rule:
    keys = _mapping(node, file, f"deployment {name!r}", RULE_KEYS)
    at = {key: _line(node) for key, (node, _) in keys.items()}
    values = {key: _plain(value, file) for key, (_, value) in keys.items()}

    def fail(key: str, problem: str, allowed: str, fix: str) -> PolicyError:
        return PolicyError(
            file=file, line=at.get(key, line), problem=f"deployment {name!r}: {problem}", allowed=allowed, fix=fix
        )

    if LEASE_ONLY in name:
        raise fail(
            "model",
            f"deployment name {name!r} holds {LEASE_ONLY!r}, which the state database keeps for drift-loop leases",
            "letters, digits, hyphens, dots and underscores",
            "Rename the deployment.",
        )
    if not isinstance(values.get("model"), str) or not values["model"]:
        raise fail(
            "model",
            f"model={values.get('model')!r} must name a registered model",
            "a registered model name",
            "Add `model: <registered model name>`.",
        )
    if ("stage" in values) == ("alias" in values):
        raise fail(
            "stage",
            "give exactly one of `stage` and `alias`",
            "stage: Staging|Production, or alias: <name>",
            "Keep one of the two.",
        )
    stage = values.get("stage")
    if stage is not None:
        canonical = {s.lower(): s for s in STAGES}.get(str(stage).lower())
        if canonical is None:
            raise fail(
                "stage",
                f"stage={stage!r} is not a deployable stage",
                ", ".join(STAGES),
                "Use Staging or Production (Archived and None are what a version leaves to).",
            )
        stage = canonical
    alias = values.get("alias")
    if alias is not None and (
        not isinstance(alias, str) or not alias or alias.startswith("@") or alias.lower() == "latest"
    ):
        raise fail(
            "alias",
            f"alias={alias!r} is not an alias name",
            "an alias name without @ (not 'latest')",
            "Write `alias: champion`.",
        )
    target = values.get("target", "sagemaker")
    scheme = str(target).split(":", 1)[0]
    if scheme not in TARGETS:
        raise fail(
            "target",
            f"target={target!r} is not a target this controller deploys to",
            ", ".join(TARGETS) + " (with optional :/region[/assume_role_arn])",
            "Use target: sagemaker:/us-east-1 (for example).",
        )
    endpoint = values.get("endpoint", name)
    if scheme == "ecs":
        if not isinstance(endpoint, str) or not ECS_NAME.fullmatch(endpoint):
            raise fail(
                "endpoint" if "endpoint" in values else "model",
                f"service name {endpoint!r} breaks ECS's naming rule",
                "1 to 255 letters, digits, hyphens and underscores, starting with a letter or digit",
                "Rename the deployment or set `endpoint:` (the ECS service).",
            )
        if parse_target(str(target))[1]:
            raise fail(
                "target",
                f"target={target!r}: the ecs target takes a region only",
                "ecs or ecs:/REGION",
                "Set credentials with AWS_PROFILE.",
            )
    elif not isinstance(endpoint, str) or not SAGEMAKER_NAME.fullmatch(endpoint):
        raise fail(
            "endpoint" if "endpoint" in values else "model",
            f"endpoint name {endpoint!r} breaks SageMaker's naming rule",
            "1 to 63 letters, digits and hyphens, starting with a letter or digit",
            "Rename the deployment or set `endpoint:`.",
        )
    on_leave = values.get("on_leave", "keep")
    if on_leave not in ON_LEAVE:
        raise fail(
            "on_leave",
            f"on_leave={on_leave!r} is not a leave rule",
            ", ".join(ON_LEAVE),
            "Write `on_leave: delete` to delete the endpoint when no version holds the stage or alias.",
        )
    attempts = values.get("max_attempts", 5)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 100:
        raise fail(
            "max_attempts",
            f"max_attempts={attempts!r} is not a count",
            "an integer from 1 to 100",
            "Write `max_attempts: 5`.",
        )
    mme = values.get("multi_model_endpoint")
    if mme is not None:
        if scheme == "ecs":
            raise fail(
                "multi_model_endpoint",
                "multi_model_endpoint is a SageMaker endpoint; the rule's target is ecs",
                "multi_model_endpoint with target: sagemaker",
                "Remove one of the two.",
            )
        if not isinstance(mme, str) or not SAGEMAKER_NAME.fullmatch(mme):
            raise fail(
                "multi_model_endpoint",
                f"multi_model_endpoint={mme!r} breaks SageMaker's naming rule",
                "an endpoint name: letters, digits and hyphens",
                "Name the multi-model endpoint made with create-endpoint.",
            )
        if "endpoint" in values or values.get("config"):
            key = "endpoint" if "endpoint" in values else "config"
            raise fail(
                key,
                f"`{key}` does not go with multi_model_endpoint (a model on an MME has no endpoint or settings of its own)",
                "multi_model_endpoint alone",
                f"Remove `{key}`; set the MME's settings with `mlflow deployments update-endpoint`.",
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
            raise fail(
                "multi_model_endpoint",
                f"deployment name {name!r} cannot name a model on an MME",
                "1 to 63 letters, digits, '.', '_' and '-'",
                "Rename the deployment.",
            )
    config = values.get("config") or {}
    if not isinstance(config, dict):
        raise fail(
            "config",
            f"config={config!r} is not a mapping",
            "a mapping of target config keys",
            "Write the keys under `config:`, one per line.",
        )
    kind = "ecs" if scheme == "ecs" else ("sagemaker-mme" if mme is not None else "sagemaker")
    _check_config(name, kind, config, keys.get("config"), file, at.get("config", line))
    monitor = None
    if values.get("monitor") is not None:
        if kind != "sagemaker":
            raise fail(
                "monitor",
                f"monitor reads a SageMaker endpoint's data capture; this rule deploys to {kind}",
                "monitor on a rule with target: sagemaker (an endpoint of its own)",
                "Remove `monitor`, or monitor with `mlflow run . -e monitor -P data=...`.",
            )
        monitor = monitoring.parse(values["monitor"], file, fail)
        monitoring.check_capture(config, fail)
    return Rule(
        name=name,
        model=values["model"],
        stage=stage,
        alias=alias,
        target=str(target),
        endpoint=endpoint,
        config=config,
        on_leave=on_leave,
        max_attempts=attempts,
        line=line,
        multi_model_endpoint=mme,
        monitor=monitor,
    )


def _check_config(
    name: str, kind: str, config: dict[str, Any], entry: tuple[yaml.Node, yaml.Node] | None, file: str, line: int
) -> None:
    """The target's own validation; the error points at the line of the key it names."""
    lines: dict[str, int] = {}
    if entry is not None and isinstance(entry[1], yaml.MappingNode):
        lines = {k.value: _line(k) for k, _ in entry[1].value}
    try:
        checked = parse_config(kind, config, where=f"deployment {name!r} config")
    except OpsError as error:
        key = str(error.fields.get("key") or error.fields.get("name") or "")
        raise PolicyError(
            file=file,
            line=lines.get(key.split(":")[0], line),
            problem=str(error).split(". Allowed:")[0],
            allowed=error.fields.get("allowed", f"see `mlflow deployments help -t {kind.split('-')[0]}`"),
            fix=error.fields.get("fix", "Fix the config key."),
        ) from None
    mode = getattr(checked, "mode", None)
    decided = [
        key
        for key, bad in (
            ("mode", mode not in (None, "replace")),
            ("synchronous", getattr(checked, "synchronous", True) is False),
            ("dry_run", getattr(checked, "dry_run", False)),
        )
        if bad
    ]
    if decided:
        key = decided[0]
        raise PolicyError(
            file=file,
            line=lines.get(key, line),
            problem=f"deployment {name!r}: config {key}={config[key]!r} is decided by the controller",
            allowed="leave it out",
            fix=f"Remove `{key}` from the config"
            + (
                "; `mlflow-sagemaker-ops hooks plan --policy FILE` shows the plan without deploying."
                if key == "dry_run"
                else "."
            ),
        )


def _check_unique_endpoints(rules: tuple[Rule, ...], file: str) -> None:
    """No two rules drive one endpoint, unless both put differently named models on one MME (a
    rule without a region uses the default one, which may be the other rule's region)."""

    def touches(rule: Rule) -> str:
        return ("ecs service " if rule.kind == "ecs" else "") + (rule.multi_model_endpoint or rule.endpoint)

    for index, rule in enumerate(rules):
        for earlier in rules[:index]:
            same_region = rule.region == earlier.region or None in (rule.region, earlier.region)
            if not same_region or touches(rule) != touches(earlier):
                continue
            both_mme = rule.multi_model_endpoint and earlier.multi_model_endpoint
            if both_mme and rule.name != earlier.name:
                continue
            raise PolicyError(
                file=file,
                line=rule.line,
                problem=f"deployments {earlier.name!r} and {rule.name!r} both drive endpoint {touches(rule)!r}",
                allowed="one deployment per endpoint, or differently named models on one multi-model endpoint",
                fix="Give one of them another `endpoint:`.",
            )


# ---- YAML nodes with their lines ------------------------------------------------------------
def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _mapping(
    node: yaml.Node | None, file: str, what: str, allowed: tuple[str, ...] | None
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise PolicyError(
            file=file,
            line=_line(node),
            problem=f"{what} must be a mapping",
            allowed="key: value lines",
            fix="Indent the keys under it.",
        )
    found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = key.value
        if name in found:
            raise PolicyError(
                file=file,
                line=_line(key),
                problem=f"{what}: key {name!r} appears twice (first at line {_line(found[name][0])})",
                allowed="each key once",
                fix="Remove or rename one of them.",
            )
        if allowed is not None and name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            raise PolicyError(
                file=file,
                line=_line(key),
                problem=f"{what}: unknown key {name!r}",
                allowed=", ".join(allowed),
                fix=f"Did you mean {close[0]!r}?" if close else "Remove it.",
            )
        found[name] = (key, value)
    return found


def _scalar(mapping: dict[str, tuple[yaml.Node, yaml.Node]], key: str, file: str, default: Any) -> Any:
    return _plain(mapping[key][1], file) if key in mapping else default


def _plain(node: yaml.Node, file: str) -> Any:
    """The node as plain Python values (duplicate keys inside are errors too)."""
    if isinstance(node, yaml.MappingNode):
        return {k: _plain(v, file) for k, (_, v) in _mapping(node, file, "a mapping", None).items()}
    return yaml.SafeLoader("").construct_object(node, deep=True)
