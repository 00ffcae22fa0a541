"""ML Lineage Tracking in the sandbox, through plain boto3 (paginators included)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def _graph(sm):
    """dataset -> training -> model -> deployment -> endpoint context; parent model -> model."""
    dataset = sm.create_artifact(
        Source={"SourceUri": "s3://data/train.csv"}, ArtifactType="DataSet", Properties={"digest": "abc"}
    )["ArtifactArn"]
    parent = sm.create_artifact(ArtifactName="churn-v1", Source={"SourceUri": "models:/churn/1"}, ArtifactType="Model")[
        "ArtifactArn"
    ]
    model = sm.create_artifact(ArtifactName="churn-v2", Source={"SourceUri": "models:/churn/2"}, ArtifactType="Model")[
        "ArtifactArn"
    ]
    training = sm.create_action(
        ActionName="run-123",
        Source={"SourceUri": "http://mlflow/#/runs/123"},
        ActionType="ModelTraining",
        Status="Completed",
    )["ActionArn"]
    deploy = sm.create_action(ActionName="deploy-1", Source={"SourceUri": "deploy-1"}, ActionType="ModelDeployment")[
        "ActionArn"
    ]
    endpoint = sm.create_context(
        ContextName="ep-context", Source={"SourceUri": "arn:endpoint/ep"}, ContextType="Endpoint"
    )["ContextArn"]
    for src, dst, kind in [
        (dataset, training, "ContributedTo"),
        (training, model, "Produced"),
        (parent, model, "DerivedFrom"),
        (model, deploy, "ContributedTo"),
        (deploy, endpoint, "AssociatedWith"),
    ]:
        sm.add_association(SourceArn=src, DestinationArn=dst, AssociationType=kind)
    return {
        "dataset": dataset,
        "parent": parent,
        "model": model,
        "training": training,
        "deploy": deploy,
        "endpoint": endpoint,
    }


def test_lineage_graph_is_queried_upstream_and_downstream(aws):
    sm = aws("sagemaker")
    g = _graph(sm)
    up = sm.query_lineage(StartArns=[g["endpoint"]], Direction="Ascendants", IncludeEdges=True, MaxDepth=10)
    assert {v["Arn"] for v in up["Vertices"]} == {g["deploy"], g["model"], g["training"], g["parent"], g["dataset"]}
    assert {"SourceArn": g["dataset"], "DestinationArn": g["training"], "AssociationType": "ContributedTo"} in up[
        "Edges"
    ]
    assert len(up["Edges"]) == 5

    datasets = sm.query_lineage(
        StartArns=[g["endpoint"]], Direction="Ascendants", Filters={"Types": ["DataSet"], "LineageTypes": ["Artifact"]}
    )
    assert datasets["Vertices"] == [{"Arn": g["dataset"], "Type": "DataSet", "LineageType": "Artifact"}]
    assert datasets["Edges"] == []

    down = sm.query_lineage(StartArns=[g["dataset"]], Direction="Descendants")
    assert {v["Arn"] for v in down["Vertices"]} == {g["training"], g["model"], g["deploy"], g["endpoint"]}
    shallow = sm.query_lineage(StartArns=[g["dataset"]], Direction="Descendants", MaxDepth=2)
    assert {v["Arn"] for v in shallow["Vertices"]} == {g["training"], g["model"]}

    both = sm.query_lineage(StartArns=[g["model"]], Direction="Both", MaxDepth=1)
    assert {v["Arn"] for v in both["Vertices"]} == {g["training"], g["parent"], g["deploy"]}
    by_property = sm.query_lineage(
        StartArns=[g["model"]], Direction="Ascendants", Filters={"Properties": {"digest": "abc"}}
    )
    assert [v["Arn"] for v in by_property["Vertices"]] == [g["dataset"]]


def test_associations_list_filter_and_delete(aws):
    sm = aws("sagemaker")
    g = _graph(sm)
    into_model = sm.list_associations(DestinationArn=g["model"])["AssociationSummaries"]
    assert {(a["SourceArn"], a["AssociationType"]) for a in into_model} == {
        (g["training"], "Produced"),
        (g["parent"], "DerivedFrom"),
    }
    derived = sm.list_associations(AssociationType="DerivedFrom")["AssociationSummaries"]
    assert [(a["SourceName"], a["DestinationName"], a["SourceType"]) for a in derived] == [
        ("churn-v1", "churn-v2", "Model")
    ]
    # Adding an existing association changes nothing.
    sm.add_association(SourceArn=g["parent"], DestinationArn=g["model"], AssociationType="DerivedFrom")
    assert len(sm.list_associations(DestinationArn=g["model"])["AssociationSummaries"]) == 2

    sm.delete_association(SourceArn=g["parent"], DestinationArn=g["model"])
    assert len(sm.list_associations(DestinationArn=g["model"])["AssociationSummaries"]) == 1
    with pytest.raises(ClientError) as caught:
        sm.delete_association(SourceArn=g["parent"], DestinationArn=g["model"])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError, match="does not exist"):
        sm.add_association(SourceArn=g["parent"], DestinationArn=g["parent"][:-6] + "000000")


def test_entities_describe_update_delete(aws):
    sm = aws("sagemaker")
    g = _graph(sm)
    action = sm.describe_action(ActionName="run-123")
    assert (action["ActionArn"], action["Status"], action["ActionType"]) == (
        g["training"],
        "Completed",
        "ModelTraining",
    )
    sm.update_action(ActionName="run-123", Properties={"git": "abc123", "lr": "0.1"}, Status="Stopped")
    sm.update_action(ActionName="run-123", PropertiesToRemove=["lr"])
    action = sm.describe_action(ActionName="run-123")
    assert (action["Properties"], action["Status"]) == ({"git": "abc123"}, "Stopped")

    sm.update_artifact(ArtifactArn=g["model"], ArtifactName="renamed", Properties={"stage": "Production"})
    assert sm.describe_artifact(ArtifactArn=g["model"])["ArtifactName"] == "renamed"

    sm.delete_artifact(ArtifactArn=g["model"])
    with pytest.raises(ClientError, match="does not exist"):
        sm.describe_artifact(ArtifactArn=g["model"])
    assert sm.list_associations(SourceArn=g["training"])["AssociationSummaries"] == []
    sm.delete_artifact(Source={"SourceUri": "s3://data/train.csv"})
    assert sm.list_artifacts(ArtifactType="DataSet")["ArtifactSummaries"] == []
    sm.delete_context(ContextName="ep-context")
    with pytest.raises(ClientError):
        sm.describe_context(ContextName="ep-context")


def test_lineage_limits_and_duplicates_are_enforced(aws):
    sm = aws("sagemaker")
    sm.create_context(ContextName="c1", Source={"SourceUri": "x"}, ContextType="Endpoint")
    with pytest.raises(ClientError, match="already existing context"):
        sm.create_context(ContextName="c1", Source={"SourceUri": "y"}, ContextType="Endpoint")
    with pytest.raises(ClientError, match="less than or equal to 30"):
        sm.create_artifact(
            Source={"SourceUri": "x"}, ArtifactType="DataSet", Properties={f"k{i}": "v" for i in range(31)}
        )
    with pytest.raises(ClientError, match="less than or equal to 2048"):
        sm.create_artifact(Source={"SourceUri": "s3://" + "x" * 2100}, ArtifactType="DataSet")
    with pytest.raises(ClientError, match="regular expression pattern"):
        sm.create_action(ActionName="no spaces allowed", Source={"SourceUri": "x"}, ActionType="T")
    artifact = sm.create_artifact(
        Source={"SourceUri": "x"}, ArtifactType="DataSet", Properties={f"k{i}": "v" for i in range(30)}
    )["ArtifactArn"]
    with pytest.raises(ClientError, match="less than or equal to 30"):
        sm.update_artifact(ArtifactArn=artifact, Properties={"one-more": "v"})


def test_lists_paginate_and_filter_by_source(aws):
    sm = aws("sagemaker")
    for i in range(23):
        sm.create_artifact(Source={"SourceUri": f"s3://data/{i % 2}"}, ArtifactType="DataSet")
    first = sm.list_artifacts()
    assert len(first["ArtifactSummaries"]) == 10 and "NextToken" in first
    pages = list(sm.get_paginator("list_artifacts").paginate(PaginationConfig={"PageSize": 7}))
    assert [len(p["ArtifactSummaries"]) for p in pages] == [7, 7, 7, 2]
    assert len(sm.list_artifacts(SourceUri="s3://data/0", MaxResults=100)["ArtifactSummaries"]) == 12


def test_every_endpoint_gets_its_own_context(aws, hosting):
    sm = aws("sagemaker")
    hosting.config("v1", hosting.model("m1"))
    arn = hosting.endpoint("ep", "v1")["EndpointArn"]
    contexts = sm.list_contexts(SourceUri=arn)["ContextSummaries"]
    assert len(contexts) == 1
    assert contexts[0]["ContextType"] == "Endpoint"
    assert contexts[0]["ContextName"].startswith("ep-") and contexts[0]["ContextName"].endswith("-aws-endpoint")


def test_lineage_entities_take_tags(aws):
    sm = aws("sagemaker")
    arn = sm.create_context(
        ContextName="tagged", Source={"SourceUri": "x"}, ContextType="Experiment", Tags=[{"Key": "team", "Value": "ml"}]
    )["ContextArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "ops"}])
    assert {t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]} == {"team", "owner"}


def test_add_tags_overwrites_an_existing_key_as_aws_does(aws):
    sm = aws("sagemaker")
    arn = sm.create_context(
        ContextName="retag",
        Source={"SourceUri": "x"},
        ContextType="Experiment",
        Tags=[{"Key": "stage", "Value": "staging"}],
    )["ContextArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "production"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "stage", "Value": "production"}]
