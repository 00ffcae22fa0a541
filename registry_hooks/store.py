"""The controller's state: deployments with their leases, registry events, and the audit log.

sqlite by default (one controller); PostgreSQL for several replicas. A replica drives a
deployment only while it holds the deployment's lease, taken with one conditional UPDATE (the
row lock serializes racing replicas on PostgreSQL; sqlite has one writer) and renewed by a
heartbeat. Lease times are the replicas' own clocks: keep them in sync (NTP), as for any lease.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mlflow_plugins import secrets

DEFAULT_URL = "sqlite:///registry-hooks.db"
DB_ENV = "MLFLOW_REGISTRY_HOOKS_DB"

meta = sa.MetaData()
LEASE_ONLY = "#"  # a row whose name holds it is a lease of its own (a drift loop), not a deployment

deployments = sa.Table(
    "hooks_deployments",
    meta,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("desired_version", sa.String(40)),
    sa.Column("serving_version", sa.String(40)),
    sa.Column("status", sa.String(20), nullable=False, default="PENDING"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("retry_at", sa.Float, nullable=False, default=0.0),
    sa.Column("deploys", sa.Integer, nullable=False, default=0),
    sa.Column("message", sa.Text),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_until", sa.Float, nullable=False, default=0.0),
    sa.Column("updated_at", sa.Float, nullable=False, default=0.0),
)
events = sa.Table(
    "hooks_events",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),  # app, webhook, cli
    sa.Column("kind", sa.String(60), nullable=False),  # transition, alias-set, alias-deleted, ...
    sa.Column("model", sa.String(256)),
    sa.Column("version", sa.String(40)),
    sa.Column("target", sa.String(256)),  # the stage, or @alias
    sa.Column("actor", sa.String(256)),
    sa.Column("delivery_id", sa.String(128), unique=True),
)
audit = sa.Table(
    "hooks_audit",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("deployment", sa.String(200)),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("version", sa.String(40)),
    sa.Column("trigger", sa.String(300)),
    sa.Column("actor", sa.String(256)),
    sa.Column("result", sa.String(40), nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("replica", sa.String(200)),
)


@dataclass(frozen=True)
class Row:
    name: str
    desired_version: str | None
    serving_version: str | None
    status: str
    attempts: int
    retry_at: float
    deploys: int
    message: str | None
    lease_owner: str | None
    lease_until: float


class StoreError(Exception):
    """The state cannot be opened: a one-line message that names the URL (without its password)
    and says what to do."""


class Store:
    """``create=False`` opens existing state only (commands that read it must not make it): a
    missing sqlite file or missing tables raise :class:`StoreError` and nothing is created."""

    def __init__(self, url: str = DEFAULT_URL, create: bool = True) -> None:
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except (sa.exc.ArgumentError, ValueError):
            raise StoreError(
                f"--db {secrets.strip_uri(url)!r} is not a database URL. Allowed: sqlite:///file.db, or "
                "postgresql+psycopg2://user@host:5432/db for replicas. Pass another --db "
                f"(env {DB_ENV})."
            ) from None
        self.shown = parsed.render_as_string(hide_password=True)
        sqlite = parsed.get_backend_name() == "sqlite"
        on_disk = parsed.database not in (None, "", ":memory:")
        if sqlite and not create and on_disk and not os.path.exists(str(parsed.database)):
            raise self.missing(f"the file {parsed.database} does not exist")
        args: dict[str, Any] = {"future": True}
        if sqlite:
            args["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            args.update(pool_pre_ping=True, pool_size=4, max_overflow=4)
        try:
            self.engine = sa.create_engine(url, **args)
        except (sa.exc.ArgumentError, ImportError) as error:
            raise StoreError(
                f"--db {self.shown}: {error}. Allowed: sqlite:///file.db, or postgresql+psycopg2://"
                "user@host:5432/db (pip install 'mlflow-sagemaker-ops[postgres]')."
            ) from None
        if sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            if create:
                _create_tables(self.engine)
            elif not sa.inspect(self.engine).has_table(audit.name):
                raise self.missing("it has no registry-hooks tables")
        except sa.exc.DBAPIError as error:
            self.engine.dispose()
            raise self.unreachable(error) from None

    def missing(self, why: str) -> StoreError:
        return StoreError(
            f"no registry-hooks state at {self.shown}: {why}. Pass the controller's --db (env {DB_ENV}); "
            "`mlflow-sagemaker-ops hooks run` creates it."
        )

    def unreachable(self, error: BaseException) -> StoreError:
        """A one-line :class:`StoreError` for a database error (the driver's first line, redacted)."""
        cause = getattr(error, "orig", None) or error
        first = next((line.strip() for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
        return StoreError(
            f"cannot use the registry-hooks database {self.shown}: {secrets.redact(first)}. Check --db "
            f"(env {DB_ENV}) and that the database is up and reachable."
        )

    def close(self) -> None:
        self.engine.dispose()

    # ---- deployments and leases ----------------------------------------------------------
    def ensure(self, name: str) -> None:
        try:
            with self.engine.begin() as db:
                db.execute(
                    deployments.insert().values(
                        name=name,
                        status="PENDING",
                        attempts=0,
                        retry_at=0.0,
                        deploys=0,
                        lease_until=0.0,
                        updated_at=time.time(),
                    )
                )
        except IntegrityError:
            pass  # it exists (perhaps another replica made it a moment ago)

    def acquire(self, name: str, owner: str, seconds: float) -> bool:
        """Take (or renew) the lease: free, expired, or already ours."""
        now = time.time()
        with self.engine.begin() as db:
            taken = db.execute(
                deployments.update()
                .where(
                    deployments.c.name == name,
                    sa.or_(
                        deployments.c.lease_owner.is_(None),
                        deployments.c.lease_owner == owner,
                        deployments.c.lease_until < now,
                    ),
                )
                .values(lease_owner=owner, lease_until=now + seconds)
            )
        return taken.rowcount == 1

    def renew(self, name: str, owner: str, seconds: float) -> bool:
        with self.engine.begin() as db:
            kept = db.execute(
                deployments.update()
                .where(deployments.c.name == name, deployments.c.lease_owner == owner)
                .values(lease_until=time.time() + seconds)
            )
        return kept.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        with self.engine.begin() as db:
            db.execute(
                deployments.update()
                .where(deployments.c.name == name, deployments.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=0.0)
            )

    def get(self, name: str) -> Row:
        with self.engine.connect() as db:
            found = db.execute(sa.select(deployments).where(deployments.c.name == name)).mappings().one()
        return _row(found)

    def all(self) -> list[Row]:
        """Every deployment (not the drift loops' lease rows, ``<deployment>#monitor``)."""
        query = sa.select(deployments).where(~deployments.c.name.contains(LEASE_ONLY)).order_by(deployments.c.name)
        with self.engine.connect() as db:
            return [_row(r) for r in db.execute(query).mappings()]

    def update(self, name: str, owner: str, **values: Any) -> None:
        """Change the deployment's row, only while ``owner`` holds its lease (fencing)."""
        if values.get("message"):
            values["message"] = secrets.redact(values["message"])
        with self.engine.begin() as db:
            mine = deployments.update().where(deployments.c.name == name, deployments.c.lease_owner == owner)
            changed = db.execute(mine.values(updated_at=time.time(), **values))
        if changed.rowcount != 1:
            raise LeaseLost(name)

    def retry(self, name: str) -> bool:
        """Let a FAILED or ROLLED_BACK deployment be tried again (by the next pass)."""
        with self.engine.begin() as db:
            changed = db.execute(
                deployments.update()
                .where(deployments.c.name == name, deployments.c.status.in_(("FAILED", "ROLLED_BACK")))
                .values(status="PENDING", attempts=0, retry_at=0.0, message="retry asked for", updated_at=time.time())
            )
        return changed.rowcount == 1

    # ---- events --------------------------------------------------------------------------
    def record_event(
        self,
        source: str,
        kind: str,
        model: str | None,
        version: str | None = None,
        target: str | None = None,
        actor: str | None = None,
        delivery_id: str | None = None,
    ) -> int | None:
        """The event's id, or None when its delivery id was seen before (a redelivery)."""
        try:
            with self.engine.begin() as db:
                made = db.execute(
                    events.insert().values(
                        at=time.time(),
                        source=source,
                        kind=kind,
                        model=model,
                        version=version,
                        target=target,
                        actor=actor,
                        delivery_id=delivery_id,
                    )
                )
            key = made.inserted_primary_key
            return int(key[0]) if key is not None else None
        except IntegrityError:
            return None

    def events_after(self, event_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as db:
            query = sa.select(events).where(events.c.id > event_id).order_by(events.c.id)
            return [dict(r) for r in db.execute(query).mappings()]

    def last_event_id(self) -> int:
        with self.engine.connect() as db:
            return db.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar_one()

    def latest_event(self, model: str, version: str | None = None) -> dict[str, Any] | None:
        """The newest event that moved ``version`` of ``model`` (into or out of a stage or alias),
        or with no version, the newest event of the model."""
        query = sa.select(events).where(events.c.model == model)
        if version is not None:
            query = query.where(events.c.version == version)
        with self.engine.connect() as db:
            found = db.execute(query.order_by(events.c.id.desc()).limit(1)).mappings().first()
        return dict(found) if found else None

    # ---- audit ---------------------------------------------------------------------------
    def log(
        self,
        action: str,
        result: str,
        deployment: str | None = None,
        version: str | None = None,
        trigger: str | None = None,
        actor: str | None = None,
        message: str | None = None,
        replica: str | None = None,
    ) -> None:
        """An audit row; its message and trigger are redacted (:func:`mlflow_plugins.secrets.redact`)."""
        message = secrets.redact(message) if message else message
        trigger = secrets.redact(trigger) if trigger else trigger
        with self.engine.begin() as db:
            db.execute(
                audit.insert().values(
                    at=time.time(),
                    deployment=deployment,
                    action=action,
                    version=version,
                    trigger=trigger,
                    actor=actor,
                    result=result,
                    message=message,
                    replica=replica,
                )
            )

    def audit_log(self, deployment: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(audit).order_by(audit.c.id.desc()).limit(limit)
        if deployment:
            query = query.where(audit.c.deployment == deployment)
        with self.engine.connect() as db:
            return [dict(r) for r in reversed(list(db.execute(query).mappings()))]


class LeaseLost(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"this replica no longer holds the lease of deployment {name!r}; another replica drives it now"
        )
        self.name = name


def _row(found: Any) -> Row:
    return Row(**{field: found[field] for field in Row.__dataclass_fields__})


def _create_tables(engine: sa.Engine, attempts: int = 5) -> None:
    """``create_all`` checks, then creates; another process (the MLflow server's app plugin, a
    second replica) may create a table in between, which fails the CREATE: check again."""
    for attempt in range(attempts):
        try:
            meta.create_all(engine)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # the MLflow server's app plugin and the controller write at once
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
