"""CloudFormation templates of deployments (``mlflow-sagemaker-ops export``): what every target's
exporter shares. A template is a plain dict in CloudFormation's JSON shape, with intrinsic
functions in their long form (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::ImportValue``), so
the same dict dumps to YAML or JSON and converts to a CDK app (:mod:`mlflow_plugins.iac.cdk`).

Parameters hold what differs between accounts (the image, role ARNs, subnets and security
groups); with ``shared_stack`` they are imported from another stack's exports instead
(``Fn::ImportValue`` of ``<stack>-<Name>``), so stacks that share a VPC or roles refer to one
copy. MLflow provenance (model URI, digest, registered model, version, run id) goes into every
resource's tags and into the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mlflow_plugins
from mlflow_plugins.deploy.common import labels as suite_labels

FORMAT_VERSION = "2010-09-09"
OUTPUT_LABELS = {  # suite tag -> output name
    suite_labels.MODEL_URI: "ModelUri",
    suite_labels.MODEL_DIGEST: "ModelDigest",
    suite_labels.REGISTERED_MODEL: "RegisteredModel",
    suite_labels.MODEL_VERSION: "ModelVersion",
    suite_labels.RUN_ID: "RunId",
}


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> dict[str, Any]:
    return {"Fn::Sub": text}


@dataclass
class Template:
    """A template under construction: parameters, resources and outputs, in insertion order."""

    description: str
    shared_stack: str | None = None  # import shared values from this stack's exports
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def shared(self, name: str, kind: str, default: Any, description: str) -> dict[str, Any]:
        """A value that differs between accounts: a parameter (``kind`` is its CloudFormation
        type), or with ``shared_stack`` the shared stack's export ``<stack>-<name>``. A list
        export is a comma-separated string, split here."""
        if self.shared_stack:
            imported = {"Fn::ImportValue": f"{self.shared_stack}-{name}"}
            return (
                {"Fn::Split": [",", imported]} if kind.startswith("List<") or kind == "CommaDelimitedList" else imported
            )
        spec: dict[str, Any] = {"Type": kind, "Description": description}
        if default not in (None, "", []):
            spec["Default"] = ",".join(default) if isinstance(default, list) else default
        self.parameters[name] = spec
        return ref(name)

    def add(self, logical_id: str, kind: str, properties: dict[str, Any], depends_on: list[str] | None = None) -> str:
        resource: dict[str, Any] = {"Type": kind, "Properties": {k: v for k, v in properties.items() if v is not None}}
        if depends_on:
            resource["DependsOn"] = depends_on
        self.resources[logical_id] = resource
        return logical_id

    def output(
        self, name: str, value: Any, description: str, export: bool = False, export_as: str | None = None
    ) -> None:
        """An output; ``export``: as ``<stack>-<export_as or name>``, for other stacks to import."""
        entry: dict[str, Any] = {"Description": description, "Value": value}
        if export:
            entry["Export"] = {"Name": sub(f"${{AWS::StackName}}-{export_as or name}")}
        self.outputs[name] = entry

    def provenance(self, labels: dict[str, str]) -> None:
        """MLflow provenance of the served model as outputs."""
        for key, name in OUTPUT_LABELS.items():
            if labels.get(key):
                self.output(name, labels[key], f"MLflow: {name} of the served model")

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "AWSTemplateFormatVersion": FORMAT_VERSION,
            "Description": self.description,
            "Metadata": {"mlflow-sagemaker-ops": {"version": mlflow_plugins.__version__, **self.metadata}},
        }
        if self.parameters:
            body["Parameters"] = self.parameters
        body["Resources"] = self.resources
        if self.outputs:
            body["Outputs"] = self.outputs
        return body


def tags(labels: dict[str, str]) -> list[dict[str, str]]:
    """Tags as CloudFormation's ``[{Key, Value}]`` (the suite's deployment id is left out: a
    stack's resources have CloudFormation's own names), sorted by key as the CDK writes them."""
    return [
        {"Key": k, "Value": v}
        for k, v in sorted(labels.items())
        if k != suite_labels.DEPLOYMENT_ID and not k.startswith("aws:")  # aws: keys are reserved to AWS
    ]


def to_yaml(template: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # each resource's tags written out, no &id001
            return True

    Dumper.add_representer(str, _str_representer)
    return yaml.dump(template, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=120)


def _str_representer(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)
