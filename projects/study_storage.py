"""Optuna's RDB storage, safe to open from several tuning workers that start at the same moment.

``optuna.storages.RDBStorage`` creates its schema when it is opened: SQLAlchemy's ``create_all``
(check, then ``CREATE TABLE``), a ``version_info`` row and an Alembic stamp. Nothing serialises
that, so workers opening a fresh database together race: on PostgreSQL one fails with
``UniqueViolation`` on ``pg_type_typname_nsp_index`` (two ``CREATE TABLE`` of the same name), on
SQLite with ``table ... already exists``. Optuna's maintainers advise creating the storage once
before starting the workers (optuna/optuna#1092, #4621); :func:`open_storage` does that for them:
every opener takes one lock around the creation, so the first creates the schema and the others
find it.

* PostgreSQL: a transaction-level advisory lock (``pg_advisory_xact_lock``) on a connection of its
  own, released when that transaction ends, whether the creation succeeded or failed. Advisory
  locks are per database, which is the scope of the schema.
* SQLite: an exclusive lock on ``<database file>.lock`` (``filelock``), which other processes and
  threads on the machine honour (SQLite itself only works on one machine).
* Anything else (MySQL, an in-memory SQLite database) is opened as Optuna opens it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import optuna
import sqlalchemy

# The advisory lock's key: a fixed 64-bit number of our own, so no other application's lock collides.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"mlflow-sagemaker-ops:optuna-schema").digest()[:8], "big", signed=True)
LOCK_TIMEOUT_SECONDS = 300  # how long an opener waits for another one's schema creation


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage at ``url``, its schema created by whichever concurrent opener comes first."""
    with creation_lock(url):
        return optuna.storages.RDBStorage(url)


@contextlib.contextmanager
def creation_lock(url: str) -> Iterator[None]:
    parsed = sqlalchemy.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        with _advisory_lock(url):
            yield
    elif backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        from filelock import FileLock

        with FileLock(f"{parsed.database}.lock", timeout=LOCK_TIMEOUT_SECONDS):
            yield
    else:
        yield


@contextlib.contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'"))
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield
    finally:
        engine.dispose()
