"""Configuration keys: one table per target, parsed once into a typed, frozen config object.

Values arrive as Python values (``get_deploy_client``, a policy file) or as CLI strings
(``-C key=value``) and are parsed to their types: ``true``, ``True`` and ``1`` are all true.
Unknown keys (with the closest known one), wrong types, broken AWS name rules (matched against
the whole value), nested AWS values that break botocore's request shapes (:mod:`.shapes`) and
tags that AWS would refuse all fail here, before any AWS call, with the key, the value, what is
allowed and the fix. The caller's dict is never mutated.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from mlflow_plugins.deploy.common import shapes
from mlflow_plugins.errors import InvalidValue, UnknownKey

TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
SUITE_PREFIX = "mlflow-sagemaker-ops:"  # tag keys the suite owns; a user may not set them
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
TAG_KEY = re.compile(r"[\w.:/=+@ -]{1,128}", re.UNICODE)  # AWS's tag key pattern ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)
MAX_USER_TAGS = 40  # AWS allows 50 tags a resource; the suite writes up to 10 of its own


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # str | int | bool | json | choice | list | tags
    default: Any
    help: str
    example: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None  # matched against the whole value
    builtin: bool = False  # a key of MLflow's own SageMaker client
    shape: tuple[str, str] | None = None  # (botocore service, shape name) a json or str value must fit


C = TypeVar("C", bound="Config")


@dataclass(frozen=True, kw_only=True)
class Config:
    """A target's parsed configuration: every key typed, defaults filled in, immutable. ``given``
    names the keys the user set, so an update overrides only those and carries the rest over
    from the live deployment."""

    given: frozenset[str] = frozenset()

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, given=self.given | set(changes), **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "given"}

    def given_values(self) -> dict[str, Any]:
        """The keys the user set, with their typed values."""
        return {name: value for name, value in self.as_dict().items() if name in self.given}


def build(cls: type[C], values: dict[str, Any], config: Mapping[str, Any] | None) -> C:
    return cls(**values, given=frozenset(config or ()))


def typed_values(
    config: Mapping[str, Any] | None, keys: tuple[Key, ...], where: str, target: str, help_command: str | None = None
) -> dict[str, Any]:
    """Every one of ``keys`` with its typed value, defaults filled in; an unknown key fails with
    the closest known one and ``help_command`` (``mlflow deployments help -t <target>`` unless given)."""
    by_name = {key.name: key for key in keys}
    given = dict(config or {})
    for name in given:
        if name not in by_name:
            close = difflib.get_close_matches(name, by_name, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            raise UnknownKey(
                where=where,
                key=name,
                allowed=", ".join(sorted(by_name)),
                fix=f"{hint}Run `{help_command or f'mlflow deployments help -t {target}'}` for every key.",
            )
    values = {key.name: key.default for key in keys}
    for name, raw in given.items():
        values[name] = typed(by_name[name], raw)
    return values


def typed(key: Key, raw: Any) -> Any:
    if raw is None:
        return None
    value = _convert(key, raw)
    if key.kind == "choice" and value not in key.choices:
        raise invalid(key, raw, "it is not one of the choices", ", ".join(key.choices))
    if key.kind == "int" and (
        (key.minimum is not None and value < key.minimum) or (key.maximum is not None and value > key.maximum)
    ):
        bounds = f"a whole number from {key.minimum:g}" + (f" to {key.maximum:g}" if key.maximum is not None else " up")
        raise invalid(key, raw, "it is out of range", bounds)
    for item in value if key.kind == "list" else [value]:
        if key.pattern is not None and not key.pattern.fullmatch(item):
            raise invalid(key, raw, f"{item!r} breaks the naming rule", f"values like {key.example!r}")
    if key.shape is not None:
        found = shapes.problem(value, shapes.shape(*key.shape))
        if found:
            where, reason, allowed = found
            raise InvalidValue(
                name=key.name if where == "value" else f"{key.name}: {where}",
                value=raw,
                reason=f"{reason} (AWS's {key.shape[1]})",
                allowed=allowed,
                fix=f"Pass -C {key.name}={key.example}.",
            )
    if key.kind == "tags":
        _check_tags(key, raw, value)
    return value


def _check_tags(key: Key, raw: Any, value: Any) -> None:
    if not isinstance(value, dict):
        raise invalid(key, raw, "it is not a JSON object of tag names to values", '{"team": "ml"}')
    if len(value) > MAX_USER_TAGS:
        raise invalid(
            key,
            raw,
            f"it has {len(value)} tags; AWS allows 50 a resource and the suite writes up to 10",
            f"at most {MAX_USER_TAGS} tags",
        )
    for name, text in value.items():
        if str(name).startswith(SUITE_PREFIX):
            raise InvalidValue(
                name=f"{key.name}: {name}",
                value=text,
                reason="tags under mlflow-sagemaker-ops: are the suite's own",
                allowed=f"any key not starting with {SUITE_PREFIX}",
                fix=f"Rename the tag {name!r}.",
            )
        if not TAG_KEY.fullmatch(str(name)) or str(name).lower().startswith("aws:"):
            raise invalid(
                key,
                raw,
                f"tag key {name!r} breaks AWS's rule",
                "1 to 128 letters, digits, spaces and _.:/=+-@, not starting with aws:",
            )
        if not isinstance(text, (str, int, float, bool)) or len(str(text)) > 256:
            raise invalid(
                key,
                raw,
                f"the value of tag {name!r} is not text of at most 256 characters",
                "text of 0 to 256 characters",
            )


def _convert(key: Key, raw: Any) -> Any:
    if key.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise invalid(key, raw, "it is not a boolean", "true, false, 1, 0")
    if key.kind == "int":
        try:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        except (TypeError, ValueError):
            raise invalid(key, raw, "it is not a whole number", "a whole number") from None
    if key.kind in ("json", "tags"):
        if isinstance(raw, (dict, list)):
            return json.loads(json.dumps(raw))  # a copy: the caller's dict is never mutated
        try:
            return json.loads(raw)
        except (TypeError, json.JSONDecodeError) as error:
            raise invalid(key, raw, f"it is not JSON ({error})", "a JSON object") from None
    if key.kind == "list":
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        return [str(item).strip() for item in items if str(item).strip()]
    return str(raw)


def invalid(key: Key, raw: Any, reason: str, allowed: str) -> InvalidValue:
    return InvalidValue(
        name=key.name, value=raw, reason=reason, allowed=allowed, fix=f"Pass -C {key.name}={key.example}."
    )


def forbid(name: str, value: Any, reason: str, allowed: str, fix: str) -> None:
    raise InvalidValue(name=name, value=value, reason=reason, allowed=allowed, fix=fix)


def help_text(keys: tuple[Key, ...], mark_suite_keys: bool = False) -> str:
    """Every key with its type, default and an example (``target_help``)."""
    lines = []
    for key in keys:
        kind = f"one of {'|'.join(key.choices)}" if key.kind == "choice" else key.kind
        origin = " [mlflow-sagemaker-ops]" if mark_suite_keys and not key.builtin else ""
        lines.append(
            f"  {key.name} ({kind}, default {key.default!r}){origin}: {key.help}. Example: -C {key.name}={key.example}"
        )
    return "\n".join(lines)


def markdown_table(keys: tuple[Key, ...]) -> str:
    """The README's table of a target's keys, generated from the same table as the help
    (``python -m mlflow_plugins.deploy.docs`` rewrites the README; a test keeps them equal).
    A ``*`` marks a key of MLflow's own SageMaker client."""
    rows = ["| key | type | default | example | meaning |", "|---|---|---|---|---|"]
    for key in keys:
        kind = " or ".join(key.choices) if key.kind == "choice" else key.kind
        mark = "*" if key.builtin else ""
        example = key.example.replace("|", "\\|")
        rows.append(f"| `{key.name}`{mark} | {kind} | `{key.default!r}` | `{example}` | {key.help.replace('|', '/')} |")
    return "\n".join(rows)


EXECUTION_ROLE_KEY = Key(
    "execution_role_arn",
    "str",
    None,
    "IAM role SageMaker assumes to run the model (required)",
    "arn:aws:iam::123456789012:role/SageMakerExecutionRole",
    pattern=ROLE_ARN,
    builtin=True,
)
ASSUME_ROLE_KEY = Key(
    "assume_role_arn",
    "str",
    None,
    "IAM role to assume for every AWS call",
    "arn:aws:iam::123456789012:role/Deployer",
    pattern=ROLE_ARN,
    builtin=True,
)
REGION_KEY = Key(
    "region_name",
    "str",
    None,
    "AWS region; default from AWS_REGION, AWS_DEFAULT_REGION or the profile",
    "eu-west-1",
    builtin=True,
)
IMAGE_KEY = Key(
    "image_url",
    "str",
    None,
    "serving image; default <account>.dkr.ecr.<region>.amazonaws.com/mlflow-sagemaker-ops:<version> (see build-image)",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving:py311",
    builtin=True,
)
BUCKET_KEY = Key(
    "bucket",
    "str",
    None,
    "S3 bucket for model archives; default mlflow-sagemaker-ops-<account>-<region>, created if missing",
    "my-models",
    pattern=BUCKET,
)
DRY_RUN_KEY = Key(
    "dry_run",
    "bool",
    False,
    "print the plan (each resource to create, replace, update or delete, and why) and make no write",
    "true",
)
VIA_KEY = Key(
    "via",
    "choice",
    "api",
    "api: the suite calls AWS; cloudformation: a stack (mlflow-sagemaker-ops-...) owns the deployment, changed through change sets",
    "cloudformation",
    choices=("api", "cloudformation"),
)


def dry_run(config: Mapping[str, Any] | Config | None) -> bool:
    """Whether ``config`` (parsed, or the raw ``-C`` values, which an update may give only in
    part, so they cannot be parsed whole here) asks for a dry run."""
    if not isinstance(config, Mapping):  # a parsed config, or None
        return bool(getattr(config, DRY_RUN_KEY.name, False))
    if DRY_RUN_KEY.name not in config:
        return False
    return bool(typed(DRY_RUN_KEY, config[DRY_RUN_KEY.name]))


def via(config: Mapping[str, Any] | Config | None) -> str:
    """``via`` of ``config`` (parsed, or the raw ``-C`` values an update may give in part)."""
    if not isinstance(config, Mapping):
        return str(getattr(config, VIA_KEY.name, VIA_KEY.default))
    if VIA_KEY.name not in config:
        return str(VIA_KEY.default)
    return str(typed(VIA_KEY, config[VIA_KEY.name]))


def check_name(name: str | None, rule: re.Pattern[str], what: str, reason: str, allowed: str, example: str) -> None:
    """A resource name against its naming rule, matched against the whole name."""
    if not rule.fullmatch(name or ""):
        raise InvalidValue(
            name=what, value=name, reason=reason, allowed=allowed, fix=f"Pass --name {example} (for example)."
        )
