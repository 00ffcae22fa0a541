"""Batch transform against the sandbox, whose jobs really run through the serving runtime: each
format, split and batch strategy gives the model's own predictions row for row and in order;
filters and joins; a failing record fails the job with its reason and log lines; a second job
(and a job after a deployment) reuses the model without an upload; a bad config makes no AWS
call; the ``batch-transform`` command and the ``batch_score`` entry point record the job in
MLflow and in lineage."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from mlflow_plugins.aws import AwsClients
from mlflow_plugins.deploy.batch import BatchTransform, parse
from mlflow_plugins.errors import JobFailed, OpsError
from mlflow_plugins.sandbox import EXECUTION_ROLE_ARN
from tests.contract.conftest import sandbox_calls
from tests.deploy.conftest import mlflow_predictions
from tests.serving.conftest import delivery_frame

BUCKET = "batch-data"
COLUMNS = ["distance_km", "stops", "weather"]


@pytest.fixture
def clients(aws):
    """The product's clients (an AwsClients) on the sandbox, whose data bucket exists."""
    import boto3

    aws("s3").create_bucket(Bucket=BUCKET)
    session = boto3.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1")
    return AwsClients(session)


def rows(n: int, seed: int) -> pd.DataFrame:
    frame, _ = delivery_frame(n=n, seed=seed)
    return frame[COLUMNS].reset_index(drop=True)


def put(aws, key: str, body: bytes) -> str:
    aws("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def read(aws, uri: str) -> bytes:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def csv_lines(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, header=False).encode()


def jsonl(frame: pd.DataFrame) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")).encode()


def run(clients, model: str, prefix: str, **config: Any):
    config.setdefault("execution_role_arn", EXECUTION_ROLE_ARN)
    return BatchTransform(clients).run(
        model,
        {"s3_input_uri": f"s3://{BUCKET}/{prefix}/in/", "s3_output_path": f"s3://{BUCKET}/{prefix}/out/", **config},
    )


def answers_of(body: bytes, accept: str) -> list:
    """The predictions in an output object, whatever its format."""
    if accept == "text/csv":
        return [int(line) for line in body.decode().splitlines()]
    found: list = []
    text, position, decoder = body.decode(), 0, json.JSONDecoder()
    while position < len(text):  # JSON values one a line, or concatenated (AssembleWith None)
        if text[position].isspace():
            position += 1
            continue
        value, position = decoder.raw_decode(text, position)
        found.extend(value["predictions"] if isinstance(value, dict) else [value])
    return found


# ---- formats, splits and strategies --------------------------------------------------------
def json_lines_of_bodies(frame: pd.DataFrame) -> bytes:
    """One JSON request body a line, five rows each (``application/json`` split by line)."""
    bodies = [frame.iloc[i : i + 5].to_dict(orient="tight") for i in range(0, len(frame), 5)]
    return "".join(
        json.dumps({"dataframe_split": {"columns": b["columns"], "data": b["data"]}}) + "\n" for b in bodies
    ).encode()


def json_body(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()


# name: (content type, split, strategy, accept, assemble, encode, extra config). Every format goes
# through every split and strategy AWS allows together (MultiRecord needs a split), but for
# application/json split by line with MultiRecord: several JSON documents in one request are JSON
# Lines, which the config refuses (test_a_bad_config_names_the_key_and_makes_no_aws_call).
CASES = {
    "csv-line-multi": ("text/csv", "Line", "MultiRecord", "text/csv", "Line", csv_lines, {}),
    "csv-line-single": ("text/csv", "Line", "SingleRecord", "application/jsonlines", "Line", csv_lines, {}),
    "csv-whole-single": ("text/csv", "None", "SingleRecord", "text/csv", "None", csv_lines, {}),
    "jsonlines-line-multi": (
        "application/jsonlines",
        "Line",
        "MultiRecord",
        "application/json",
        "Line",
        jsonl,
        {"max_concurrent_transforms": 2},
    ),
    "jsonlines-line-single": ("application/jsonlines", "Line", "SingleRecord", "text/csv", "Line", jsonl, {}),
    "jsonlines-whole-single": (
        "application/jsonlines",
        "None",
        "SingleRecord",
        "application/jsonlines",
        "None",
        jsonl,
        {},
    ),
    "jsonlines-line-single-concatenated": (
        "application/jsonlines",
        "Line",
        "SingleRecord",
        "application/json",
        "None",
        jsonl,
        {},
    ),
    "json-line-single": (
        "application/json",
        "Line",
        "SingleRecord",
        "application/json",
        "Line",
        json_lines_of_bodies,
        {},
    ),
    "json-whole-single": ("application/json", "None", "SingleRecord", "application/json", "None", json_body, {}),
}


def test_each_format_split_and_strategy_answers_the_models_own_predictions_in_order(aws, clients, models):
    """All the cases' jobs run at once (as jobs do on AWS), then each output is checked."""
    parts = [rows(25, seed=11), rows(15, seed=12)]
    started = {}
    for case, (content_type, split, strategy, accept, assemble, encode, extra) in CASES.items():
        for number, part in enumerate(parts):
            put(aws, f"{case}/in/part-{number}", encode(part))
        started[case] = run(
            clients,
            models["v1"],
            case,
            content_type=content_type,
            split_type=split,
            batch_strategy=strategy,
            accept=accept,
            assemble_with=assemble,
            synchronous=False,
            **extra,
        )
    expected = [mlflow_predictions(models["v1"], part) for part in parts]
    for case, job in started.items():
        aws.wait("transform_job_completed_or_stopped", TransformJobName=job.job_name)
        _, split, _, accept, assemble, _, _ = CASES[case]
        for number, answers in enumerate(expected):
            body = read(aws, f"s3://{BUCKET}/{case}/out/part-{number}.out")
            if assemble == "None" and accept == "application/json":  # the answers as sent, no separator added
                assert b"\n" not in body and body.count(b'{"predictions"') == (len(answers) if split == "Line" else 1)
            assert answers_of(body, accept) == answers, case


def test_two_instances_share_the_objects_and_a_manifest_and_gzip_are_read(aws, clients, models, sandbox):
    sandbox.control.hosting(instance_cap=2)
    parts = [rows(10, seed=20 + i) for i in range(4)]
    for number, part in enumerate(parts):
        put(aws, f"manifest/data/p{number}.csv.gz", gzip.compress(csv_lines(part)))
    manifest = [{"prefix": f"s3://{BUCKET}/manifest/data/"}, *[f"p{n}.csv.gz" for n in range(4)]]
    manifest_uri = put(aws, "manifest/in/list.manifest", json.dumps(manifest).encode())
    result = run(
        clients,
        models["v1"],
        "manifest",
        s3_input_uri=manifest_uri,
        s3_input_data_type="ManifestFile",
        compression_type="Gzip",
        instance_count=2,
    )
    assert result.instance_count == 2 and result.instance_hours is not None
    for number, part in enumerate(parts):
        body = read(aws, f"s3://{BUCKET}/manifest/out/p{number}.csv.gz.out")
        assert answers_of(body, "text/csv") == mlflow_predictions(models["v1"], part)
    logs = aws("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix=result.job_name
    )
    shares = []
    for stream in logs["logStreams"]:
        if stream["logStreamName"].endswith("/data-log"):
            events = aws("logs").get_log_events(
                logGroupName="/aws/sagemaker/TransformJobs", logStreamName=stream["logStreamName"]
            )["events"]
            shares.append({e["message"].split(":")[1].rsplit("/", 1)[-1] for e in events})
    assert len(shares) == 2 and not shares[0] & shares[1]  # each instance had objects of its own
    assert shares[0] | shares[1] == {f"p{n}.csv.gz" for n in range(4)}


# ---- filters and join ------------------------------------------------------------------------
def test_an_input_filter_drops_the_id_and_the_join_writes_it_beside_the_answer(aws, clients, models):
    frame = rows(20, seed=30)
    ids = [f"order-{i}" for i in range(len(frame))]
    put(aws, "join-csv/in/orders.csv", csv_lines(frame.assign(order=ids)[["order", *COLUMNS]]))
    result = run(
        clients, models["v1"], "join-csv", input_filter="$[1:]", join_resource="Input", output_filter="$[0,-1]"
    )
    lines = read(aws, result.outputs[0]).decode().splitlines()
    expected = mlflow_predictions(models["v1"], frame)
    assert lines == [f"{order},{answer}" for order, answer in zip(ids, expected, strict=True)]


def test_json_records_are_filtered_joined_under_sagemaker_output_and_filtered_again(aws, clients, models):
    frame = rows(12, seed=31)
    records = [{"id": i, "features": r} for i, r in enumerate(frame.to_dict(orient="records"))]
    put(aws, "join-json/in/orders.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode())
    result = run(
        clients,
        models["v1"],
        "join-json",
        content_type="application/jsonlines",
        accept="application/jsonlines",
        input_filter="$.features",
        join_resource="Input",
        output_filter="$['id','SageMakerOutput']",
    )
    written = [json.loads(line) for line in read(aws, result.outputs[0]).decode().splitlines()]
    expected = mlflow_predictions(models["v1"], frame)
    assert written == [{"id": i, "SageMakerOutput": answer} for i, answer in enumerate(expected)]


# ---- failures --------------------------------------------------------------------------------
def test_a_failing_record_fails_the_job_with_its_reason_and_log_lines(aws, clients, models):
    good = rows(5, seed=40)
    put(aws, "bad/in/orders.csv", csv_lines(good) + b"far,away,snow\n")
    put(aws, "bad/in/other.csv", csv_lines(good))  # after the failing object: still processed, as on AWS
    with pytest.raises(JobFailed) as caught:
        run(clients, models["v1"], "bad", batch_strategy="SingleRecord")
    message = str(caught.value)
    assert "ended Failed" in message and "Bad HTTP status received from algorithm: 400" in message
    assert f"log: s3://{BUCKET}/bad/in/orders.csv: ClientError" in message  # the data log names the object
    job = aws("sagemaker").describe_transform_job(TransformJobName=message.split("'")[1])
    assert job["TransformJobStatus"] == "Failed" and "400" in job["FailureReason"]
    listed = aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="bad/out/")["Contents"]
    assert [o["Key"] for o in listed] == ["bad/out/other.csv.out"]  # the failed object has no output
    assert answers_of(read(aws, f"s3://{BUCKET}/bad/out/other.csv.out"), "text/csv") == mlflow_predictions(
        models["v1"], good
    )


def test_a_failed_start_leaves_no_model_and_no_archive(aws, clients, models, sandbox):
    put(aws, "nostart/in/a.csv", csv_lines(rows(3, seed=41)))
    sandbox.control.add_fault("CreateTransformJob", kind="error", code="ResourceLimitExceeded")
    with pytest.raises(OpsError, match="ResourceLimitExceeded.*Nothing was left behind"):
        run(clients, models["v1"], "nostart")
    assert aws("sagemaker").list_models()["Models"] == []
    archives = aws("s3").list_objects_v2(Bucket="mlflow-sagemaker-ops-123456789012-us-east-1").get("Contents", [])
    assert archives == []


def test_a_record_over_the_payload_limit_fails_the_job(aws, clients, models):
    put(aws, "big/in/wide.csv", b"1.0," * (1024 * 1024 // 4 + 10) + b"snow\n")
    with pytest.raises(JobFailed, match="Too much data for max payload size.*MaxPayloadInMB=1"):
        run(clients, models["v1"], "big", max_payload_mb=1)


def test_an_asynchronous_job_returns_in_progress_and_stop_ends_it_stopped(aws, clients, models):
    put(aws, "stop/in/a.csv", csv_lines(rows(5, seed=45)))
    started = run(clients, models["v1"], "stop", synchronous=False)
    assert started.status == "InProgress" and started.outputs == ()
    sagemaker = aws("sagemaker")
    sagemaker.stop_transform_job(TransformJobName=started.job_name)
    assert sagemaker.describe_transform_job(TransformJobName=started.job_name)["TransformJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    aws.wait("transform_job_completed_or_stopped", TransformJobName=started.job_name)
    assert sagemaker.describe_transform_job(TransformJobName=started.job_name)["TransformJobStatus"] == "Stopped"


# ---- reuse -----------------------------------------------------------------------------------
def test_jobs_reuse_a_deployments_model_and_their_own_without_an_upload(aws, clients, models):
    from mlflow_plugins.deploy import make_target

    target = make_target("sagemaker", clients)
    target.create("batch-reuse", models["v2"], target.parse({"execution_role_arn": EXECUTION_ROLE_ARN}))
    endpoint_config = aws("sagemaker").describe_endpoint(EndpointName="batch-reuse")["EndpointConfigName"]
    deployed_model = aws("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint_config)[
        "ProductionVariants"
    ][0]["ModelName"]
    frame = rows(8, seed=50)
    put(aws, "reuse/in/a.csv", csv_lines(frame))
    first = run(clients, models["v2"], "reuse", execution_role_arn=None)  # no role needed: nothing is made
    assert (first.model_name, first.model_reused, first.bytes_uploaded) == (deployed_model, True, 0)
    second = run(clients, models["v1"], "reuse2", s3_input_uri=f"s3://{BUCKET}/reuse/in/")
    third = run(clients, models["v1"], "reuse3", s3_input_uri=f"s3://{BUCKET}/reuse/in/")
    assert not second.model_reused and second.bytes_uploaded > 0
    assert (third.model_name, third.model_reused, third.bytes_uploaded) == (second.model_name, True, 0)
    assert answers_of(read(aws, third.outputs[0]), "text/csv") == mlflow_predictions(models["v1"], frame)


def test_archive_false_deletes_what_the_job_made_and_a_used_name_is_refused(aws, clients, models):
    put(aws, "once/in/a.csv", csv_lines(rows(4, seed=60)))
    name = f"once-{uuid.uuid4().hex[:8]}"
    result = run(clients, models["v1"], "once", job_name=name, archive=False)
    assert result.status == "Completed" and not result.model_reused
    assert aws("sagemaker").list_models()["Models"] == []
    archives = aws("s3").list_objects_v2(Bucket="mlflow-sagemaker-ops-123456789012-us-east-1").get("Contents", [])
    assert archives == []  # the job's own archive went with its model
    before = sandbox_calls(aws.sandbox)
    with pytest.raises(OpsError, match=f"transform job '{name}' already exists.*another --job-name"):
        run(clients, models["v1"], "once", job_name=name)
    calls = sandbox_calls(aws.sandbox)[len(before) :]
    assert all(not call.endswith((":CreateModel", ":CreateTransformJob", ":PutObject")) for call in calls)


# ---- configuration ---------------------------------------------------------------------------
BAD = {
    "unknown key": ({"max_payload": 1}, "Did you mean 'max_payload_mb'"),
    "strategy without a split": (
        {"split_type": "None", "batch_strategy": "MultiRecord"},
        "batch_strategy='MultiRecord' is not valid",
    ),
    "join without a split": (
        {"split_type": "None", "batch_strategy": "SingleRecord", "join_resource": "Input"},
        "split_type",
    ),
    "payload times concurrency": ({"max_payload_mb": 60, "max_concurrent_transforms": 2}, "up to 100"),
    "binary split": ({"split_type": "RecordIO"}, "Allowed: Line, None"),
    "instance type": ({"instance_type": "ml.m5.huge"}, "TransformInstanceType"),
    "environment": ({"env": json.dumps({f"K{i}": "v" for i in range(17)})}, "TransformEnvironmentMap"),
    "output among inputs": ({"s3_output_path": "s3://batch-data/x/in-scores/"}, "starts with the input prefix"),
    "json documents in one request": ({"content_type": "application/json"}, "application/jsonlines"),
    "deleting after an asynchronous start": ({"archive": "false", "synchronous": "false"}, "Drop --async"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_config_names_the_key_and_makes_no_aws_call(case, aws, clients, models):
    config, expected = BAD[case]
    before = sandbox_calls(aws.sandbox)
    with pytest.raises(OpsError, match="Allowed") as caught:
        BatchTransform(clients).run(
            models["v1"],
            {"s3_input_uri": "s3://batch-data/x/in/", "s3_output_path": "s3://batch-data/x/out/", **config},
        )
    assert expected in str(caught.value)
    assert sandbox_calls(aws.sandbox) == before


def test_the_config_keeps_mlflows_parameter_names():
    import inspect

    import mlflow.sagemaker

    builtin = set(inspect.signature(mlflow.sagemaker.deploy_transform_job).parameters) - {"model_uri"}
    from mlflow_plugins.deploy.batch import KEYS

    assert builtin <= {key.name for key in KEYS}
    plain = {"s3_input_uri": "s3://a-b/in/", "s3_output_path": "s3://a-b/out/"}
    assert parse(plain).archive is True
    # MLflow's client sends no BatchStrategy: records split by line are batched, whole objects are not
    assert (parse(plain).batch_strategy, parse({**plain, "split_type": "None"}).batch_strategy) == (
        "MultiRecord",
        "SingleRecord",
    )


# ---- front doors: the command, the MLflow run, lineage ----------------------------------------
def test_the_command_runs_a_job_with_mlflows_option_names(aws, clients, models, tmp_path):
    from mlflow_plugins.cli import cli

    vpc = {"SecurityGroupIds": ["sg-0a1b2c3d"], "Subnets": ["subnet-0a1b2c3d"]}
    (tmp_path / "vpc.json").write_text(json.dumps(vpc))  # MLflow's -v takes a file

    frame = rows(6, seed=70)
    put(aws, "command/in/a.csv", csv_lines(frame))
    result = CliRunner().invoke(
        cli,
        [
            "batch-transform",
            "-m",
            models["v1"],
            "--input-data-type",
            "S3Prefix",
            "--input-uri",
            f"s3://{BUCKET}/command/in/",
            "-o",
            f"s3://{BUCKET}/command/out/",
            "--content-type",
            "text/csv",
            "-s",
            "Line",
            "-e",
            EXECUTION_ROLE_ARN,
            "-v",
            str(tmp_path / "vpc.json"),
            "-c",
            "1",
            "-C",
            "max_payload_mb=1",
            "--batch-strategy",
            "SingleRecord",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["status"] == "Completed" and answer["lineage"] == "not a registered model version"
    job = aws("sagemaker").describe_transform_job(TransformJobName=answer["job_name"])
    assert (job["BatchStrategy"], job["MaxPayloadInMB"]) == ("SingleRecord", 1)
    assert aws("sagemaker").describe_model(ModelName=job["ModelName"])["VpcConfig"] == vpc
    body = read(aws, answer["outputs"][0])
    assert answers_of(body, "text/csv") == mlflow_predictions(models["v1"], frame)
    refused = CliRunner().invoke(cli, ["batch-transform", "-m", models["v1"], "--input-uri", "s3://a-b/in/"])
    assert refused.exit_code == 1 and "s3_output_path is not set" in refused.output


def test_batch_score_through_mlflow_run_records_the_job_its_input_metrics_and_lineage(aws, clients, models, tracking):
    import mlflow

    from tests.project.test_mlflow_run import mlflow_run

    name = f"batch-{uuid.uuid4().hex[:6]}"
    with mlflow.start_run() as training:
        mlflow.log_artifacts(models["v1"], "model")
    mlflow.register_model(f"runs:/{training.info.run_id}/model", name)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
    frame = rows(30, seed=80)
    put(aws, "scored/in/a.csv", csv_lines(frame))
    experiment = f"batch-{uuid.uuid4().hex[:6]}"
    mlflow_run(
        tracking,
        "batch_score",
        experiment,
        model=f"models:/{name}@champion",
        input=f"s3://{BUCKET}/scored/in/",
        output=f"s3://{BUCKET}/scored/out/",
        config=json.dumps({"execution_role_arn": EXECUTION_ROLE_ARN, "instance_type": "ml.m5.large"}),
    )
    [run] = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["rows"] == 30 and run.data.metrics["output_objects"] == 1
    assert run.data.metrics["estimated_cost_usd"] == pytest.approx(run.data.metrics["instance_hours"] * 0.115)
    assert run.data.tags["model_version"] == "1" and run.data.tags["batch.lineage"] == "written"
    assert run.data.params["instance_type"] == "ml.m5.large"
    [dataset] = run.inputs.dataset_inputs
    assert json.loads(dataset.dataset.source)["uri"] == f"s3://{BUCKET}/scored/in/"
    job_arn = run.data.tags["batch.job_arn"]
    sagemaker = aws("sagemaker")
    [action] = sagemaker.list_actions(SourceUri=job_arn)["ActionSummaries"]
    edges = sagemaker.query_lineage(StartArns=[action["ActionArn"]], Direction="Both", IncludeEdges=True, MaxDepth=1)
    kinds = {(e["SourceArn"] == action["ActionArn"], e["AssociationType"]) for e in edges["Edges"]}
    assert kinds == {(False, "ContributedTo"), (True, "Produced")}
    # around the action: the model version, the input and the output
    assert sorted(v["Type"] for v in edges["Vertices"]) == ["DataSet", "DataSet", "Model"]
    output = f"s3://{BUCKET}/scored/out/a.csv.out"
    assert answers_of(read(aws, output), "text/csv") == mlflow_predictions(models["v1"], frame)
