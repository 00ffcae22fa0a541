"""``mlflow-sagemaker-ops batch-transform``: a SageMaker batch transform job of an MLflow model.

The options are those of ``mlflow sagemaker deploy-transform-job`` (same names and short
flags, so its users can switch), then one for each CreateTransformJob setting MLflow's command
lacks, all generated from the key table (:data:`mlflow_plugins.deploy.batch.KEYS`); ``-C
KEY=VALUE`` sets any key too. The job's outcome is printed as JSON on stdout; progress goes to
stderr. A registered model version's job is mirrored into lineage.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from mlflow_plugins.cli._output import log_to_stderr
from mlflow_plugins.deploy.batch import KEYS, BatchTransform, parse

# MLflow's option names where they differ from the key, and its short flags
OPTION_NAMES = {
    "s3_input_data_type": "input-data-type",
    "s3_input_uri": "input-uri",
    "s3_output_path": "output-path",
    "timeout_seconds": "timeout",
}
SHORT = {
    "job_name": "-n",
    "s3_input_uri": "-u",
    "s3_output_path": "-o",
    "split_type": "-s",
    "accept": "-a",
    "join_resource": "-j",
    "execution_role_arn": "-e",
    "bucket": "-b",
    "image_url": "-i",
    "instance_type": "-t",
    "instance_count": "-c",
    "vpc_config": "-v",
    "flavor": "-f",
}


def _options(command: Any) -> Any:
    for key in reversed(KEYS):
        if key.name == "synchronous":
            command = click.option(
                "--async", "asynchronous", is_flag=True, default=None, help="Return once the job has started."
            )(command)
            continue
        long = "--" + OPTION_NAMES.get(key.name, key.name.replace("_", "-"))
        names = [long, SHORT[key.name]] if key.name in SHORT else [long]
        text = f"{key.help} (default {key.default!r})."
        if key.name == "vpc_config":
            text = f"{key.help}: JSON, or a JSON file's path as MLflow's -v takes (default None)."
        if key.kind == "bool":
            negative = "--no-" + long[2:]
            command = click.option(f"{long}/{negative}", key.name, default=None, help=text)(command)
        else:
            command = click.option(*names, key.name, default=None, help=text)(command)
    return command


@click.command("batch-transform")
@click.option(
    "--model-uri", "-m", required=True, help="The model: models:/name/1, models:/name@alias, runs:/... or a path."
)
@click.option("--config", "-C", "extra", multiple=True, metavar="KEY=VALUE", help="Any key of the table, again.")
@_options
def batch_transform(model_uri: str, extra: tuple[str, ...], asynchronous: bool | None, **given: Any) -> None:
    """Run a SageMaker batch transform job of an MLflow model, and wait for it."""
    from mlflow_plugins.aws import AwsSettings, make_clients
    from mlflow_plugins.errors import OpsError

    config = {k: v for k, v in given.items() if v is not None}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"-C {item!r} is not KEY=VALUE. Example: -C max_payload_mb=1")
        config[key.strip()] = value
    if asynchronous:
        config["synchronous"] = False
    vpc = config.get("vpc_config")
    if vpc and not str(vpc).lstrip().startswith("{") and os.path.isfile(vpc):  # MLflow's -v: a JSON file
        with open(vpc) as handle:
            config["vpc_config"] = handle.read()
    log_to_stderr()
    try:
        cfg = parse(config)
        clients = make_clients(AwsSettings(region=cfg.region_name, assume_role_arn=cfg.assume_role_arn))
        result = BatchTransform(clients).run(model_uri, cfg)
    except OpsError as error:
        raise click.ClickException(str(error)) from None
    answer = {k: v for k, v in result.__dict__.items() if k != "tags"}
    if result.status == "Completed":
        from mlflow_plugins.lineage import after_transform

        problem = after_transform(
            clients("sagemaker"),
            result.registered_model,
            result.version,
            result.job_arn,
            cfg.s3_input_uri,
            cfg.s3_output_path,
        )
        answer["lineage"] = problem or ("written" if result.registered_model else "not a registered model version")
    click.echo(json.dumps(answer, indent=2, default=str))
