"""The Deployments page (``/registry-hooks/deployments``) and the guard of the ``deploy.*`` tags.

The browser tests drive a real headless chromium (``tests/hooks/browser.py``) against a real
``mlflow server --app-name registry-hooks``, the controller as a subprocess, and the AWS sandbox.
Screenshots go to the test's tmp path (``browser/screenshots``); with
``REGISTRY_HOOKS_DOCS_SCREENSHOT=1`` the page's is also copied to ``docs/deployments-page.png``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import requests

from registry_hooks.page.routes import POLL_ENV
from registry_hooks.page.token import HEADER, TOKEN_ENV
from tests.hooks.browser import Browser
from tests.hooks.conftest import SECRET, Controller, eventually, policy_text, start_registry
from tests.serving.conftest import basic_auth_env, free_port

TOKEN = "controller-token-for-tests"
WAKE = {"MLFLOW_REGISTRY_HOOKS_WEBHOOK_SECRET": SECRET}  # the app plugin signs its wake-ups as the controllers expect
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployments-page.png"
# Records every status the page shows, per deployment, and marks the document: a reload loses both.
OBSERVE = """
window.__notReloaded = true;
window.__seen = [];
const record = () => document.querySelectorAll('tbody.deployment').forEach((body) => {
  const shown = body.querySelector('td.state [data-status]');
  const entry = shown && body.dataset.deployment + ':' + shown.dataset.status;
  if (entry && !window.__seen.includes(entry)) window.__seen.push(entry);
});
new MutationObserver(record).observe(document.getElementById('deployments'), {subtree: true, childList: true});
record();
"""


@pytest.fixture(scope="module")
def page_registry(tmp_path_factory, sandbox):
    """``mlflow server --app-name registry-hooks`` that can read the sandbox (for lineage); no controller token."""
    root = tmp_path_factory.mktemp("page")
    reg = start_registry(
        root,
        f"sqlite:///{root / 'mlflow.db'}",
        app=True,
        db=f"sqlite:///{root / 'hooks.db'}",
        env={**sandbox.env(), **WAKE, POLL_ENV: "200"},
    )
    yield reg
    reg.server.stop()


@pytest.fixture
def browser(tmp_path):
    opened = Browser(tmp_path / "browser")
    yield opened
    opened.shot("last")
    opened.quit()


def status_in_page(browser: Browser, deployment: str):
    """Reads the status the page shows now (in the page itself: a redraw cannot come in between)."""
    css = f"tbody[data-deployment='{deployment}'] td.state [data-status]"
    return lambda: browser.driver.execute_script(
        "const s = document.querySelector(arguments[0]); return s ? s.dataset.status : null;", css
    )


def open_page(browser: Browser, registry) -> None:
    """MLflow's UI, then its Deployments link."""
    browser.classic_registry_ui(registry.url)
    browser.driver.get(f"{registry.url}/")
    browser.find("#registry-hooks-link").click()
    browser.wait(lambda d: d.current_url.endswith("/registry-hooks/deployments"), what="the Deployments page")


def test_a_stage_change_in_the_mlflow_ui_shows_deploying_then_in_service_without_a_reload(
    page_registry, controllers, aws, browser
):
    registry = page_registry
    model = registry.new_model(versions=1)
    deployment = f"{model}-prod"
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600")
    open_page(browser, registry)
    browser.find(f"tbody[data-deployment='{deployment}']")  # listed after the controller's first pass
    browser.driver.execute_script(OBSERVE)
    page = browser.driver.current_window_handle

    browser.driver.switch_to.new_window("window")
    browser.transition_in_mlflow_ui(registry.url, model, "1", "Production")
    browser.driver.switch_to.window(page)
    eventually(
        lambda: status_in_page(browser, deployment)() == "IN_SERVICE",
        what="IN_SERVICE on the page",
        explain=controller.output,
    )

    assert browser.driver.execute_script("return window.__notReloaded === true")
    seen = [
        s.split(":", 1)[1]
        for s in browser.driver.execute_script("return window.__seen")
        if s.startswith(f"{deployment}:")
    ]
    assert "DEPLOYING" in seen and seen.index("DEPLOYING") < seen.index("IN_SERVICE"), seen
    row = f"tbody[data-deployment='{deployment}']"
    assert browser.text(f"{row} td.model") == model
    assert browser.text(f"{row} td.serving") == "v1"
    assert browser.attribute(f"{row} td.desired a", "href").endswith(f"/#/models/{model}/versions/1")
    # The drift loop's latest verdict (a policy monitor section writes it to the audit log) shows
    # under the status, without a reload.
    from registry_hooks.store import Store

    Store(registry.db).log("loop-monitor", "drift", deployment, version="1", message="drift in distance_km (run x)")
    browser.wait(
        lambda d: [e.text for e in d.find_elements("css selector", f"{row} td.state .drift.drifted")] == ["drift"],
        what="the drift verdict",
    )
    assert "drift in distance_km" in browser.attribute(f"{row} td.state .drift", "title")
    browser.click(f"{row} summary")
    history = browser.text(f"{row} details")
    assert "create" in history and "succeeded" in history and "app:transition:Production" in history
    assert "loop-monitor" in history
    # Lineage, drawn from what `lineage show --endpoint` reads; the page reads it again once the
    # controller has written it all (deploy.<d>.lineage: written, after IN_SERVICE).
    browser.wait(lambda d: "ModelDeployment" in browser.text(f"{row} .lineage"), what="the deployment in the lineage")
    assert f"models:/{model}/1" in browser.text(f"{row} .lineage")
    assert len(browser.driver.find_elements("css selector", f"{row} details[open] .lineage svg g.vertex")) >= 4
    shot = browser.shot("deployments-page")
    if os.environ.get("REGISTRY_HOOKS_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS)

    browser.click(f"{row} td.serving a")  # to MLflow's page of the version
    browser.wait(
        lambda d: "Production" in d.find_element("css selector", ".mlflow-stage-transition-dropdown").text,
        what="MLflow's version page with stage Production",
    )


def test_a_rollback_by_transition_in_the_mlflow_ui_deploys_the_version_chosen(page_registry, controllers, aws, browser):
    """v1 to Production, then v2, then v1 again (each archiving the other, as the UI's dialog
    offers): the page follows each without a reload, and the endpoint ends on v1."""
    registry = page_registry
    model = registry.new_model(versions=2)
    deployment = f"{model}-prod"
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600")
    open_page(browser, registry)
    row = f"tbody[data-deployment='{deployment}']"
    browser.find(row)
    browser.driver.execute_script(OBSERVE)
    page = browser.driver.current_window_handle
    browser.driver.switch_to.new_window("window")
    ui = browser.driver.current_window_handle
    for version in ("1", "2", "1"):
        browser.driver.switch_to.window(ui)
        browser.transition_in_mlflow_ui(registry.url, model, version, "Production")
        browser.driver.switch_to.window(page)
        eventually(
            lambda v=version: (
                status_in_page(browser, deployment)() == "IN_SERVICE" and browser.text(f"{row} td.serving") == f"v{v}"
            ),
            what=f"v{version} IN_SERVICE on the page",
            explain=controller.output,
        )
    assert browser.driver.execute_script("return window.__notReloaded === true")
    sm = aws("sagemaker")
    labels = {
        t["Key"]: t["Value"]
        for t in sm.list_tags(ResourceArn=sm.describe_endpoint(EndpointName=deployment)["EndpointArn"])["Tags"]
    }
    assert labels["mlflow-sagemaker-ops:model-version"] == "1"
    assert registry.tags(model, "1", deployment)["status"] == "IN_SERVICE"
    assert registry.tags(model, "2", deployment)["status"] != "IN_SERVICE"
    browser.click(f"{row} summary")
    history = browser.text(f"{row} details")
    assert history.count("update") >= 2 and "create" in history, history


def test_retry_from_the_page_after_a_fault(page_registry, controllers, aws, sandbox, browser):
    registry = page_registry
    model = registry.new_model(versions=1)
    deployment = f"{model}-retry"
    sandbox.control.add_fault(
        "CreateEndpoint",
        kind="error",
        code="ResourceLimitExceeded",
        status=400,
        message="account endpoint limit reached",
        count=10,
        service="sagemaker",
    )
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600")
    open_page(browser, registry)
    registry.transition(model, "1", "Production")
    eventually(
        lambda: status_in_page(browser, deployment)() == "FAILED", what="FAILED on the page", explain=controller.output
    )
    row = f"tbody[data-deployment='{deployment}']"
    assert "ResourceLimitExceeded" in browser.text(f"{row} td.message")
    browser.driver.execute_script(OBSERVE)
    browser.shot("failed")

    sandbox.control.clear_faults()  # the cause is fixed
    browser.click(f"{row} button.retry")
    browser.wait(
        lambda d: "will be tried again" in d.find_element("css selector", "#notice").text, what="Retry's answer"
    )
    eventually(
        lambda: status_in_page(browser, deployment)() == "IN_SERVICE",
        what="IN_SERVICE after Retry",
        explain=controller.output,
    )
    assert browser.driver.execute_script("return window.__notReloaded === true")
    assert not browser.driver.find_elements("css selector", f"{row} button.retry")
    assert registry.tags(model, "1", deployment)["status"] == "IN_SERVICE"
    from registry_hooks.store import Store

    asked = [e for e in Store(registry.db).audit_log(deployment) if e["action"] == "retry"]
    assert [(e["result"], e["trigger"], e["version"]) for e in asked] == [("asked", "page:retry", "1")]
    browser.shot("retried")


def test_without_a_token_the_ui_cannot_edit_deploy_tags_and_the_page_says_what_else_to_set(page_registry):
    registry = page_registry
    model = registry.new_model(versions=1)
    key = f"deploy.{model}-prod.status"
    body = {"name": model, "version": "1", "key": key, "value": "IN_SERVICE"}
    refused = requests.post(f"{registry.url}/ajax-api/2.0/mlflow/model-versions/set-tag", json=body, timeout=30)
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert key in refused.json()["message"] and f"hooks retry {model}-prod" in refused.json()["message"]
    note = requests.get(f"{registry.url}/registry-hooks/api/deployments", timeout=30).json()
    assert note["protection"] == "ui" and TOKEN_ENV in note["tag_protection"]
    other = {"name": model, "version": "1", "key": "reviewed", "value": "yes"}
    assert (
        requests.post(f"{registry.url}/ajax-api/2.0/mlflow/model-versions/set-tag", json=other, timeout=30).status_code
        == 200
    )


@pytest.fixture(scope="module")
def guarded_registry(tmp_path_factory, sandbox):
    """A registry-hooks server with the controller token set: only the controller writes deploy.* tags."""
    root = tmp_path_factory.mktemp("guarded")
    reg = start_registry(
        root,
        f"sqlite:///{root / 'mlflow.db'}",
        app=True,
        db=f"sqlite:///{root / 'hooks.db'}",
        env={**sandbox.env(), **WAKE, TOKEN_ENV: TOKEN},
    )
    yield reg
    reg.server.stop()


@pytest.mark.parametrize("prefix", ["api", "ajax-api"])
def test_with_the_token_set_deploy_tags_are_refused_to_every_other_client(guarded_registry, prefix):
    registry = guarded_registry
    model = registry.new_model(versions=1)
    api = f"{registry.url}/{prefix}/2.0/mlflow"
    key = f"deploy.{model}-prod.status"
    writes = [
        ("POST", "model-versions/set-tag", {"name": model, "version": "1", "key": key, "value": "IN_SERVICE"}),
        ("DELETE", "model-versions/delete-tag", {"name": model, "version": "1", "key": key}),
        ("POST", "registered-models/set-tag", {"name": model, "key": f"deploy.{model}-prod.version", "value": "1"}),
        ("DELETE", "registered-models/delete-tag", {"name": model, "key": f"deploy.{model}-prod.version"}),
        (
            "POST",
            "model-versions/create",
            {"name": model, "source": "s3://b/m", "tags": [{"key": key, "value": "IN_SERVICE"}]},
        ),
        ("POST", "registered-models/create", {"name": f"{model}-b", "tags": [{"key": key, "value": "x"}]}),
    ]
    for method, route, body in writes:
        for headers in ({}, {HEADER: "not-the-token"}):
            reply = requests.request(method, f"{api}/{route}", json=body, headers=headers, timeout=30)
            assert reply.status_code == 403, (route, reply.text)
            message = reply.json()["message"]
            assert (
                "deploy." in message
                and "registry-hooks controller" in message
                and "/registry-hooks/deployments" in message
            )
    assert registry.client().get_model_version(model, "1").tags == {}
    assert len(registry.client().search_model_versions(f"name = '{model}'")) == 1
    # The controller's token lets the same write through.
    controller = {HEADER: TOKEN}
    reply = requests.post(f"{api}/model-versions/set-tag", json=writes[0][2], headers=controller, timeout=30)
    assert reply.status_code == 200, reply.text
    assert registry.tags(model, "1", f"{model}-prod") == {"status": "IN_SERVICE"}
    assert requests.get(f"{registry.url}/registry-hooks/api/deployments", timeout=30).json()["protection"] == "all"


def test_the_controller_writes_its_tags_through_the_guard_with_the_token(guarded_registry, aws, sandbox, tmp_path):
    """The controller sends the token by MLflow's request-header plugin (entry point
    ``mlflow.request_header_provider``): it deploys and its status tags are written."""
    registry = guarded_registry
    model = registry.new_model(versions=1)
    deployment = f"{model}-prod"
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(deployment, model))
    env = {**sandbox.env(), **WAKE, "MLFLOW_SAGEMAKER_OPS_WAIT_DELAY": "0.1", TOKEN_ENV: TOKEN}
    controller = Controller(policy, registry, env, "--poll-seconds", "600", "--no-lineage").start()
    try:
        registry.transition(model, "1", "Production")
        eventually(
            lambda: registry.tags(model, "1", deployment).get("status") == "IN_SERVICE",
            what="v1 IN_SERVICE",
            explain=controller.output,
        )
        assert registry.client().get_registered_model(model).tags[f"deploy.{deployment}.version"] == "1"
        assert TOKEN not in controller.output() and TOKEN not in registry.server.output()
    finally:
        controller.stop()


def test_with_basic_auth_retry_needs_edit_or_manage_on_the_model(tmp_path):
    from registry_hooks.store import Store

    password = "Adm1n-password-for-tests"
    closed = free_port()  # the server has no AWS: lineage says so instead of a graph
    env = {
        **basic_auth_env(tmp_path, password),
        TOKEN_ENV: TOKEN,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "none",
        "AWS_SECRET_ACCESS_KEY": "none",
        "AWS_REGION": "us-east-1",
    }
    reg = start_registry(
        tmp_path,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        app="registry-hooks-auth",
        db=f"sqlite:///{tmp_path / 'hooks.db'}",
        env=env,
    )
    try:
        api, page = f"{reg.url}/api/2.0/mlflow", f"{reg.url}/registry-hooks"
        admin = ("admin", password)
        model, deployment = f"secured-{uuid.uuid4().hex[:6]}", "secured-prod"
        grant = {"username": "editor", "resource_type": "registered_model", "resource_id": model, "permission": "EDIT"}
        for route, body in (
            ("2.0/mlflow/registered-models/create", {"name": model}),
            ("2.0/mlflow/model-versions/create", {"name": model, "source": "s3://models/secured"}),
            ("2.0/mlflow/users/create", {"username": "reader", "password": "Reader-password-1234"}),
            ("2.0/mlflow/users/create", {"username": "editor", "password": "Editor-password-1234"}),
            ("3.0/mlflow/users/permissions/grant", grant),
        ):
            reply = requests.post(f"{reg.url}/api/{route}", json=body, auth=admin, timeout=30)
            assert reply.status_code == 200, (route, reply.text)
        store = Store(reg.db)
        store.ensure(deployment)
        assert store.acquire(deployment, "test", 60)
        store.update(deployment, "test", status="FAILED", desired_version="1", message="failed 3 times, giving up")
        store.release(deployment, "test")
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{deployment}"
        for key, value in (("status", "FAILED"), ("arn", arn)):
            tag = {"name": model, "version": "1", "key": f"deploy.{deployment}.{key}", "value": value}
            assert requests.post(f"{api}/model-versions/set-tag", json=tag, auth=admin, timeout=30).status_code == 403
            reply = requests.post(
                f"{api}/model-versions/set-tag", json=tag, auth=admin, headers={HEADER: TOKEN}, timeout=30
            )
            assert reply.status_code == 200, reply.text

        assert requests.get(f"{page}/deployments", timeout=30).status_code == 401
        assert requests.get(f"{page}/api/deployments", timeout=30).status_code == 401
        reader, editor = ("reader", "Reader-password-1234"), ("editor", "Editor-password-1234")
        assert requests.get(f"{page}/deployments", auth=reader, timeout=30).status_code == 200
        (seen,) = requests.get(f"{page}/api/deployments", auth=reader, timeout=30).json()["deployments"]
        assert (seen["name"], seen["model"], seen["status"], seen["can_retry"]) == (deployment, model, "FAILED", False)
        refused = requests.post(f"{page}/api/retry", json={"deployment": deployment}, auth=reader, timeout=30)
        assert refused.status_code == 403, refused.text
        assert (
            "'reader'" in refused.json()["message"]
            and "EDIT" in refused.json()["message"]
            and model in refused.json()["message"]
        )
        assert store.get(deployment).status == "FAILED"

        (seen,) = requests.get(f"{page}/api/deployments", auth=editor, timeout=30).json()["deployments"]
        assert seen["can_retry"] is True
        form = requests.post(f"{page}/api/retry", data={"deployment": deployment}, auth=editor, timeout=30)
        assert form.status_code == 400 and "application/json" in form.json()["message"]
        done = requests.post(f"{page}/api/retry", json={"deployment": deployment}, auth=editor, timeout=30)
        assert done.status_code == 200, done.text
        assert store.get(deployment).status == "PENDING"
        last = store.audit_log(deployment)[-1]
        assert (last["action"], last["result"], last["actor"], last["trigger"]) == (
            "retry",
            "asked",
            "editor",
            "page:retry",
        )
        again = requests.post(f"{page}/api/retry", json={"deployment": deployment}, auth=editor, timeout=30)
        assert again.status_code == 409 and "PENDING" in again.json()["message"]
        missing = requests.post(f"{page}/api/retry", json={"deployment": "nope"}, auth=editor, timeout=30)
        assert missing.status_code == 404 and deployment in missing.json()["message"]

        lineage = requests.get(f"{page}/api/lineage", params={"deployment": deployment}, auth=admin, timeout=120).json()
        assert lineage["available"] is False
        assert (
            "could not read SageMaker lineage" in lineage["reason"]
            and f"lineage show --endpoint {arn}" in lineage["reason"]
        )
    finally:
        reg.server.stop()


def test_a_delete_in_progress_shows_deleting_with_who_asked(tmp_path):
    """The page reads DELETING from the audit log while the reconciler does not write it."""
    from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    from registry_hooks.page import tags, view
    from registry_hooks.store import Store

    store, registry = (
        Store(f"sqlite:///{tmp_path / 'hooks.db'}"),
        SqlAlchemyStore(f"sqlite:///{tmp_path / 'mlflow.db'}"),
    )
    registry.create_registered_model("m")
    registry.create_model_version("m", "s3://b/m")
    registry.set_model_version_tag("m", "1", ModelVersionTag("deploy.d.status", "IN_SERVICE"))
    store.ensure("d")
    assert store.acquire("d", "r", 60)
    store.update("d", "r", status="IN_SERVICE", serving_version="1")
    store.log("delete", "started", "d", "1", "app:transition:Archived (event 7)", "ana", None, "r")

    registry.set_registered_model_alias("m", "champion", "1")
    registry.set_registered_model_tag("m", RegisteredModelTag("deploy.d.version", "1"))
    (entry,) = view.snapshot(store, registry, lambda model, need: True)
    assert (entry["status"], entry["model"], entry["serving_version"]) == ("DELETING", "m", "1")
    assert entry["registry_serving_version"] == "1" and entry["versions"][0]["aliases"] == ["champion"]
    # The SQL index (three queries) and MLflow's API (a search per deployment) read the same.
    assert tags.read(registry).versions("d") == view.api_index(registry, ["d"]).versions("d") == entry["versions"]
    assert view.api_index(registry, ["d"]).serving("m", "d") == "1"
    assert (entry["audit"][0]["actor"], entry["audit"][0]["trigger"]) == ("ana", "app:transition:Archived (event 7)")
    assert entry["links"] == {"1": "#/models/m/versions/1"}

    store.update("d", "r", status="DELETED", serving_version=None)
    store.log("delete", "succeeded", "d", "1", "app:transition:Archived (event 7)", "ana", "deleted", "r")
    (entry,) = view.snapshot(store, registry, lambda model, need: True)
    assert entry["status"] == "DELETED"
    # A user who may not read the model sees nothing.
    assert view.snapshot(store, registry, lambda model, need: False) == []
