"""A stage change deploys through CloudFormation (a rule with ``via: cloudformation``): the
controller's deploys are change sets on the endpoint's stack, and an alarm during an update
rolls the stack back, shown as ROLLED_BACK on the model version with CloudFormation's reason."""

from __future__ import annotations

from tests.deploy.conftest import alarm_while_baking
from tests.hooks.conftest import eventually, policy_text

STACK = "mlflow-sagemaker-ops-churn-stack"
GUARDED = (
    "      via: cloudformation\n      strategy: canary\n      bake_seconds: 900\n"
    "      alarms: churn-stack-5xx\n      instance_count: 2\n"
)


def test_a_stage_change_deploys_through_a_stack_and_an_alarm_rolls_it_back(registry, controllers, aws):
    tripper = alarm_while_baking(aws, "churn-stack", "churn-stack-5xx")  # the alarm exists from here
    model = registry.new_model(versions=2)
    controller = controllers(policy_text("churn-stack", model, extra=GUARDED), registry)

    registry.transition(model, "1", "Production")
    eventually(
        lambda: registry.tags(model, "1", "churn-stack").get("status") == "IN_SERVICE",
        what="version 1 IN_SERVICE",
        explain=controller.output,
    )
    stack = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["RegisteredModel"] == model and outputs["ModelVersion"] == "1"

    tripper.start()
    registry.transition(model, "2", "Production")
    eventually(
        lambda: registry.tags(model, "2", "churn-stack").get("status") == "ROLLED_BACK",
        what="version 2 ROLLED_BACK",
        explain=controller.output,
    )
    tripper.join()
    message = registry.tags(model, "2", "churn-stack")["message"]
    assert "UPDATE_ROLLBACK_COMPLETE" in message and "churn-stack-5xx" in message, message
    assert aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == (
        "UPDATE_ROLLBACK_COMPLETE"
    )
    endpoint = aws("sagemaker").describe_endpoint(EndpointName="churn-stack")
    tags = {t["Key"]: t["Value"] for t in aws("sagemaker").list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert endpoint["EndpointStatus"] == "InService" and tags["mlflow-sagemaker-ops:model-version"] == "1"
