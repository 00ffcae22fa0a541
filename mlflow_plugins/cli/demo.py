"""``mlflow-sagemaker-ops demo``: the main job, end to end, on embedded defaults."""

from __future__ import annotations

import os

import click

from mlflow_plugins import demo as main_job
from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.sandbox import Sandbox


@click.command()
@click.option(
    "--time-scale",
    default=0.005,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Real seconds per simulated second in the embedded sandbox.",
)
def demo(time_scale: float) -> None:
    """Run the main job end to end on embedded defaults (the offline AWS sandbox, no account):
    create an endpoint, roll out a canary, roll back on an alarm, show lineage, delete."""
    with Sandbox(port=0, time_scale=time_scale) as sandbox:
        os.environ.update(sandbox.env())
        os.environ.setdefault("MLFLOW_SAGEMAKER_OPS_WAIT_DELAY", "0.2")
        click.echo(f"AWS sandbox on {sandbox.url} (time scale {time_scale})")
        main_job.run(make_clients(AwsSettings(region="us-east-1")), click.echo)
    click.echo("Main job finished.")
