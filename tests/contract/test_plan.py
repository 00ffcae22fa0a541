"""The plan (``dry_run=true``, :meth:`Target.plan`), written once for every target and both front
doors: a dry run writes nothing; an unchanged redeploy plans no change and then writes nothing
(the sandbox's journal of AWS calls); and each kind of change plans exactly what the run then
writes, resource by resource."""

from __future__ import annotations

from tests.contract.conftest import MlflowDoor, inventory, sandbox_calls

READS = ("Describe", "List", "Get", "Head")

# What each planned change may write, by (action, resource): the first operation must appear.
WRITES = {
    ("create", "S3 archive"): ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"),
    ("delete", "S3 archive"): ("DeleteObject", "DeleteObjects"),
    ("replace", "SageMaker model"): ("CreateModel", "DeleteModel", "AddTags", "DeleteObject", "DeleteObjects"),
    ("replace", "endpoint config"): ("CreateEndpointConfig", "DeleteEndpointConfig", "AddTags", "DeleteTags"),
    ("update", "SageMaker endpoint"): ("UpdateEndpoint", "AddTags", "DeleteTags"),
    ("update", "tags"): ("AddTags", "DeleteTags", "TagResource", "UntagResource"),
    ("create", "autoscaling"): ("RegisterScalableTarget", "PutScalingPolicy", "PutScheduledAction"),
    ("update", "autoscaling"): (
        "RegisterScalableTarget",
        "PutScalingPolicy",
        "PutScheduledAction",
        "DeleteScheduledAction",
    ),
    ("replace", "ECS task definition"): (
        "RegisterTaskDefinition",
        "DeregisterTaskDefinition",
        "DeleteTaskDefinitions",
        "DeleteObject",
        "DeleteObjects",
        "TagResource",
    ),
    ("update", "ECS service"): ("UpdateService", "TagResource"),
    ("update", "model pointer"): ("PutObject",),
    ("delete", "endpoint config"): ("DeleteEndpointConfig",),
    ("delete", "SageMaker model"): ("DeleteModel",),
    ("delete", "ECS task definition"): ("DeregisterTaskDefinition", "DeleteTaskDefinitions"),
    ("create", "model pointer"): ("PutObject",),
}

# The kinds of change each target plans, as the config (and model) of a second deploy.
SCALING = {"min_capacity": 1, "max_capacity": 3, "target": 50}
NIGHTLY = {**SCALING, "schedule": [{"name": "night", "cron": "cron(0 20 * * ? *)", "max_capacity": 1}]}
CHANGES = {  # applied in this order, each on top of the one before
    "sagemaker": {
        "instance count": ("v1", {"instance_count": 2}),
        "tags": ("v1", {"tags": {"team": "ml"}}),
        "tags removed": ("v1", {"tags": {"owner": "risk"}}),
        "autoscaling": ("v1", {"autoscaling": NIGHTLY}),
        "schedule removed": ("v1", {"autoscaling": SCALING}),
        "new model": ("v2", {}),
    },
    "ecs": {
        "desired count": ("v1", {"desired_count": 2}),
        "tags": ("v1", {"tags": {"team": "ml"}}),
        "tags removed": ("v1", {"tags": {"owner": "risk"}}),
        "autoscaling": ("v1", {"autoscaling": {**SCALING, "metric": "ECSServiceAverageCPUUtilization"}}),
        "new model": ("v2", {}),
    },
    "sagemaker-mme": {"new model": ("v2", {})},
}
EXPECTED = {  # (action, resource) pairs each change must plan
    "new model": {
        "sagemaker": {("replace", "SageMaker model"), ("replace", "endpoint config"), ("update", "SageMaker endpoint")},
        "ecs": {("replace", "ECS task definition"), ("update", "ECS service")},
        "sagemaker-mme": {("create", "S3 archive"), ("update", "model pointer"), ("delete", "S3 archive")},
    },
    "instance count": {"sagemaker": {("replace", "endpoint config"), ("update", "SageMaker endpoint")}},
    "desired count": {"ecs": {("update", "ECS service")}},
    "tags": {"sagemaker": {("update", "tags")}, "ecs": {("update", "tags")}},
    "tags removed": {"sagemaker": {("update", "tags")}, "ecs": {("update", "tags")}},
    "schedule removed": {"sagemaker": {("update", "autoscaling")}},
    "autoscaling": {"sagemaker": {("create", "autoscaling")}, "ecs": {("create", "autoscaling")}},
}


def writes_since(sandbox, before: list[str]) -> list[str]:
    calls = sandbox_calls(sandbox)
    assert calls[: len(before)] == before
    return [c.split(":", 1)[1] for c in calls[len(before) :] if not c.split(":", 1)[1].startswith(READS)]


def test_a_dry_run_plans_the_create_and_writes_nothing(place, door, target, models, sandbox, aws):
    before_inventory, before = inventory(aws), sandbox_calls(sandbox)
    planned = target.create(place.name, models["v1"], {**place.config, "dry_run": True})
    if isinstance(door, MlflowDoor):  # the hooks' dry run is `hooks plan` (tests/hooks/test_plan.py)
        door.deploy(models["v1"], config={**place.config, "dry_run": True})
    assert writes_since(sandbox, before) == []
    assert inventory(aws) == before_inventory
    assert planned["dry_run"] is True and planned["no_change"] is False
    assert {c["action"] for c in planned["changes"]} == {"create"}, planned["plan"]


# Settings a hooks rule repeats at every deploy, whose writes must not repeat
REPEATED = {
    "sagemaker": {"autoscaling": NIGHTLY, "auto_alarms": True, "tags": {"team": "ml"}},
    "ecs": {"autoscaling": {**SCALING, "metric": "ECSServiceAverageCPUUtilization"}, "tags": {"team": "ml"}},
    "sagemaker-mme": {},
}


def test_an_unchanged_redeploy_plans_no_change_and_then_writes_nothing(place, door, target, models, sandbox):
    config = {**place.config, **REPEATED[place.kind]}
    door.deploy(models["v1"], config=config)
    door.created = True  # the MLflow door updates from now on
    plan = target.plan(place.name, models["v1"], target.parse(config or None))
    assert plan.empty, plan.text()
    assert "no change" in plan.text()
    before = sandbox_calls(sandbox)
    door.deploy(models["v1"], config=config)
    assert writes_since(sandbox, before) == []


def test_each_kind_of_change_plans_what_the_run_then_writes(place, door, target, models, sandbox):
    """Each of the target's kinds of change, one after the other on the same deployment: the plan
    names the resources, with reasons; the run writes only what the plan said, and all of it;
    after it, the same deploy plans no change."""
    door.deploy(models["v1"])
    door.created = True
    for change, (version, extra) in CHANGES[place.kind].items():
        config = {**place.config, **extra}
        plan = target.plan(place.name, models[version], target.parse(config or None))
        planned = {(c.action, c.resource) for c in plan.changes}
        assert EXPECTED[change][place.kind] <= planned, f"{change}:\n{plan.text()}"
        assert all(c.reasons for c in plan.changes), plan.text()
        before = sandbox_calls(sandbox)
        door.deploy(models[version], config=config)
        written = writes_since(sandbox, before)
        allowed = {op for key in planned for op in WRITES[key]}
        assert set(written) <= allowed, (
            f"{change}: the run wrote {sorted(set(written) - allowed)}, unplanned:\n{plan.text()}"
        )
        for key in planned:  # each planned change was carried out
            assert set(WRITES[key]) & set(written), f"{change}: {key} was planned, not written: {written}"
        again = target.plan(place.name, models[version], target.parse(config or None))
        assert again.empty, f"{change}: after the run\n{again.text()}"
