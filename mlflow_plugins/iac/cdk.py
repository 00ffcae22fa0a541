"""A CloudFormation template as a Python CDK app of L1 constructs (``export --format cdk``).

The CDK's L2 SageMaker constructs are alpha and lack ``DeploymentConfig``, async inference, data
capture and shadow variants, so every resource is its L1 construct (``CfnModel``,
``CfnEndpointConfig``, ``CfnEndpoint``, ``CfnScalableTarget``, ``CfnScalingPolicy``,
``CfnAlarm``, ``CfnTaskDefinition``, ``CfnService``, ``CfnLogGroup``) with the template's
logical id, so the app synthesizes to the same resources as the template it came from.

Names: a top-level property ``ProductionVariants`` is the keyword ``production_variants``; a
nested one is the camelCase key ``variantName`` (jsii's struct field names); maps whose keys are
the user's (container environment, log options) keep their keys.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

CLASSES = {
    "AWS::SageMaker::Model": ("aws_sagemaker", "CfnModel"),
    "AWS::SageMaker::EndpointConfig": ("aws_sagemaker", "CfnEndpointConfig"),
    "AWS::SageMaker::Endpoint": ("aws_sagemaker", "CfnEndpoint"),
    "AWS::CloudWatch::Alarm": ("aws_cloudwatch", "CfnAlarm"),
    "AWS::ApplicationAutoScaling::ScalableTarget": ("aws_applicationautoscaling", "CfnScalableTarget"),
    "AWS::ApplicationAutoScaling::ScalingPolicy": ("aws_applicationautoscaling", "CfnScalingPolicy"),
    "AWS::ECS::TaskDefinition": ("aws_ecs", "CfnTaskDefinition"),
    "AWS::ECS::Service": ("aws_ecs", "CfnService"),
    "AWS::Logs::LogGroup": ("aws_logs", "CfnLogGroup"),
}
FREE_FORM = ("Environment", "Options", "DockerLabels")  # maps whose keys are the user's
PSEUDO = {
    "AWS::StackName": "cdk.Aws.STACK_NAME",
    "AWS::Region": "cdk.Aws.REGION",
    "AWS::AccountId": "cdk.Aws.ACCOUNT_ID",
}
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
REQUIREMENTS = "aws-cdk-lib>=2.150,<3\nconstructs>=10,<11\n"


def camel(name: str) -> str:
    """``RoleARN`` -> ``roleArn``, ``EnableECSManagedTags`` -> ``enableEcsManagedTags``."""
    words = _WORDS.findall(name)
    return words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])


def snake(name: str) -> str:
    """``DestinationS3Uri`` -> ``destination_s3_uri`` (jsii's Python keyword names)."""
    return "_".join(w.lower() for w in _WORDS.findall(name))


class _Writer:
    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.variables: dict[str, str] = {}  # logical id or parameter -> Python variable
        self.parameters = template.get("Parameters", {})

    def variable(self, logical_id: str) -> str:
        if logical_id not in self.variables:
            base = snake(logical_id) or "resource"
            taken = set(self.variables.values())
            name = base if base not in taken and base not in ("self", "cdk") else f"{base}_{len(taken)}"
            self.variables[logical_id] = name
        return self.variables[logical_id]

    def value(self, value: Any, parent: str = "") -> str:
        """A property value as a Python expression."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, inner),) = value.items()
                if key in ("Ref", "Fn::GetAtt", "Fn::Sub", "Fn::ImportValue", "Fn::Join", "Fn::Split"):
                    return self.intrinsic(key, inner)
            if parent in FREE_FORM:
                return "{" + ", ".join(f"{json.dumps(k)}: {self.value(v)}" for k, v in value.items()) + "}"
            return "{" + ", ".join(f"{json.dumps(camel(k))}: {self.value(v, k)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.value(item) for item in value) + "]"  # items are structs
        return repr(value)

    def intrinsic(self, function: str, argument: Any) -> str:
        if function == "Ref":
            if argument in PSEUDO:
                return PSEUDO[argument]
            if argument in self.parameters:
                kind = self.parameters[argument]["Type"]
                accessor = (
                    "value_as_list" if kind.startswith("List<") or kind == "CommaDelimitedList" else "value_as_string"
                )
                return f"{self.variable(argument)}.{accessor}"
            return f"{self.variable(argument)}.ref"
        if function == "Fn::GetAtt":
            resource, attribute = argument
            return f"{self.variable(resource)}.get_att({attribute!r}).to_string()"
        if function == "Fn::Sub":
            return f"cdk.Fn.sub({argument!r})"
        if function == "Fn::ImportValue":
            return f"cdk.Fn.import_value({self.value(argument)})"
        if function == "Fn::Join":
            separator, items = argument
            return f"cdk.Fn.join({separator!r}, {self.value(items)})"
        separator, source = argument
        return f"cdk.Fn.split({separator!r}, {self.value(source)})"

    def lines(self) -> list[str]:
        out = []
        for name, spec in self.parameters.items():
            args = [f"type={spec['Type']!r}"] + [f"{snake(k)}={v!r}" for k, v in spec.items() if k != "Type"]
            out.append(f"{self.variable(name)} = cdk.CfnParameter(self, {name!r}, {', '.join(args)})")
        for logical_id, resource in self.template["Resources"].items():
            module, cls = CLASSES[resource["Type"]]
            props = "".join(
                f",\n    {snake(k)}={self.value(v, k)}" for k, v in (resource.get("Properties") or {}).items()
            )
            out.append(f"{self.variable(logical_id)} = {module}.{cls}(\n    self,\n    {logical_id!r}{props},\n)")
            for dependency in resource.get("DependsOn") or []:
                out.append(f"{self.variable(logical_id)}.add_dependency({self.variable(dependency)})")
        for name, spec in (self.template.get("Outputs") or {}).items():
            args = [f"value={self.value(spec['Value'])}", f"description={spec.get('Description', '')!r}"]
            if "Export" in spec:
                args.append(f"export_name={self.value(spec['Export']['Name'])}")
            out.append(f"cdk.CfnOutput(self, {name!r}, {', '.join(args)})")
        return out


def app_source(template: dict[str, Any], stack_name: str) -> str:
    """The Python source of a CDK app whose one stack, ``stack_name``, is ``template``."""
    unknown = sorted({r["Type"] for r in template["Resources"].values()} - set(CLASSES))
    if unknown:
        raise ValueError(f"no L1 construct is mapped for {unknown}")
    writer = _Writer(template)
    body = writer.lines()
    modules = sorted({CLASSES[r["Type"]][0] for r in template["Resources"].values()})
    stack = "".join(textwrap.indent(line, " " * 8) + "\n" for line in body)
    return f'''#!/usr/bin/env python3
"""{template.get("Description", "A deployment")}: a CDK app of L1 constructs, written by
`mlflow-sagemaker-ops export --format cdk`. `cdk synth` (or `python app.py`) writes the
CloudFormation template; `cdk deploy` deploys it."""

import os

import aws_cdk as cdk
from aws_cdk import {", ".join(modules)}
from constructs import Construct


class DeploymentStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.template_options.description = {template.get("Description", "")!r}
        self.template_options.metadata = {template.get("Metadata", {})!r}
{stack}

app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
DeploymentStack(
    app,
    {stack_name!r},
    synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    analytics_reporting=False,
)
app.synth()
'''


def app_files(template: dict[str, Any], stack_name: str) -> dict[str, str]:
    """A CDK project: ``app.py``, ``cdk.json`` and ``requirements.txt``."""
    settings = {"app": "python3 app.py", "context": {"aws:cdk:enable-path-metadata": False}}
    return {
        "app.py": app_source(template, stack_name),
        "cdk.json": json.dumps(settings, indent=2) + "\n",
        "requirements.txt": REQUIREMENTS,
    }
