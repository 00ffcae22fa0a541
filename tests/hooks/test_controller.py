"""The controller deploys what the registry says, from each event source, and writes it back."""

from __future__ import annotations

import json
import subprocess

import requests

import mlflow_plugins
from tests.hooks.conftest import BIN, SECRET, eventually, hooks_cli, policy_text, sagemaker_calls


def serving(aws, endpoint: str) -> dict[str, str]:
    sm = aws("sagemaker")
    arn = sm.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def status_is(registry, model, version, deployment, status):
    return lambda: registry.tags(model, version, deployment).get("status") == status


def test_stage_transition_through_the_ui_path_deploys_and_writes_tags_back(registry, controllers, aws, sandbox):
    model = registry.new_model(versions=2)
    deployment = f"{model}-prod"
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600")
    registry.transition(model, "1", "Production")
    eventually(
        status_is(registry, model, "1", deployment, "IN_SERVICE"), what="v1 IN_SERVICE", explain=controller.output
    )

    tags = registry.tags(model, "1", deployment)
    assert tags["arn"].endswith(f":endpoint/{deployment}")
    assert tags["message"] == f"serving {deployment}" and tags["time"].startswith("20")
    assert registry.client().get_registered_model(model).tags[f"deploy.{deployment}.version"] == "1"
    live = serving(aws, deployment)
    assert live["mlflow-sagemaker-ops:registered-model"] == model and live["mlflow-sagemaker-ops:model-version"] == "1"
    # The controller mirrors the version into SageMaker lineage, after the status: the endpoint's
    # context has the deployment, the model version and its run upstream.
    eventually(
        lambda: registry.tags(model, "1", deployment).get("lineage") == "written",
        what="lineage written",
        explain=controller.output,
    )
    sm = aws("sagemaker")
    context = sm.list_contexts(SourceUri=tags["arn"])["ContextSummaries"][0]["ContextArn"]
    upstream = sm.query_lineage(StartArns=[context], Direction="Ascendants", MaxDepth=10)["Vertices"]
    assert {"ModelDeployment", "Model", "ModelTraining"} <= {v.get("Type") for v in upstream}
    (action,) = [v["Arn"].split("/")[-1] for v in upstream if v.get("Type") == "ModelDeployment"]
    served = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=deployment)["EndpointConfigName"]
    )
    archive = sm.describe_model(ModelName=served["ProductionVariants"][0]["ModelName"])["PrimaryContainer"][
        "ModelDataUrl"
    ]
    assert sm.describe_action(ActionName=action)["Properties"]["s3_archive"] == archive

    registry.transition(model, "2", "Production")  # archives v1
    eventually(
        status_is(registry, model, "2", deployment, "IN_SERVICE"), what="v2 IN_SERVICE", explain=controller.output
    )
    assert registry.tags(model, "1", deployment)["status"] == "RETIRED"
    assert serving(aws, deployment)["mlflow-sagemaker-ops:model-version"] == "2"
    assert len(aws("sagemaker").list_models()["Models"]) == 1  # the replaced model is gone once the update baked

    log = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    done = [(e["action"], e["version"], e["result"]) for e in log if e["result"] != "started"]
    assert done == [("create", "1", "succeeded"), ("update", "2", "succeeded")]
    assert all(e["trigger"].startswith("app:transition:Production") for e in log)
    status = hooks_cli("status", "--db", registry.db)
    assert f"{deployment}: IN_SERVICE; wants v2, serves v2; 2 deploy(s)" in status


def test_the_app_plugin_records_the_user_and_ignores_failed_requests(registry):
    from registry_hooks.store import Store

    model = registry.new_model(versions=1)
    reply = requests.post(
        f"{registry.url}/api/2.0/mlflow/model-versions/transition-stage",
        auth=("ana", "pw"),
        timeout=30,
        json={"name": model, "version": "1", "stage": "Staging", "archive_existing_versions": False},
    )
    assert reply.status_code == 200
    failed = requests.post(
        f"{registry.url}/api/2.0/mlflow/model-versions/transition-stage",
        timeout=30,
        json={"name": model, "version": "9", "stage": "Staging"},
    )
    assert failed.status_code == 404  # no such version: the request fails as before, and nothing is recorded
    requests.post(
        f"{registry.url}/ajax-api/2.0/mlflow/registered-models/alias",
        timeout=30,
        json={"name": model, "alias": "champion", "version": "1"},
    ).raise_for_status()
    requests.delete(
        f"{registry.url}/api/2.0/mlflow/registered-models/alias", timeout=30, json={"name": model, "alias": "champion"}
    ).raise_for_status()
    store = Store(registry.db)
    seen = eventually(
        lambda: (lambda e: e if len(e) >= 3 else None)([e for e in store.events_after(0) if e["model"] == model]),
        timeout=20,
        what="three recorded events",
    )
    assert [(e["source"], e["kind"], e["version"], e["target"], e["actor"]) for e in seen] == [
        ("app", "transition", "1", "Staging", "ana"),
        ("app", "alias-set", "1", "@champion", None),
        ("app", "alias-deleted", None, "@champion", None),
    ]


def test_an_alias_set_through_a_webhook_deploys(plain_registry, controllers, aws):
    from mlflow.entities.webhook import WebhookEvent

    registry = plain_registry
    model = registry.new_model(versions=2)
    deployment = f"{model}-champ"
    controller = controllers(
        policy_text(deployment, model, source="alias: champion"), registry, "--poll-seconds", "600"
    )
    registry.client().create_webhook(
        name=f"hooks-{model}",
        url=f"{controller.url}/webhooks/mlflow",
        secret=SECRET,
        events=[WebhookEvent("model_version_alias", "created")],
    )
    registry.client().set_registered_model_alias(model, "champion", "2")
    eventually(
        status_is(registry, model, "2", deployment, "IN_SERVICE"),
        what="v2 IN_SERVICE via webhook",
        explain=controller.output,
    )
    assert serving(aws, deployment)["mlflow-sagemaker-ops:model-version"] == "2"
    log = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    assert log[0]["trigger"].startswith("webhook:alias-set:@champion")


def test_with_neither_source_the_poller_deploys_and_the_leave_rule_deletes(plain_registry, controllers, aws, sandbox):
    registry = plain_registry
    model = registry.new_model(versions=1)
    deployment = f"{model}-poll"
    # The first lineage write fails: the deploy still succeeds, the failure is reported, and a
    # later pass writes the lineage without deploying again.
    sandbox.control.add_fault("AddAssociation", kind="error", code="ValidationException", count=1, service="sagemaker")
    controller = controllers(policy_text(deployment, model, on_leave="delete"), registry, "--poll-seconds", "1")
    registry.transition(model, "1", "Production")
    eventually(
        status_is(registry, model, "1", deployment, "IN_SERVICE"),
        what="v1 IN_SERVICE by polling",
        explain=controller.output,
    )
    eventually(
        lambda: registry.tags(model, "1", deployment).get("lineage") == "written",
        what="lineage written on a later pass",
        explain=controller.output,
    )
    assert f"{deployment}: lineage of version 1 failed: ClientError" in controller.output()
    assert "ValidationException" in controller.output()
    log = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    assert log[0]["trigger"] == "poll"
    assert [(e["action"], e["result"]) for e in log] == [("create", "started"), ("create", "succeeded")]
    assert registry.tags(model, "1", deployment)["status"] == "IN_SERVICE"

    registry.transition(model, "1", "Archived")  # Production -> Archived: the leave rule applies
    eventually(status_is(registry, model, "1", deployment, "DELETED"), what="v1 DELETED", explain=controller.output)
    assert aws("sagemaker").list_endpoints()["Endpoints"] == []
    assert (
        aws("sagemaker").list_models()["Models"] == []
        and aws("sagemaker").list_endpoint_configs()["EndpointConfigs"] == []
    )
    assert f"deploy.{deployment}.version" not in registry.client().get_registered_model(model).tags


def test_the_keep_rule_keeps_the_endpoint_and_says_so(registry, controllers, aws):
    model = registry.new_model(versions=1)
    deployment = f"{model}-keep"
    controller = controllers(policy_text(deployment, model, on_leave="keep"), registry, "--poll-seconds", "600")
    registry.transition(model, "1", "Production")
    eventually(
        status_is(registry, model, "1", deployment, "IN_SERVICE"), what="v1 IN_SERVICE", explain=controller.output
    )
    registry.transition(model, "1", "Archived")
    eventually(
        lambda: "on_leave: keep" in registry.tags(model, "1", deployment)["message"],
        what="the keep message",
        explain=controller.output,
    )
    assert registry.tags(model, "1", deployment)["status"] == "IN_SERVICE"
    assert [e["EndpointName"] for e in aws("sagemaker").list_endpoints()["Endpoints"]] == [deployment]


def test_a_burst_of_three_promotions_ends_on_the_last_with_fewer_deployments(registry, controllers, aws, sandbox):
    model = registry.new_model(versions=3)
    deployment = f"{model}-burst"
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600")
    for version in ("1", "2", "3"):
        registry.transition(model, version, "Production")
    eventually(
        status_is(registry, model, "3", deployment, "IN_SERVICE"), what="v3 IN_SERVICE", explain=controller.output
    )
    assert serving(aws, deployment)["mlflow-sagemaker-ops:model-version"] == "3"
    rollouts = sagemaker_calls(sandbox, ("CreateEndpoint", "UpdateEndpoint"))
    assert 1 <= len(rollouts) < 3, rollouts
    log = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    assert len([e for e in log if e["result"] == "started"]) == len(rollouts)


def test_a_failing_deploy_retries_with_backoff_then_is_failed_until_retry_is_asked(registry, controllers, aws, sandbox):
    model = registry.new_model(versions=1)
    deployment = f"{model}-fail"
    requests.post(
        f"{sandbox.url}/_sandbox/faults",
        timeout=10,
        json={
            "operation": "CreateEndpoint",
            "kind": "error",
            "code": "ResourceLimitExceeded",
            "status": 400,
            "message": "account endpoint limit reached",
            "count": 10,
        },
    ).raise_for_status()
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600")
    registry.transition(model, "1", "Production")
    eventually(status_is(registry, model, "1", deployment, "FAILED"), what="v1 FAILED", explain=controller.output)
    tags = registry.tags(model, "1", deployment)
    assert "failed 3 times" in tags["message"] and "ResourceLimitExceeded" in tags["message"]
    log = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    assert [e["result"] for e in log] == ["started", "retrying", "started", "retrying", "started", "failed"]
    assert aws("sagemaker").list_models()["Models"] == []  # each failed create cleaned up after itself

    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10).raise_for_status()  # the cause is fixed
    assert "will be tried again now" in hooks_cli("retry", deployment, "--db", registry.db, "--wake", controller.url)
    eventually(
        status_is(registry, model, "1", deployment, "IN_SERVICE"),
        what="v1 IN_SERVICE after retry",
        explain=controller.output,
    )
    again = subprocess.run(
        [str(BIN / "mlflow-sagemaker-ops"), "hooks", "retry", deployment, "--db", registry.db],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and f"{deployment} (IN_SERVICE)" in again.stderr


def test_with_basic_auth_too_the_event_names_the_signed_in_user(tmp_path, monkeypatch):
    """``--app-name registry-hooks-auth``: MLflow's basic-auth app and the hooks together."""
    from registry_hooks.store import Store
    from tests.hooks.conftest import start_registry

    password = "Adm1n-password-for-tests"
    from tests.serving.conftest import basic_auth_env

    env = basic_auth_env(tmp_path, password)
    reg = start_registry(
        tmp_path,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        app="registry-hooks-auth",
        db=f"sqlite:///{tmp_path / 'hooks.db'}",
        env=env,
    )
    try:
        api = f"{reg.url}/api/2.0/mlflow"
        assert requests.post(f"{api}/registered-models/create", json={"name": "secured"}, timeout=30).status_code == 401
        admin = ("admin", password)
        for path, body in (
            ("registered-models/create", {"name": "secured"}),
            ("model-versions/create", {"name": "secured", "source": "s3://models/secured"}),
            (
                "model-versions/transition-stage",
                {"name": "secured", "version": "1", "stage": "Production", "archive_existing_versions": False},
            ),
        ):
            reply = requests.post(f"{api}/{path}", json=body, auth=admin, timeout=30)
            assert reply.status_code == 200, reply.text
        store = Store(reg.db)
        seen = eventually(
            lambda: [e for e in store.events_after(0) if e["model"] == "secured"], timeout=20, what="the event"
        )
        assert [(e["kind"], e["version"], e["target"], e["actor"]) for e in seen] == [
            ("transition", "1", "Production", "admin")
        ]
    finally:
        reg.server.stop()


def test_an_endpoint_that_is_not_this_models_is_never_taken_over(registry, controllers, aws):
    from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

    model = registry.new_model(versions=1)
    deployment = f"{model}-taken"
    sm = aws("sagemaker")  # someone else's endpoint, made by hand under the name the rule wants
    sm.create_model(
        ModelName="by-hand",
        ExecutionRoleArn=EXECUTION_ROLE_ARN,
        PrimaryContainer={
            "Image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlflow-sagemaker-ops:{mlflow_plugins.__version__}"
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName="by-hand",
        ProductionVariants=[
            {"VariantName": "primary", "ModelName": "by-hand", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    sm.create_endpoint(EndpointName=deployment, EndpointConfigName="by-hand")
    aws.wait("endpoint_in_service", EndpointName=deployment)
    controller = controllers(policy_text(deployment, model), registry, "--poll-seconds", "600")
    registry.transition(model, "1", "Production")
    eventually(
        status_is(registry, model, "1", deployment, "FAILED"), what="v1 FAILED (conflict)", explain=controller.output
    )
    assert "serves no registered model of the suite" in registry.tags(model, "1", deployment)["message"]
    assert sm.describe_endpoint(EndpointName=deployment)["EndpointConfigName"] == "by-hand"
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["by-hand"]


def test_a_rule_on_a_multi_model_endpoint_adds_replaces_and_removes_its_model(registry, controllers, aws):
    from mlflow.deployments import get_deploy_client

    from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN

    model = registry.new_model(versions=2)
    client = get_deploy_client("sagemaker")
    client.create_endpoint("fleet", {"execution_role_arn": EXECUTION_ROLE_ARN})
    policy = (
        f"version: 1\ndeployments:\n  {model}-on-fleet:\n    model: {model}\n    stage: Production\n"
        f"    target: sagemaker:/us-east-1\n    multi_model_endpoint: fleet\n    on_leave: delete\n"
    )
    deployment = f"{model}-on-fleet"
    controller = controllers(policy, registry, "--poll-seconds", "600")
    registry.transition(model, "1", "Production")
    eventually(
        status_is(registry, model, "1", deployment, "IN_SERVICE"), what="v1 on the MME", explain=controller.output
    )
    assert client.get_deployment(deployment, endpoint="fleet")["model_version"] == "1"
    registry.transition(model, "2", "Production")
    eventually(
        status_is(registry, model, "2", deployment, "IN_SERVICE"), what="v2 on the MME", explain=controller.output
    )
    assert client.get_deployment(deployment, endpoint="fleet")["model_version"] == "2"
    assert registry.tags(model, "1", deployment)["status"] == "RETIRED"
    # Lineage: each version's deployment Action says it went to an MME. A later `lineage sync`
    # (which knows the deployment only by the endpoint ARN in the status tags) rewrites nothing.
    eventually(
        lambda: registry.tags(model, "2", deployment).get("lineage") == "written",
        what="v2 lineage",
        explain=controller.output,
    )
    sm = aws("sagemaker")
    fleet_context = sm.list_contexts(SourceUri=registry.tags(model, "2", deployment)["arn"])["ContextSummaries"][0][
        "ContextArn"
    ]
    upstream = sm.query_lineage(StartArns=[fleet_context], Direction="Ascendants", MaxDepth=2)["Vertices"]
    actions = [
        sm.describe_action(ActionName=v["Arn"].split("/")[-1]) for v in upstream if v.get("Type") == "ModelDeployment"
    ]
    assert sorted(a["Properties"]["model"] for a in actions) == [f"models:/{model}/1", f"models:/{model}/2"]
    assert {a["Properties"]["target"] for a in actions} == {"sagemaker-mme"}
    v2_action = next(a["Properties"] for a in actions if a["Properties"]["model"].endswith("/2"))
    assert v2_action["s3_archive"].endswith("/" + client.get_deployment(deployment, endpoint="fleet")["target_model"])
    from mlflow_plugins.lineage.sync import LineageSync

    resync = LineageSync(sm, registry.client(), tracking_uri=registry.url)
    resync.sync_model(model)
    assert (resync.writer.writes, resync.result.versions) == (0, [f"{model}/1", f"{model}/2"])
    registry.transition(model, "2", "Archived")
    eventually(
        status_is(registry, model, "2", deployment, "DELETED"), what="the model removed", explain=controller.output
    )
    assert client.list_deployments(endpoint="fleet") == []
    assert [e["EndpointName"] for e in aws("sagemaker").list_endpoints()["Endpoints"]] == ["fleet"]  # the MME stays
    client.delete_endpoint("fleet")
