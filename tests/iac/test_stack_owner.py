"""``-C via=cloudformation``: a stack owns the endpoint. Create, update and delete go through
change sets on the sandbox's CloudFormation, with SageMaker's rollout semantics: an alarm during
the endpoint update rolls the stack back, and the deploy fails with CloudFormation's reason."""

from __future__ import annotations

import logging

import pytest

from mlflow_plugins.errors import AwsCallFailed, InvalidValue, OwnedElsewhere, ResourceConflict
from tests.contract.conftest import sandbox_calls
from tests.deploy.conftest import alarm_while_baking
from tests.iac.test_export import ROLE, target

STACK = "mlflow-sagemaker-ops-churn"
VIA = {**ROLE, "via": "cloudformation"}


def serving(aws) -> tuple[str, str]:
    sm = aws("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="churn")
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    return endpoint["EndpointStatus"], tags["mlflow-sagemaker-ops:model-uri"]


def stack_status(aws) -> str:
    return aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]


def test_a_stack_owns_the_endpoint_through_create_update_rollback_and_delete(aws, models, caplog, sandbox):
    caplog.set_level(logging.INFO, logger="mlflow_plugins")
    sagemaker = target("sagemaker")
    before = sandbox_calls(sandbox)
    planned = sagemaker.create("churn", models["v1"], {**VIA, "dry_run": True})
    written = {c.split(":", 1)[1] for c in sandbox_calls(sandbox)[len(before) :]}
    # A plan's only writes are the change set it reads and deletes (and the empty stack a CREATE makes)
    assert {w for w in written if not w.startswith(("Describe", "List", "Get", "Head"))} <= {
        "CreateChangeSet",
        "DeleteChangeSet",
        "DeleteStack",
    }, written
    assert {(c["action"], c["resource"]) for c in planned["changes"]} >= {
        ("create", "AWS::SageMaker::Endpoint"),
        ("create", "AWS::SageMaker::Model"),
    }
    stacks = aws("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks] in ([], ["DELETE_COMPLETE"])  # the plan's change set and stack went

    # A first create that fails (an image that is not in the account's ECR) rolls the stack back;
    # the next create deletes that empty stack and succeeds.
    missing = {**VIA, "image_url": "123456789012.dkr.ecr.us-east-1.amazonaws.com/missing:1"}
    with pytest.raises(AwsCallFailed, match="ROLLBACK_COMPLETE"):
        sagemaker.create("churn", models["v1"], missing)
    assert stack_status(aws) == "ROLLBACK_COMPLETE" and aws("sagemaker").list_endpoints()["Endpoints"] == []
    sagemaker.create("churn", models["v1"], VIA)
    assert stack_status(aws) == "CREATE_COMPLETE" and serving(aws) == ("InService", models["v1"])
    with pytest.raises(ResourceConflict):
        sagemaker.create("churn", models["v1"], VIA)
    with pytest.raises(
        OwnedElsewhere, match="belongs to CloudFormation stack mlflow-sagemaker-ops-churn.*via=cloudformation"
    ):
        sagemaker.update("churn", models["v2"], ROLE)  # the API would change the stack's resources behind it

    caplog.clear()
    sagemaker.update("churn", models["v1"], VIA)
    assert "no change (the change set was empty)" in caplog.text

    planned = sagemaker.update("churn", models["v2"], {**VIA, "dry_run": True})
    kinds = {(c["action"], c["resource"]) for c in planned["changes"]}
    assert {("replace", "AWS::SageMaker::Model"), ("create", "S3 archive")} <= kinds, planned["plan"]
    assert any("PrimaryContainer changes" in why for c in planned["changes"] for why in c["reasons"])
    assert "a change set was made and deleted again" in planned["wrote"]
    sagemaker.update("churn", models["v2"], VIA)
    assert stack_status(aws) == "UPDATE_COMPLETE" and serving(aws) == ("InService", models["v2"])
    assert len(aws("sagemaker").list_models()["Models"]) == 1  # the replaced model went after the update
    assert len(aws("sagemaker").list_endpoint_configs()["EndpointConfigs"]) == 1

    # An alarm during the canary's bake: SageMaker rolls the endpoint back, and the stack with it.
    tripper = alarm_while_baking(aws, "churn", "churn-5xx")
    tripper.start()
    guarded = {**VIA, "strategy": "canary", "bake_seconds": 900, "alarms": "churn-5xx", "instance_count": 2}
    with pytest.raises(AwsCallFailed) as failed:
        sagemaker.update("churn", models["v1"], guarded)
    tripper.join()
    assert failed.value.fields["code"] == "RolledBack"
    assert "UPDATE_ROLLBACK_COMPLETE" in str(failed.value) and "churn-5xx" in str(failed.value)
    assert stack_status(aws) == "UPDATE_ROLLBACK_COMPLETE" and serving(aws) == ("InService", models["v2"])
    assert len(aws("sagemaker").list_models()["Models"]) == 1  # what the failed update made is gone
    assert len(aws("sagemaker").list_endpoint_configs()["EndpointConfigs"]) == 1

    sagemaker.delete("churn", None)  # the endpoint's CloudFormation tags say a stack owns it
    assert aws("sagemaker").list_endpoints()["Endpoints"] == []
    objects = aws("s3").list_objects_v2(Bucket="mlflow-sagemaker-ops-123456789012-us-east-1").get("Contents", [])
    assert [o["Key"] for o in objects if "/_stacks/" in o["Key"]] == []  # the stack's archives went with it
    assert not [
        s for s in aws("cloudformation").list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
    ]


def test_an_endpoint_no_stack_owns_is_not_adopted(aws, models):
    sagemaker = target("sagemaker")
    sagemaker.create("churn", models["v1"], ROLE)
    with pytest.raises(OwnedElsewhere, match="belongs to no stack.*resource import"):
        sagemaker.update("churn", models["v2"], VIA)
    assert serving(aws) == ("InService", models["v1"])
    sagemaker.delete("churn", VIA)  # no stack: the endpoint goes through the API, not a no-op
    assert aws("sagemaker").list_endpoints()["Endpoints"] == []


def test_a_stack_owns_an_ecs_service_through_create_update_and_delete(aws, models):
    from tests.iac.test_export import network

    ecs_target = target("ecs")
    config = {**network(aws), "via": "cloudformation"}
    ecs_target.create("churn", models["v1"], config)
    stack = "mlflow-sagemaker-ops-ecs-models-churn"
    assert aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    ecs = aws("ecs")

    def running() -> tuple[str, dict]:
        service = ecs.describe_services(cluster="models", services=["churn"], include=["TAGS"])["services"][0]
        return service["taskDefinition"], {t["key"]: t["value"] for t in service.get("tags") or []}

    first, tags = running()
    assert tags["mlflow-sagemaker-ops:model-uri"] == models["v1"] and tags["aws:cloudformation:stack-name"] == stack
    with pytest.raises(OwnedElsewhere, match="belongs to CloudFormation stack mlflow-sagemaker-ops-ecs-models-churn"):
        ecs_target.update("churn", models["v2"], {})

    # An update gives the model only: every setting is carried over from the live service.
    ecs_target.update("churn", models["v2"], {"via": "cloudformation"})
    second, tags = running()
    assert second != first and tags["mlflow-sagemaker-ops:model-uri"] == models["v2"]
    assert ecs.list_task_definitions(familyPrefix="churn", status="ACTIVE")["taskDefinitionArns"] == [second]
    assert aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"

    ecs_target.delete("churn", None)  # CloudFormation's tags say a stack owns it
    assert [
        s for s in ecs.describe_services(cluster="models", services=["churn"])["services"] if s["status"] == "ACTIVE"
    ] == []
    assert ecs.list_task_definitions(familyPrefix="churn", status="ACTIVE")["taskDefinitionArns"] == []


def test_a_create_stack_that_fails_rolls_back_and_leaves_nothing(aws, models):
    """CreateStack (not a change set) of a template whose endpoint fails: ROLLBACK_COMPLETE with
    the failed resource's reason, as on AWS, and nothing of it left."""
    template = target("sagemaker").export(
        "doomed", models["v1"], {**ROLE, "image_url": "123456789012.dkr.ecr.us-east-1.amazonaws.com/missing:1"}
    )
    import yaml

    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName="doomed", TemplateBody=yaml.safe_dump(template))
    stack = cloudformation.describe_stacks(StackName="doomed")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cloudformation.describe_stack_events(StackName="doomed")["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and "Please make sure all images" in failed[0]["ResourceStatusReason"], failed
    sm = aws("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []


def test_a_stack_the_suite_did_not_make_is_left_to_its_own_tools(aws, models):
    """An endpoint that another stack owns (a CDK app's, say) is neither deployed to nor deleted
    behind that stack's back, whatever via says; and delete refuses dry_run."""
    import yaml

    template = target("sagemaker").export("ext", models["v1"], ROLE)
    aws("cloudformation").create_stack(StackName="team-churn", TemplateBody=yaml.safe_dump(template))
    sagemaker = target("sagemaker")
    for config in (ROLE, VIA):
        with pytest.raises(OwnedElsewhere, match="stack team-churn, which this suite did not make"):
            sagemaker.update("ext", models["v2"], config)
    with pytest.raises(OwnedElsewhere, match="team-churn"):
        sagemaker.delete("ext", None)
    with pytest.raises(InvalidValue, match="delete has no plan"):
        sagemaker.delete("ext", {"dry_run": True})
    assert serving_of(aws, "ext") == ("InService", models["v1"])
    assert (
        aws("cloudformation").describe_stacks(StackName="team-churn")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    )


def serving_of(aws, name: str) -> tuple[str, str]:
    sm = aws("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=name)
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    return endpoint["EndpointStatus"], tags["mlflow-sagemaker-ops:model-uri"]
