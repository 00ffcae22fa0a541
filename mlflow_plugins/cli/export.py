"""``mlflow-sagemaker-ops export``: a deployment as a CloudFormation template (YAML) or, with
``--format cdk``, a Python CDK app of L1 constructs.

The deployment is described by the same arguments as ``mlflow deployments create`` (``-t``,
``--name``, ``-m``, ``-C KEY=VALUE``; the model archive is uploaded, content-addressed, and
referenced), or read from a live endpoint or ECS service (``--from-endpoint``,
``--from-service``). Nothing else is created: deploy the template with CloudFormation
(``aws cloudformation deploy``) or the app with ``cdk deploy``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

FORMATS = ("cloudformation", "cdk")
KINDS = {"sagemaker": "sagemaker", "sagemaker-ops": "sagemaker", "ecs": "ecs"}


@click.command("export")
@click.option("--target", "-t", "target_uri", default=None, help="sagemaker[:/region[/role]] or ecs[:/region].")
@click.option("--name", default=None, help="The deployment (endpoint or [CLUSTER/]service) name.")
@click.option("--model-uri", "-m", default=None, help="The model: models:/name/1, runs:/..., or a path.")
@click.option("--config", "-C", "extra", multiple=True, metavar="KEY=VALUE", help="As for mlflow deployments create.")
@click.option("--from-endpoint", default=None, help="Read a live SageMaker endpoint (single- or multi-model).")
@click.option("--from-service", default=None, help="Read a live ECS service, [CLUSTER/]NAME.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="cloudformation", show_default=True)
@click.option("--output", "-o", default=None, help="The YAML file (default stdout), or the CDK app's directory.")
@click.option(
    "--shared-stack", default=None, help="Import the role ARNs, image, cluster and subnets from this stack's exports."
)
def export(
    target_uri: str | None,
    name: str | None,
    model_uri: str | None,
    extra: tuple[str, ...],
    from_endpoint: str | None,
    from_service: str | None,
    fmt: str,
    output: str | None,
    shared_stack: str | None,
) -> None:
    """Export a deployment as CloudFormation (YAML) or a CDK app."""
    from mlflow_plugins.errors import OpsError

    _log_to_stderr()
    config = _config(extra)
    try:
        kind, deployment, template = _template(
            target_uri, name, model_uri, config, from_endpoint, from_service, shared_stack
        )
    except OpsError as error:
        raise click.ClickException(str(error)) from None
    if fmt == "cdk":
        _write_cdk(template, deployment, output)
        return
    from mlflow_plugins.deploy.common.cfn import to_yaml

    text = to_yaml(template)
    if output:
        Path(output).write_text(text)
        click.echo(f"Wrote the CloudFormation template of {kind} deployment {deployment} to {output}", err=True)
    else:
        click.echo(text, nl=False)


def _template(
    target_uri: str | None,
    name: str | None,
    model_uri: str | None,
    config: dict[str, Any],
    from_endpoint: str | None,
    from_service: str | None,
    shared_stack: str | None,
) -> tuple[str, str, dict[str, Any]]:
    from mlflow_plugins.aws import AwsSettings, make_clients
    from mlflow_plugins.deploy import make_target, parse_target

    sources = [s for s in (from_endpoint, from_service, name) if s]
    if len(sources) != 1:
        raise click.UsageError(
            "Name one deployment: --name with -m (as mlflow deployments create), or --from-endpoint, or --from-service."
        )
    scheme = (target_uri or ("ecs" if from_service else "sagemaker")).split(":", 1)[0]
    if scheme not in KINDS:
        raise click.UsageError(f"-t {target_uri!r} is not a target here. Allowed: sagemaker, sagemaker-ops, ecs.")
    kind = "ecs" if from_service else "sagemaker" if from_endpoint else KINDS[scheme]
    region, role = parse_target(target_uri) if target_uri else (None, None)
    settings = AwsSettings(
        region=config.get("region_name") or region, assume_role_arn=config.get("assume_role_arn") or role
    )
    target: Any = make_target(kind, make_clients(settings))
    if from_endpoint:
        return kind, from_endpoint, target.export_live(from_endpoint, config or None, shared_stack)
    if from_service:
        return kind, from_service, target.export_live(from_service, config or None, shared_stack)
    if not model_uri:
        raise click.UsageError(
            "--name needs -m MODEL_URI (or read a live deployment with --from-endpoint/--from-service)."
        )
    assert name is not None
    return kind, name, target.export(name, model_uri, config or None, shared_stack)


def _write_cdk(template: dict[str, Any], deployment: str, output: str | None) -> None:
    from mlflow_plugins.iac import app_files

    if not output:
        raise click.UsageError("--format cdk writes an app directory: pass -o DIR.")
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    stack = "".join(c if c.isalnum() or c == "-" else "-" for c in deployment).strip("-") or "deployment"
    for file_name, text in app_files(template, stack).items():
        (folder / file_name).write_text(text)
    click.echo(f"Wrote a CDK app (stack {stack}) to {folder}: cd {folder} && cdk synth", err=True)


def _config(extra: tuple[str, ...]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"-C {item!r} is not KEY=VALUE. Example: -C instance_count=2")
        config[key.strip()] = value
    return config


def _log_to_stderr() -> None:
    logger = logging.getLogger("mlflow_plugins")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
