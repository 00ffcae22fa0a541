"""Several tuning workers opening one fresh Optuna storage at the same moment (a real PostgreSQL
database created for the test, and a SQLite file): all of them open it, and it holds one schema."""

from __future__ import annotations

import threading
import uuid

import optuna
import psycopg2
import pytest
import sqlalchemy

from projects import study_storage

WORKERS = 6


@pytest.fixture
def fresh_postgres():
    """A throwaway database on the test server (127.0.0.1:5432, trust auth), dropped afterwards."""
    name = f"optuna_race_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def open_all_at_once(url: str) -> list[BaseException]:
    """Open the storage from ``WORKERS`` threads released together; the errors they raised."""
    start, errors, opened = threading.Barrier(WORKERS), [], []

    def worker() -> None:
        start.wait()
        try:
            opened.append(study_storage.open_storage(url))
        except BaseException as error:  # noqa: BLE001 - collected and reported by the test
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for storage in opened:
        storage.engine.dispose()
    return errors


def one_schema(url: str) -> tuple[int, int]:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        rows = tuple(
            connection.execute(sqlalchemy.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("version_info", "alembic_version")
        )
    engine.dispose()
    return rows


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_workers_starting_together_all_open_a_fresh_storage(kind, request, tmp_path):
    url = request.getfixturevalue("fresh_postgres") if kind == "postgresql" else f"sqlite:///{tmp_path / 'optuna.db'}"
    errors = open_all_at_once(url)
    assert not errors, f"{len(errors)} of {WORKERS} workers failed; first: {errors[0]!r}"
    assert one_schema(url) == (1, 1)
    storage = study_storage.open_storage(url)
    study = optuna.create_study(study_name="shared", storage=storage, load_if_exists=True)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="shared", storage=url).trials) == 2
    storage.engine.dispose()


def test_other_storages_are_opened_as_optuna_opens_them():
    assert isinstance(study_storage.open_storage("sqlite://"), optuna.storages.RDBStorage)
