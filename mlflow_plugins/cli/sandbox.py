"""``mlflow-sagemaker-ops sandbox``: run the offline AWS sandbox in the foreground."""

from __future__ import annotations

import signal
import threading

import click

from mlflow_plugins.sandbox import DEFAULT_PORT, DEFAULT_TIME_SCALE, Sandbox


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--time-scale",
    default=DEFAULT_TIME_SCALE,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Real seconds per simulated second: 0.01 runs a 4-minute endpoint creation in 2.4 s.",
)
@click.option("--verbose", is_flag=True, help="Log every request.")
def sandbox(host: str, port: int, time_scale: float, verbose: bool) -> None:
    """Run the offline AWS sandbox (moto plus endpoint lifecycles, UpdateEndpoint rollouts,
    lineage tracking, ECS deployments, fault injection) until interrupted."""
    box = Sandbox(host=host, port=port, time_scale=time_scale, verbose=verbose).start()
    click.echo(f"AWS sandbox listening on {box.url} (time scale {time_scale})")
    click.echo("Point boto3 and the MLflow plugins at it with:")
    for key, value in box.env().items():
        click.echo(f"  export {key}={value}")
    click.echo(f"Control API: {box.url}/_sandbox/health, /_sandbox/reset, /_sandbox/faults, /_sandbox/variant-health")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        box.stop()
        click.echo("AWS sandbox stopped.")
