"""The controller's state store: leases are exclusive, and many processes may open it at once."""

from __future__ import annotations

import subprocess
import sys

from registry_hooks.store import LeaseLost, Store
from tests.hooks.conftest import fresh_postgres_db

OPEN = "import sys; from registry_hooks.store import Store; Store(sys.argv[1]).all()"


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'hooks.db'}", fresh_postgres_db()):
        opened = [
            subprocess.Popen([sys.executable, "-c", OPEN, url], stderr=subprocess.PIPE, text=True) for _ in range(6)
        ]
        errors = [p.communicate(timeout=120)[1] for p in opened]
        assert [p.returncode for p in opened] == [0] * 6, errors


def test_a_lease_is_exclusive_renewable_and_fences_updates():
    store = Store(fresh_postgres_db())
    store.ensure("churn-prod")
    store.ensure("churn-prod")  # a second ensure is harmless
    assert store.acquire("churn-prod", "a", 30) and store.acquire("churn-prod", "a", 30)
    assert not store.acquire("churn-prod", "b", 30)
    assert store.renew("churn-prod", "a", 30) and not store.renew("churn-prod", "b", 30)
    try:
        store.update("churn-prod", "b", status="DEPLOYING")
        raise AssertionError("an update without the lease went through")
    except LeaseLost as error:
        assert "churn-prod" in str(error)
    store.update("churn-prod", "a", status="DEPLOYING")
    assert store.acquire("churn-prod", "b", -1) is False
    store.release("churn-prod", "a")
    assert store.acquire("churn-prod", "b", 0.0)  # free now; a zero-length lease
    assert store.acquire("churn-prod", "c", 30)  # ...which has expired at once
    assert store.get("churn-prod").lease_owner == "c" and store.get("churn-prod").status == "DEPLOYING"
    assert store.record_event("webhook", "alias-set", "churn", "1", "@x", None, "d-1") is not None
    assert store.record_event("webhook", "alias-set", "churn", "1", "@x", None, "d-1") is None  # a redelivery
