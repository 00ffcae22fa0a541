"""``mlflow-sagemaker-ops hooks``: the registry-hooks controller and its logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from datetime import datetime, timezone

import click

from registry_hooks.store import DB_ENV, DEFAULT_URL

db_option = click.option("--db", envvar=DB_ENV, default=DEFAULT_URL, show_default=True,
                         help=f"The controller's state: sqlite:///file.db, or postgresql+psycopg2://... for replicas (env {DB_ENV}).")


@click.group()
def hooks() -> None:
    """Registry hooks: a stage transition or alias in the MLflow Model Registry deploys."""


def _say(message: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    print(f"{stamp} {message}", file=sys.stderr, flush=True)


def _policy(path: str):
    from registry_hooks import policy as policy_file

    try:
        return policy_file.load(path)
    except policy_file.PolicyError as error:
        raise click.ClickException(str(error)) from None


@hooks.command()
@click.option("--policy", "policy_path", required=True, help="The deploy policy (YAML).")
def check(policy_path: str) -> None:
    """Validate a deploy policy and print its rules."""
    for rule in _policy(policy_path).rules:
        click.echo(f"{rule.name}: {rule.model} {rule.source} -> {rule.target} endpoint {rule.endpoint} "
                   f"(on_leave: {rule.on_leave}, max_attempts: {rule.max_attempts})")


@hooks.command()
@click.option("--policy", "policy_path", required=True, help="The deploy policy (YAML).")
@db_option
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None, help="The MLflow server (env MLFLOW_TRACKING_URI).")
@click.option("--listen", default="127.0.0.1:8470", show_default=True,
              help="host:port of the webhook receiver and wake-up endpoint (port 0 picks one); 'off' for none.")
@click.option("--poll-seconds", default=30.0, show_default=True, type=click.FloatRange(min=0.1),
              help="A full reconcile at least this often (the safety net for lost events).")
@click.option("--settle-seconds", default=0.2, show_default=True, type=click.FloatRange(min=0),
              help="After a wake-up, wait this long for the rest of a burst.")
@click.option("--lease-seconds", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="How long a replica's claim on a deployment lasts without a heartbeat.")
@click.option("--retry-base-seconds", default=2.0, show_default=True, type=click.FloatRange(min=0),
              help="First retry delay after a failed deploy; doubles per attempt, at most 300 s.")
@click.option("--replica-id", default=None, help="This replica's name in leases and the audit log [default: host-pid].")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64), help="Deployments driven at once.")
@click.option("--lineage/--no-lineage", default=True, show_default=True,
              help="Mirror each deployed version into SageMaker ML Lineage Tracking (outcome in deploy.<d>.lineage).")
def run(policy_path: str, db: str, tracking_uri: str | None, listen: str, poll_seconds: float, settle_seconds: float,
        lease_seconds: float, retry_base_seconds: float, replica_id: str | None, workers: int, lineage: bool) -> None:
    """Run the controller: keep every deployment of the policy in step with the registry."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from registry_hooks.controller import Controller, Timing
    from registry_hooks.receiver import SECRET_ENV, Receiver, ReceiverApp
    from registry_hooks.reconcile import Leases, Reconciler
    from registry_hooks.registry import Registry
    from registry_hooks.store import Store
    from registry_hooks.targets import Targets

    policy = _policy(policy_path)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a log, not a terminal
    replica = replica_id or f"{socket.gethostname()}-{os.getpid()}"
    store = Store(db)
    leases = Leases(store, replica, lease_seconds)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)  # model downloads (models:/...) read the same registry
    client = MlflowClient(tracking_uri)
    reconciler = Reconciler(store, Registry(client), Targets(_say, fence=leases.fence), leases, _say, retry_base=retry_base_seconds,
                            lineage=lineage)
    controller = Controller(policy, store, reconciler, leases, Timing(poll_seconds, settle_seconds, lease_seconds), workers, _say)
    receiver = None
    if listen != "off":
        host, _, port = listen.rpartition(":")
        secret = os.environ.get(SECRET_ENV)
        try:
            receiver = Receiver(ReceiverApp(store, controller.wake, replica, secret), host or "127.0.0.1", int(port)).start()
        except (OSError, ValueError) as error:
            raise click.ClickException(f"--listen {listen!r}: {error}. Allowed: host:port with a free port (0 picks one), "
                                       "or off. Pass another --listen.") from None
        _say(f"Receiver listening on {receiver.url} (POST /webhooks/mlflow {'on' if secret else f'off: {SECRET_ENV} is not set'}, POST /wake)")
    _say(f"Controller {replica}: {len(policy.rules)} deployment(s) from {policy.file}; registry {client.tracking_uri}; "
         f"state {store.engine.url.render_as_string(hide_password=True)}; full reconcile every {poll_seconds:g} s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    loop = threading.Thread(target=controller.run, name="hooks-loop", daemon=True)
    loop.start()
    stop.wait()
    _say("Stopping: finishing the passes in progress")
    if receiver is not None:
        receiver.stop()
    controller.stop()
    store.close()


@hooks.command("log")
@db_option
@click.option("--deployment", default=None, help="Only this deployment's entries.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1), help="The newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def log_command(db: str, deployment: str | None, limit: int, as_json: bool) -> None:
    """The audit log: who triggered what, when, and with what result."""
    from registry_hooks.store import Store

    for entry in Store(db).audit_log(deployment, limit):
        when = datetime.fromtimestamp(entry["at"], timezone.utc).isoformat(timespec="milliseconds")
        if as_json:
            click.echo(json.dumps({**entry, "at": when}))
            continue
        click.echo(f"{when}  {entry['deployment'] or '-':<24} {entry['action']:<8} v{entry['version'] or '-':<4} "
                   f"{entry['result']:<12} by {entry['actor'] or '-'} via {entry['trigger'] or '-'}"
                   + (f"  {entry['message']}" if entry["message"] else ""))


@hooks.command()
@click.argument("deployment")
@db_option
@click.option("--wake", "wake_url", default=None, help="A controller to wake at once (http://host:8470); else its next poll.")
def retry(deployment: str, db: str, wake_url: str | None) -> None:
    """Try a FAILED or ROLLED_BACK deployment again, once the cause is fixed."""
    import requests

    from registry_hooks.store import Store

    store = Store(db)
    if not store.retry(deployment):
        known = ", ".join(f"{r.name} ({r.status})" for r in store.all()) or "none"
        raise click.ClickException(f"deployment {deployment!r} is not FAILED or ROLLED_BACK. Deployments: {known}. "
                                   "Check the name with `mlflow-sagemaker-ops hooks status`.")
    store.log("retry", "asked", deployment, actor=os.environ.get("USER"), message="hooks retry")
    if wake_url:
        requests.post(f"{wake_url.rstrip('/')}/wake", timeout=10).raise_for_status()
    click.echo(f"{deployment}: will be tried again" + (" now" if wake_url else " at the controller's next poll"))


@hooks.command()
@db_option
def status(db: str) -> None:
    """Each deployment's state as the controllers last left it."""
    from registry_hooks.store import Store

    for row in Store(db).all():
        click.echo(f"{row.name}: {row.status}; wants v{row.desired_version or '-'}, serves v{row.serving_version or '-'}; "
                   f"{row.deploys} deploy(s), attempts {row.attempts}" + (f"; {row.message}" if row.message else ""))
