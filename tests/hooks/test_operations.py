"""The controller as an operator runs it: a receiver that slow clients, floods and odd payloads
cannot exhaust, an authenticated ``/wake``, a policy that reloads without a restart, read-only
commands that create nothing, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import requests

from tests.hooks.conftest import BIN, eventually, fresh_postgres_db, policy_text
from tests.hooks.test_webhooks import signed

TOKEN = "wake-token-for-tests"
TOKEN_ENV = "MLFLOW_REGISTRY_HOOKS_WAKE_TOKEN"


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def audit(db: str) -> list[dict]:
    from registry_hooks.store import Store

    store = Store(db)
    try:
        return store.audit_log(limit=10_000)
    finally:
        store.close()


def webhook_body(model: str, alias: str = "champion", version: str = "1") -> bytes:
    return json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "now",
            "data": {"name": model, "alias": alias, "version": version},
        }
    ).encode()


def test_slow_clients_hold_a_bounded_number_of_threads_and_are_cut_off(registry, controllers):
    model = registry.new_model(versions=1)
    controller = controllers(
        policy_text(f"{model}-slow", model),
        registry,
        "--poll-seconds",
        "600",
        "--receiver-workers",
        "4",
        "--read-timeout",
        "2",
    )
    pid, port = controller.process.pid, controller.port
    base = threads(pid)
    slow = []
    for _ in range(50):  # each sends half a request line and headers, then nothing
        client = socket.create_connection(("127.0.0.1", port), timeout=60)
        client.sendall(b"POST /webhooks/mlflow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
        slow.append(client)
    busy = requests.get(f"{controller.url}/health", timeout=30)  # accepted after all 50: every slot is taken
    assert busy.status_code == 503 and "busy" in busy.json()["error"], busy.text
    assert threads(pid) <= base + 2 * 4 + 2, f"{threads(pid)} threads, {base} before 50 slow clients"
    for client in slow:  # every one is answered or cut off by the server; none is left hanging
        while client.recv(4096):
            pass
        client.close()
    assert eventually(lambda: requests.get(f"{controller.url}/health", timeout=10).status_code == 200, timeout=30)
    assert threads(pid) <= base + 2 * 4 + 2


def test_a_chunked_webhook_body_is_read(registry, controllers):
    model = registry.new_model(versions=1)
    controller = controllers(
        policy_text(f"{model}-chunked", model, source="alias: champion"), registry, "--poll-seconds", "600"
    )
    body = webhook_body(model)
    headers = signed(body)
    reply = requests.post(
        f"{controller.url}/webhooks/mlflow", data=iter([body[:7], body[7:30], body[30:]]), headers=headers, timeout=10
    )  # a generator body goes out chunked, with no Content-Length
    assert reply.status_code == 202, reply.text
    from registry_hooks.store import Store

    recorded = [e for e in Store(registry.db).events_after(0) if e["delivery_id"] == headers["X-MLflow-Delivery-Id"]]
    assert [(e["kind"], e["model"], e["target"]) for e in recorded] == [("alias-set", model, "@champion")]
    huge = b"{" + b" " * (2 << 20) + b"}"
    oversized = requests.post(
        f"{controller.url}/webhooks/mlflow",
        data=iter([huge[: 1 << 20], huge[1 << 20 :]]),
        headers=signed(huge),
        timeout=30,
    )
    assert oversized.status_code == 413, oversized.text


def test_every_unexpected_json_shape_is_answered_400_and_audited(registry, controllers):
    model = registry.new_model(versions=1)
    controller = controllers(
        policy_text(f"{model}-shape", model, source="alias: champion"), registry, "--poll-seconds", "600"
    )
    shapes = [
        b"[1, 2]",
        b'"text"',
        b"null",
        b"3",
        b"not json",
        b'{"entity": "model_version", "action": "created", "data": []}',
        b'{"entity": 1, "action": "created"}',
        b'{"entity": "model_version_alias", "action": "created", "data": {"name": ["m"], "version": "1"}}',
        b'{"entity": "model_version_alias", "action": "created", "data": {"name": "m", "version": {"v": 1}}}',
    ]
    for body in shapes:
        reply = requests.post(f"{controller.url}/webhooks/mlflow", data=body, headers=signed(body), timeout=10)
        assert reply.status_code == 400, (body, reply.status_code, reply.text)
        assert "not an MLflow webhook payload" in reply.json()["error"]
    refused = [
        e for e in audit(registry.db) if e["result"] == "refused-400" and "webhook payload" in (e["message"] or "")
    ]
    assert len(refused) >= len(shapes)
    assert requests.get(f"{controller.url}/health", timeout=10).status_code == 200


def test_a_flood_of_refused_requests_writes_few_audit_rows(registry, controllers):
    model = registry.new_model(versions=1)
    controller = controllers(
        policy_text(f"{model}-flood", model, source="alias: champion"), registry, "--poll-seconds", "600"
    )
    url = f"{controller.url}/webhooks/mlflow"
    body = webhook_body(model)
    good = signed(body)
    assert requests.post(url, data=body, headers=good, timeout=10).status_code == 202
    assert requests.post(url, data=body, headers=good, timeout=10).status_code == 200  # a duplicate: one audit row
    before = len(audit(registry.db))
    with requests.Session() as session:
        codes = {
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10).status_code
            for _ in range(200)
        }
    assert codes == {400}
    rows = audit(registry.db)[before:]
    assert 1 <= len([r for r in rows if r["result"].startswith("refused")]) <= 10, rows
    shown = subprocess.run(
        [str(BIN / "mlflow-sagemaker-ops"), "hooks", "log", "--db", registry.db, "--limit", "20", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert any(json.loads(line)["result"] == "duplicate" for line in shown.stdout.splitlines()), shown.stdout
    controller.stop()  # the receiver writes what it did not write one by one
    summary = [r for r in audit(registry.db)[before:] if r["result"] == "refused-suppressed"]
    assert summary and sum(int(r["message"].split()[0]) for r in summary) >= 190, summary


def test_wake_needs_the_shared_token_or_a_signature(plain_registry, controllers, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    model = plain_registry.new_model(versions=1)
    controller = controllers(
        policy_text(f"{model}-wake", model, source="alias: champion"), plain_registry, "--poll-seconds", "600"
    )
    wake = f"{controller.url}/wake"
    anonymous = requests.post(wake, timeout=10)
    assert anonymous.status_code == 401 and TOKEN_ENV in anonymous.json()["error"]
    assert requests.post(wake, headers={"Authorization": "Bearer guessed"}, timeout=10).status_code == 401
    assert requests.post(wake, data=b"{}", headers=signed(b"{}", secret="guessed"), timeout=10).status_code == 401
    assert requests.post(wake, data=b"{}", headers=signed(b"{}"), timeout=10).status_code == 202
    refused = [e for e in audit(plain_registry.db) if e["action"] == "wake" and e["result"] == "refused-401"]
    assert len(refused) >= 3

    # The registry changes where no app plugin sees it; only an authenticated wake-up brings the pass forward.
    plain_registry.client().set_registered_model_alias(model, "champion", "1")
    assert requests.post(wake, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 202
    eventually(
        lambda: plain_registry.tags(model, "1", f"{model}-wake").get("status") == "IN_SERVICE",
        timeout=120,
        what="the woken pass to deploy",
        explain=controller.output,
    )


def test_sighup_and_an_edited_policy_reload_and_a_bad_one_keeps_the_last_good(plain_registry, controllers, tmp_path):
    first, second = plain_registry.new_model(versions=1), plain_registry.new_model(versions=1)
    controller = controllers(
        policy_text(f"{first}-a", first, source="alias: champion"), plain_registry, "--poll-seconds", "600"
    )
    path = controller.args[controller.args.index("--policy") + 1]
    good = open(path).read()

    with open(path, "w") as out:
        out.write(good + "  broken:\n    model: [unclosed\n")
    eventually(
        lambda: "not reloaded (the file changed)" in controller.output(),
        timeout=30,
        what="the bad policy to be refused",
        explain=controller.output,
    )
    refusal = next(line for line in controller.output().splitlines() if "not reloaded" in line)
    assert "still running the last good policy (1 deployment(s))" in refusal and path in refusal
    assert controller.process.poll() is None and requests.get(f"{controller.url}/health", timeout=10).ok

    both = good + policy_text(f"{second}-b", second, source="alias: champion").split("deployments:\n", 1)[1]
    with open(path, "w") as out:
        out.write(both)
    eventually(
        lambda: f"added: {second}-b" in controller.output(),
        timeout=30,
        what="the edited policy to load",
        explain=controller.output,
    )
    plain_registry.client().set_registered_model_alias(second, "champion", "1")
    os.kill(controller.process.pid, signal.SIGHUP)  # also a full pass: the new rule deploys before the poll
    eventually(
        lambda: "reloaded (SIGHUP): no deployment changed" in controller.output(),
        timeout=30,
        what="SIGHUP to reload",
        explain=controller.output,
    )
    assert controller.process.poll() is None, controller.output()
    eventually(
        lambda: plain_registry.tags(second, "1", f"{second}-b").get("status") == "IN_SERVICE",
        timeout=120,
        what="the added rule to deploy",
        explain=controller.output,
    )
    results = [e["result"] for e in audit(plain_registry.db) if e["action"] == "policy"]
    assert "reload-refused" in results and "reloaded" in results


def _cli(*args: str, cwd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "MLFLOW_REGISTRY_HOOKS_DB"}
    return subprocess.run(
        [str(BIN / "mlflow-sagemaker-ops"), "hooks", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, **(env or {})},
    )


def test_commands_that_read_state_never_create_it(tmp_path):
    for args in (["status"], ["log"], ["retry", "some-deployment"]):
        done = _cli(*args, cwd=str(tmp_path))
        assert done.returncode == 1, done.stdout + done.stderr
        assert "no registry-hooks state at sqlite:///registry-hooks.db" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert list(tmp_path.iterdir()) == []
    done = _cli("status", "--db", fresh_postgres_db(), cwd=str(tmp_path))  # a database without the controller's tables
    assert done.returncode == 1 and "has no registry-hooks tables" in done.stderr, done.stderr


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = f"postgresql+psycopg2://postgres:Db-Pw-9z@127.0.0.1:{port}/hooks"
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text("d", "m", source="alias: champion"))
    for args in (
        ["status", "--db", db],
        ["log", "--db", db],
        ["retry", "d", "--db", db],
        ["run", "--policy", str(policy), "--db", db, "--listen", "off"],
    ):
        done = _cli(*args, cwd=str(tmp_path))
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"127.0.0.1:{port}" in lines[0] and "Db-Pw-9z" not in done.stderr + done.stdout, lines[0]
        assert "Check --db" in lines[0], lines[0]
