"""``mlflow-sagemaker-ops hooks``: the registry-hooks controller and its logs.

Commands that read state (``status``, ``log``, ``retry``) never create it: without the
controller's database they say where they looked and stop. Every error is one line (no
traceback; ``MLFLOW_SAGEMAKER_OPS_TRACEBACK=1`` shows it), and no line holds a credential.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import click

from mlflow_plugins import secrets
from registry_hooks.store import DB_ENV, DEFAULT_URL

TRACEBACK_ENV = "MLFLOW_SAGEMAKER_OPS_TRACEBACK"
db_option = click.option(
    "--db",
    envvar=DB_ENV,
    default=DEFAULT_URL,
    show_default=True,
    help=f"The controller's state: sqlite:///file.db, or postgresql+psycopg2://... for replicas (env {DB_ENV}).",
)


class OneLineErrors(click.Group):
    """Any error a command did not turn into a message is shown as one line, without credentials."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            if os.environ.get(TRACEBACK_ENV) == "1":
                raise
            lines = [line.strip() for line in secrets.redact(str(error)).splitlines() if line.strip()]
            raise click.ClickException(
                f"{type(error).__name__}: {lines[0] if lines else 'no message'}. "
                f"(Set {TRACEBACK_ENV}=1 to see the traceback.)"
            ) from None


@click.group(cls=OneLineErrors)
def hooks() -> None:
    """Registry hooks: a stage transition or alias in the MLflow Model Registry deploys."""


log = logging.getLogger("mlflow_plugins.hooks")


def _say(message: str) -> None:
    """A line of the controller's log: through ``logging`` (redacted, see ``_log_to_stderr``)."""
    log.info("%s", secrets.redact(message))


def _log_to_stderr() -> None:
    """The controller's lines, and its deployments' (``mlflow_plugins.deploy``), on stderr with a UTC
    time, unless the application configured logging itself."""
    package = logging.getLogger("mlflow_plugins")
    package.setLevel(logging.INFO)
    if package.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    package.addHandler(handler)


@contextmanager
def _state(db: str, create: bool = False) -> Iterator[Any]:
    """The controller's store; ``create=False`` (commands that only read it) never makes it.
    A database that cannot be opened or used is a one-line error."""
    import sqlalchemy as sa

    from registry_hooks.store import Store, StoreError

    try:
        store = Store(db, create=create)
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    try:
        yield store
    except sa.exc.DBAPIError as error:
        raise click.ClickException(str(store.unreachable(error))) from None
    finally:
        store.close()


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
        click.echo(
            f"{rule.name}: {rule.model} {rule.source} -> {rule.target} endpoint {rule.endpoint} "
            f"(on_leave: {rule.on_leave}, max_attempts: {rule.max_attempts})"
        )


@hooks.command("plan")
@click.option("--policy", "policy_path", required=True, help="The deploy policy (YAML).")
@click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None, help="The MLflow server (env MLFLOW_TRACKING_URI)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule.")
def plan_command(policy_path: str, tracking_uri: str | None, as_json: bool) -> None:
    """What the controller would change now, rule by rule, resource by resource, with the
    reasons; it makes no write (to AWS, the registry or the controller's database)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from registry_hooks.planning import plan_rule
    from registry_hooks.registry import Registry
    from registry_hooks.targets import Targets

    _log_to_stderr()
    rules = _policy(policy_path).rules
    if tracking_uri:  # model downloads (models:/...) and provenance read the same registry
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    registry, targets = Registry(MlflowClient(tracking_uri, registry_uri=tracking_uri)), Targets(say=_say)
    for rule in rules:
        plan = plan_rule(rule, registry, targets)
        click.echo(json.dumps({"rule": rule.name, **plan.as_dict()}) if as_json else plan.text())


@hooks.command()
@click.option(
    "--policy",
    "policy_path",
    required=True,
    help="The deploy policy (YAML). Read again on SIGHUP and when it changes; a bad one is refused.",
)
@db_option
@click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None, help="The MLflow server (env MLFLOW_TRACKING_URI)."
)
@click.option(
    "--listen",
    default="127.0.0.1:8470",
    show_default=True,
    help="host:port of the webhook receiver and wake-up endpoint (port 0 picks one); 'off' for none.",
)
@click.option(
    "--poll-seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="A full reconcile at least this often (the safety net for lost events).",
)
@click.option(
    "--settle-seconds",
    default=0.2,
    show_default=True,
    type=click.FloatRange(min=0),
    help="After a wake-up, wait this long for the rest of a burst.",
)
@click.option(
    "--lease-seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="How long a replica's claim on a deployment lasts without a heartbeat.",
)
@click.option(
    "--retry-base-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="First retry delay after a failed deploy; doubles per attempt, at most 300 s.",
)
@click.option("--replica-id", default=None, help="This replica's name in leases and the audit log [default: host-pid].")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64), help="Deployments driven at once.")
@click.option(
    "--lineage/--no-lineage",
    default=True,
    show_default=True,
    help="Mirror each deployed version into SageMaker ML Lineage Tracking (outcome in deploy.<d>.lineage).",
)
@click.option(
    "--receiver-workers",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads answering the receiver's requests; up to 4x as many connections wait, the rest get 503.",
)
@click.option(
    "--read-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds a request to the receiver has to arrive in full (headers and body); then 408.",
)
def run(
    policy_path: str,
    db: str,
    tracking_uri: str | None,
    listen: str,
    poll_seconds: float,
    settle_seconds: float,
    lease_seconds: float,
    retry_base_seconds: float,
    replica_id: str | None,
    workers: int,
    lineage: bool,
    receiver_workers: int,
    read_timeout: float,
) -> None:
    """Run the controller: keep every deployment of the policy in step with the registry."""
    secrets.install_log_redaction()  # MLflow's and boto's own log lines may quote a URI with a password
    _log_to_stderr()
    import mlflow
    from mlflow.tracking import MlflowClient

    from registry_hooks import policy as policy_file
    from registry_hooks.controller import Controller, Timing
    from registry_hooks.loop import DriftLoop
    from registry_hooks.receiver import SECRET_ENV, TOKEN_ENV, Receiver, ReceiverApp
    from registry_hooks.reconcile import Leases, Reconciler
    from registry_hooks.registry import Registry
    from registry_hooks.targets import Targets

    policy = _policy(policy_path)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a log, not a terminal
    replica = replica_id or f"{socket.gethostname()}-{os.getpid()}"
    with _state(db, create=True) as store:
        leases = Leases(store, replica, lease_seconds)
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)  # model downloads (models:/...) read the same registry
        client = MlflowClient(tracking_uri)
        reconciler = Reconciler(
            store,
            Registry(client),
            Targets(_say, fence=leases.fence),
            leases,
            _say,
            retry_base=retry_base_seconds,
            lineage=lineage,
        )
        drift_loop = DriftLoop(client, Registry(client), store, leases, _say)
        controller = Controller(
            policy,
            store,
            reconciler,
            leases,
            Timing(poll_seconds, settle_seconds, lease_seconds),
            workers,
            _say,
            drift_loop,
        )
        receiver = None
        if listen != "off":
            secret, token = os.environ.get(SECRET_ENV) or None, os.environ.get(TOKEN_ENV) or None
            app = ReceiverApp(store, controller.wake, replica, secret, token=token)
            try:
                host, _, port = listen.rpartition(":")
                receiver = Receiver(app, host or "127.0.0.1", int(port), receiver_workers, read_timeout).start()
            except (OSError, ValueError) as error:
                raise click.ClickException(
                    f"--listen {listen!r}: {error}. Allowed: host:port with a free port "
                    "(0 picks one), or off. Pass another --listen."
                ) from None
            wake = (
                " or ".join(["bearer token"] * bool(token) + ["webhook signature"] * bool(secret))
                or f"off: set {TOKEN_ENV}"
            )
            _say(
                f"Receiver listening on {receiver.url} (POST /webhooks/mlflow "
                f"{'on' if secret else f'off: {SECRET_ENV} is not set'}; POST /wake: {wake}; "
                f"{receiver_workers} workers, {read_timeout:g} s read timeout)"
            )
        _say(
            f"Controller {replica}: {len(policy.rules)} deployment(s) from {policy.file}; registry "
            f"{secrets.strip_uri(client.tracking_uri)}; state {store.shown}; full reconcile every {poll_seconds:g} s; "
            "SIGHUP or an edit reloads the policy"
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: controller.ask_reload())
        controller.watch(policy_path, lambda: policy_file.load(policy_path))
        loop = threading.Thread(target=controller.run, name="hooks-loop", daemon=True)
        loop.start()
        stop.wait()
        _say("Stopping: finishing the passes in progress")
        if receiver is not None:
            receiver.stop()
        controller.stop()


@hooks.command("log")
@db_option
@click.option("--deployment", default=None, help="Only this deployment's entries.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1), help="The newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def log_command(db: str, deployment: str | None, limit: int, as_json: bool) -> None:
    """The audit log: who triggered what, when, and with what result."""
    with _state(db) as store:
        entries = store.audit_log(deployment, limit)
    for entry in entries:
        when = datetime.fromtimestamp(entry["at"], timezone.utc).isoformat(timespec="milliseconds")
        if as_json:
            click.echo(json.dumps({**entry, "at": when}))
            continue
        click.echo(
            f"{when}  {entry['deployment'] or '-':<24} {entry['action']:<8} v{entry['version'] or '-':<4} "
            f"{entry['result']:<12} by {entry['actor'] or '-'} via {entry['trigger'] or '-'}"
            + (f"  {entry['message']}" if entry["message"] else "")
        )


@hooks.command()
@click.argument("deployment")
@db_option
@click.option(
    "--wake",
    "wake_url",
    default=None,
    help="A controller to wake at once (http://host:8470; sends MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN); else its next poll.",
)
def retry(deployment: str, db: str, wake_url: str | None) -> None:
    """Try a FAILED or ROLLED_BACK deployment again, once the cause is fixed."""
    import requests

    from registry_hooks.receiver import SECRET_ENV, TOKEN_ENV

    with _state(db) as store:
        if not store.retry(deployment):
            known = ", ".join(f"{r.name} ({r.status})" for r in store.all()) or "none"
            raise click.ClickException(
                f"deployment {deployment!r} is not FAILED or ROLLED_BACK. Deployments: {known}. "
                "Check the name with `mlflow-sagemaker-ops hooks status`."
            )
        store.log("retry", "asked", deployment, actor=os.environ.get("USER"), message="hooks retry")
    if wake_url:
        from registry_hooks.page.state import wake_headers

        try:
            reply = requests.post(f"{wake_url.rstrip('/')}/wake", data=b"{}", headers=wake_headers(b"{}"), timeout=10)
        except requests.RequestException as error:
            raise click.ClickException(
                f"retry is recorded, but the controller at {secrets.strip_uri(wake_url)} could "
                f"not be woken ({type(error).__name__}); it retries at its next poll."
            ) from None
        if reply.status_code != 202:
            raise click.ClickException(
                f"retry is recorded, but the controller at {secrets.strip_uri(wake_url)} "
                f"refused the wake-up ({reply.status_code}: {reply.text[:200]}); set "
                f"{TOKEN_ENV} to its token (or {SECRET_ENV} to its webhook secret), or wait for its next poll."
            )
    click.echo(f"{deployment}: will be tried again" + (" now" if wake_url else " at the controller's next poll"))


@hooks.command()
@db_option
def status(db: str) -> None:
    """Each deployment's state as the controllers last left it."""
    with _state(db) as store:
        rows = store.all()
    for row in rows:
        click.echo(
            f"{row.name}: {row.status}; wants v{row.desired_version or '-'}, "
            f"serves v{row.serving_version or '-'}; {row.deploys} deploy(s), attempts {row.attempts}"
            + (f"; {row.message}" if row.message else "")
        )
