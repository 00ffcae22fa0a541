"""``mlflow-sagemaker-ops lineage sync|show``: mirror MLflow lineage into SageMaker, read it back.

Errors are one line without a traceback and without credentials (an unreachable tracking server,
AWS refusing a call)."""

from __future__ import annotations

import click

from mlflow_plugins import secrets
from mlflow_plugins.cli.hooks import OneLineErrors
from mlflow_plugins.errors import OpsError


def _sagemaker(region: str | None):
    from mlflow_plugins.aws import AwsSettings, make_clients

    return make_clients(AwsSettings(region=region))("sagemaker")


@click.group(cls=OneLineErrors)
def lineage() -> None:
    """SageMaker ML Lineage Tracking for MLflow runs, datasets, model versions and deployments."""
    secrets.install_log_redaction()  # MLflow's own log lines may quote the tracking URI with its password


@lineage.command()
@click.option("--model", "model", required=True, help="Registered model name.")
@click.option("--version", help="One version [default: every version].")
@click.option("--region", help="AWS region [default: standard boto3 configuration].")
def sync(model: str, version: str | None, region: str | None) -> None:
    """Mirror a registered model's versions (runs, datasets, parents, deployments). Idempotent:
    a second run creates nothing; an interrupted run is finished by the next."""
    from mlflow_plugins.lineage.sync import LineageSync

    try:
        syncer = LineageSync(_sagemaker(region))
        result = syncer.sync_model(model, version)
    except OpsError as error:
        raise click.ClickException(str(error)) from None
    writer = syncer.writer
    click.echo(
        f"synced {', '.join(result.versions)}: {len(result.arns)} entities; "
        f"{writer.reads + writer.writes} AWS calls ({writer.reads} reads, {writer.writes} writes)"
    )


@lineage.command()
@click.option("--endpoint", help="Start at this SageMaker endpoint (name or ARN) or ECS service ARN.")
@click.option("--model", "model", help="Start at this model version: NAME/VERSION.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot"]), default="text", show_default=True)
@click.option("--region", help="AWS region [default: standard boto3 configuration].")
def show(endpoint: str | None, model: str | None, fmt: str, region: str | None) -> None:
    """Print the lineage graph upstream and downstream of an endpoint or a model version."""
    import mlflow

    from mlflow_plugins.lineage import show as shown

    if (endpoint is None) == (model is None) or (model is not None and "/" not in model):
        raise click.UsageError("Pass exactly one of --endpoint NAME or --model NAME/VERSION.")
    sagemaker = _sagemaker(region)
    try:
        if endpoint is not None:
            start = shown.start_for_endpoint(sagemaker, endpoint)
        else:
            name, version = model.rsplit("/", 1)
            start = shown.start_for_version(sagemaker, mlflow.get_tracking_uri(), name, version)
        click.echo(shown.render(shown.graph(sagemaker, start), fmt))
    except OpsError as error:
        raise click.ClickException(str(error)) from None
