"""``mlflow-sagemaker-ops export``: a deployment as a CloudFormation template (YAML) or, with
``--format cdk``, a Python CDK app of L1 constructs.

The deployment is described by the same arguments as ``mlflow deployments create`` (``-t``,
``--name``, ``-m``, ``-C KEY=VALUE``; the model archive is uploaded, content-addressed, and
referenced), or read from a live endpoint or ECS service (``--from-endpoint``,
``--from-service``). Nothing else is created: deploy the template with CloudFormation
(``aws cloudformation deploy``) or the app with ``cdk deploy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlflow_plugins import secrets
from mlflow_plugins.cli._output import log_to_stderr

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
    from mlflow.exceptions import MlflowException

    from mlflow_plugins.errors import OpsError

    log_to_stderr()
    config = _config(extra)
    _check_arguments(target_uri, model_uri, config, from_endpoint, from_service)
    _check_output(fmt, output)  # before any upload
    try:
        kind, deployment, template = _template(
            target_uri, name, model_uri, config, from_endpoint, from_service, shared_stack
        )
    except (OpsError, MlflowException) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise click.ClickException(secrets.redact(first)) from None  # a tracking URI's password never shows
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


def _live_keys() -> tuple[str, ...]:
    """What -C may set when the deployment is read from a live endpoint: the rollout, and where."""
    from mlflow_plugins.deploy.sagemaker import STRATEGY_KEYS

    return (*STRATEGY_KEYS, "region_name", "assume_role_arn")


def _check_arguments(
    target_uri: str | None,
    model_uri: str | None,
    config: dict[str, Any],
    from_endpoint: str | None,
    from_service: str | None,
) -> None:
    """Arguments that a live deployment's export would ignore are refused, not dropped."""
    if "dry_run" in config:
        raise click.UsageError("-C dry_run: export writes a template (and uploads the archive); it has no dry run.")
    if not (from_endpoint or from_service):
        return
    where = "--from-endpoint" if from_endpoint else "--from-service"
    if model_uri:
        raise click.UsageError(f"-m with {where}: a live deployment's template has the model it serves. Drop -m.")
    scheme = (target_uri or "").split(":", 1)[0]
    if scheme and (scheme == "ecs") != bool(from_service):
        raise click.UsageError(
            f"-t {target_uri} with {where}: --from-endpoint reads SageMaker, --from-service reads ECS. Drop -t or match it."
        )
    allowed = _live_keys() if from_endpoint else ("region_name",)
    extra = sorted(set(config) - set(allowed))
    if extra:
        raise click.UsageError(
            f"-C {', '.join(extra)} with {where}: the template has the live settings. Allowed: {', '.join(allowed)} "
            "(the rollout). To change a setting, deploy it first, or export from create's arguments (--name, -m)."
        )


def _check_output(fmt: str, output: str | None) -> None:
    if not output:
        if fmt == "cdk":
            raise click.UsageError("--format cdk writes an app directory: pass -o DIR.")
        return
    path = Path(output)
    if fmt == "cdk" and path.exists() and not path.is_dir():
        raise click.UsageError(f"-o {output} is a file; --format cdk writes a directory (app.py, cdk.json, ...).")
    if fmt == "cloudformation" and path.is_dir():
        raise click.UsageError(
            f"-o {output} is a directory; pass the template's file name, e.g. -o {output}/stack.yaml."
        )
    if fmt == "cloudformation" and not path.parent.exists():
        raise click.UsageError(f"-o {output}: the directory {path.parent} does not exist. Create it first.")


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

    assert output is not None  # _check_output
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    stack = "".join(c if c.isalnum() or c == "-" else "-" for c in deployment).strip("-") or "deployment"
    for file_name, text in app_files(template, stack).items():
        if (folder / file_name).exists():
            click.echo(f"Replacing {folder / file_name}", err=True)
        (folder / file_name).write_text(text)
    click.echo(
        f"Wrote a CDK app (stack {stack}) to {folder}: cd {folder} && cdk synth "
        "(or, without the cdk CLI: CDK_OUTDIR=cdk.out python app.py)",
        err=True,
    )


def _config(extra: tuple[str, ...]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"-C {item!r} is not KEY=VALUE. Example: -C instance_count=2")
        config[key.strip()] = value
    return config
