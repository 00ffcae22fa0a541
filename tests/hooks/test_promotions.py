"""Promotions mean what they say: a transition into a rule's stage is an intent to serve that
version, even when the UI leaves the previous version in the stage too (its "Transition existing
... to Archived" box is unticked by default). The version that is not served says why."""

from __future__ import annotations

import json

from tests.hooks.conftest import eventually, hooks_cli, policy_text


def test_a_rollback_by_transition_without_archiving_deploys_the_intended_version(registry, controllers, aws):
    model = registry.new_model(versions=2)
    deployment = f"{model}-rb"
    controller = controllers(policy_text(deployment, model, on_leave="delete"), registry)
    status = lambda v: registry.tags(model, v, deployment).get("status")  # noqa: E731
    registry.transition(model, "2", "Production")
    eventually(lambda: status("2") == "IN_SERVICE", what="v2 IN_SERVICE", explain=controller.output)

    registry.transition(model, "1", "Production", archive=False)  # both now hold Production, as the UI leaves them
    eventually(
        lambda: status("1") == "IN_SERVICE" and status("2") == "SUPERSEDED",
        what="v1 served, v2 superseded",
        explain=controller.output,
    )
    served = aws("sagemaker").list_tags(
        ResourceArn=aws("sagemaker").describe_endpoint(EndpointName=deployment)["EndpointArn"]
    )
    assert {t["Key"]: t["Value"] for t in served["Tags"]}["mlflow-sagemaker-ops:model-version"] == "1"
    message = registry.tags(model, "2", deployment)["message"]
    assert "holds version 1 too" in message and "transition it to Production again" in message
    log = [
        json.loads(line)
        for line in hooks_cli("log", "--db", registry.db, "--deployment", deployment, "--json").splitlines()
    ]
    update = next(e for e in log if e["action"] == "update" and e["result"] == "succeeded")
    assert update["version"] == "1" and "transition:Production" in update["trigger"]

    registry.transition(model, "1", "Archived")  # v2 still holds Production: it is wanted again
    eventually(lambda: status("2") == "IN_SERVICE", what="v2 IN_SERVICE again", explain=controller.output)
    registry.transition(model, "2", "Archived")
    eventually(lambda: status("2") == "DELETED", what="v2 DELETED", explain=controller.output)
    assert f"{deployment}: version 2 is DELETING" in controller.output()  # shown while the endpoint goes
