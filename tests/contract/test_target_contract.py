"""The deployment-target contract (:mod:`mlflow_plugins.deploy.contract`), written once and run for
every target (SageMaker single-model, multi-model, ECS) through both front doors (the MLflow
deployment client and the registry hooks' target)."""

from __future__ import annotations

import json

import pytest

from mlflow_plugins.aws import session as aws_session
from mlflow_plugins.deploy.common import journal
from tests.contract.conftest import inventory, sandbox_calls
from tests.deploy.conftest import mlflow_predictions
from tests.serving.conftest import delivery_frame

UPDATE_FAULTS = {"sagemaker": "UpdateEndpoint", "ecs": "UpdateService"}  # the call after which an update is live
KILL_AT = {
    "sagemaker": ("CreateEndpoint", None),
    "ecs": ("CreateService", None),
    "sagemaker-mme": ("PutObject", "/_models/"),
}  # the deploy's last write: its pointer, for a model on an MME


def predicted(target, place, rows) -> list:
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
    return json.loads(target.invoke(place.name, body, "application/json", place.predict_options))["predictions"]


def test_create_predict_update_predict_delete(place, door, target, models, aws):
    """The lifecycle: create, then predict answers as the model itself; update to a new model,
    which then answers; delete, which leaves the account as it was before."""
    before = inventory(aws)
    door.deploy(models["v1"])
    live = target.observe(place.name, target.parse(place.config or None))
    assert live.serving, live
    rows = telling_rows(models)
    assert predicted(target, place, rows) == mlflow_predictions(models["v1"], rows)
    door.deploy(models["v2"])
    assert predicted(target, place, rows) == mlflow_predictions(models["v2"], rows)
    door.delete()
    after = inventory(aws)
    assert {key: value for key, value in after.items() if key != "objects"} == {
        key: value for key, value in before.items() if key != "objects"
    }
    assert set(after["objects"]) <= set(before["objects"])


def telling_rows(models):
    """Rows on which the two model versions disagree, and a few on which they agree."""
    rows, _ = delivery_frame(n=400, seed=12)
    first, second = mlflow_predictions(models["v1"], rows), mlflow_predictions(models["v2"], rows)
    differ = [i for i, (a, b) in enumerate(zip(first, second)) if a != b]
    assert differ, "the two model versions must tell apart"
    return rows.iloc[differ + [i for i in range(5) if i not in differ]].reset_index(drop=True)


def test_a_failing_update_leaves_the_old_model_serving_and_nothing_new(
    place, door, target, models, sandbox, aws, tmp_path
):
    door.deploy(models["v1"])
    before = inventory(aws)
    if place.kind in UPDATE_FAULTS:
        sandbox.control.add_fault(UPDATE_FAULTS[place.kind], kind="error", code="ValidationException", count=1)
        bad_model = models["v2"]
    else:  # an MME update writes only to S3: a model the image cannot serve fails it (the matrix faults S3 itself)
        bad_model = str(tmp_path / "no-pyfunc")
        (tmp_path / "no-pyfunc").mkdir()
        (tmp_path / "no-pyfunc" / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    with pytest.raises(Exception) as caught:
        door.deploy(bad_model)
    assert (
        "unchanged" in str(caught.value) or "not changed" in str(caught.value) or "python_function" in str(caught.value)
    )
    assert inventory(aws) == before
    rows = telling_rows(models)
    assert predicted(target, place, rows) == mlflow_predictions(models["v1"], rows)


def test_a_bad_config_makes_no_aws_call(place, door, models, sandbox):
    before = sandbox_calls(sandbox)
    with pytest.raises(Exception) as caught:
        door.deploy(models["v1"], config=place.bad_config)
    assert "Allowed" in str(caught.value) or "allowed" in str(caught.value)
    assert sandbox_calls(sandbox) == before


class Killed(BaseException):
    """The process died here: no ``except Exception`` cleanup runs after it."""


def test_a_deploy_killed_midway_is_cleaned_by_the_next_observe_and_clean(place, door, target, models, aws):
    before = inventory(aws)
    operation, key_part = KILL_AT[place.kind]
    made = aws_session.AwsClients.__call__

    def with_kill_switch(self, service):
        client = made(self, service)
        if not getattr(client, "_kill_switch", False):

            def kill(event_name, params, **_):
                if event_name.endswith(f".{operation}") and (key_part is None or key_part in params.get("Key", "")):
                    raise Killed(operation)

            client.meta.events.register("before-parameter-build", kill)  # its params are the API call's
            client._kill_switch = True
        return client

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aws_session.AwsClients, "__call__", with_kill_switch)
        patch.setattr(journal.Journal, "undo", lambda self: [])  # a dead process undoes nothing
        with pytest.raises(Killed):
            door.deploy(models["v1"])
    assert inventory(aws) != before  # the dead deploy left something
    config = target.parse(place.config or None)
    live = target.observe(place.name, config)
    assert not live.exists
    target.clean(place.name, live, config)
    after = inventory(aws)
    assert {k: v for k, v in after.items() if k != "objects"} == {k: v for k, v in before.items() if k != "objects"}
    assert [o for o in after["objects"] if "model.tar.gz" in o] == [o for o in before["objects"] if "model.tar.gz" in o]
