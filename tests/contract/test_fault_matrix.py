"""The fault matrix: for every target, and each of create, update and delete, fail the Nth AWS
write call for every N, then check what is left against the contract's promise
(:mod:`mlflow_plugins.deploy.contract`): after a failure the old state is intact (the account as
before, and the message says so) or the message names every resource that changed; running the
same command again finishes the work; ``delete`` then leaves the account as it was. Then every
write operation of the command is throttled once in one run: botocore retries each, and the
command ends as a clean run does.

The sandbox starts no serving processes here (``/_sandbox/hosting``): the matrix judges resources
and messages; predictions are the contract suite's. Faults are the sandbox's (``/_sandbox/faults``
with ``after``): they answer over HTTP in each service's own protocol, S3 included, so botocore's
retry and error parsing run as against AWS.
The writes of each command are read off a clean run of it (the sandbox's call journal), so a
new write in the code is in the matrix without editing this file.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from mlflow_plugins.aws import AwsSettings, make_clients
from mlflow_plugins.deploy import make_target
from tests.contract.conftest import PLACES, Place, inventory

READ = re.compile(r"^(Describe|List|Get|Head|Invoke|Search|Query|Select|Validate)")
OPERATIONS = ("create", "update", "delete")
INTACT_CLAIMS = ("Nothing was left behind", "is unchanged", "was not changed")  # journal.outcome's words
ALARM = "fault-matrix-latency"  # an existing alarm the update watches (a read, checked before any write)


def extended(place: Place) -> dict[str, Any]:
    """The place's config with every feature that adds writes: autoscaling, alarms, a log group."""
    config = dict(place.config)
    if place.kind == "sagemaker":
        config |= {
            "autoscaling": json.dumps({"min_capacity": 1, "max_capacity": 2, "target": 100}),
            "alarms": ALARM,
            "auto_alarms": "true",
            "tags": json.dumps({"team": "ml"}),
        }
    elif place.kind == "ecs":
        config |= {
            "autoscaling": json.dumps({"min_capacity": 1, "max_capacity": 2, "target": 60}),
            "log_group": "/ml/fault-matrix",
            "tags": json.dumps({"team": "ml"}),
        }
    return config


@dataclass
class Round:
    """One cell of the matrix: which write failed (or was throttled) and what came of it."""

    n: int
    service: str
    operation: str
    kind: str
    problems: list[str] = field(default_factory=list)
    message: str = ""

    def __str__(self) -> str:
        head = f"write #{self.n} {self.service}:{self.operation} ({self.kind})"
        return f"{head}: " + "; ".join(self.problems) + (f"\n      message: {self.message}" if self.message else "")


class Matrix:
    """Drives one (target, operation) column of the matrix against the session's sandbox."""

    def __init__(self, kind: str, operation: str, aws: Any, sandbox: Any, models: dict[str, str]) -> None:
        self.kind, self.operation = kind, operation
        self.aws, self.sandbox, self.models = aws, sandbox, models
        # One target (its clients) for every cell, as a controller keeps one: a new boto3 session
        # per cell would parse each service's model again (about 0.4 s per cell).
        self.target = make_target(kind, make_clients(AwsSettings()))

    def prepare(self) -> tuple[Any, Place, Any]:
        """A clean account with the place made (and, for update and delete, version 1 deployed)."""
        self.sandbox.control.clear_faults()
        self.sandbox.reset()
        # The matrix judges AWS resources and messages, not predictions (the contract suite
        # predicts through every target): endpoints and tasks pass their health checks without a
        # serving process, which would cost seconds of CPU per cell.
        self.sandbox.control.hosting(processes=False)
        place = PLACES[self.kind](self.aws)
        if self.kind == "sagemaker":
            self.aws("cloudwatch").put_metric_alarm(
                AlarmName=ALARM,
                MetricName="ModelLatency",
                Namespace="AWS/SageMaker",
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1e9,
                ComparisonOperator="GreaterThanThreshold",
            )
        target = self.target
        config = target.parse(extended(place))
        self.baseline = inventory(self.aws)
        if self.operation != "create":
            target.create(place.name, self.models["v1"], config)
        return target, place, config

    def run(self, target: Any, place: Place, config: Any) -> None:
        if self.operation == "create":
            target.create(place.name, self.models["v1"], config)
        elif self.operation == "update":
            target.update(place.name, self.models["v2"], config)
        else:
            target.delete(place.name, config)

    def reference(self) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
        """The command's writes, in order, and the account after it, from a clean run."""
        target, place, config = self.prepare()
        start = len(self.sandbox.control.calls())
        self.run(target, place, config)
        calls = self.sandbox.control.calls()[start:]
        writes = [(c["service"], c["operation"]) for c in calls if c["operation"] and not READ.match(c["operation"])]
        return writes, inventory(self.aws)

    def cell(self, n: int, writes: list[tuple[str, str]], kind: str, after_ok: dict[str, list[str]]) -> Round:
        service, operation = writes[n - 1]
        seen = writes[: n - 1].count((service, operation))
        result = Round(n, service, operation, kind)
        target, place, config = self.prepare()
        before = inventory(self.aws)
        fault: dict[str, Any] = {"service": service, "after": seen, "count": 1}
        if kind == "error":
            fault |= {"code": "AccessDenied", "status": 403} if service == "s3" else {"code": "AccessDeniedException"}
            fault["message"] = "injected by the fault matrix"
        self.sandbox.control.add_fault(operation, kind=kind, **fault)
        error: BaseException | None = None
        try:
            self.run(target, place, config)
        except Exception as caught:  # noqa: BLE001 - every failure is judged below
            error = caught
        fired = self.sandbox.control.faults()["fired"]
        self.sandbox.control.clear_faults()
        if not fired:
            result.problems.append("the fault never fired (the command's writes changed between runs)")
            return result
        now = inventory(self.aws)
        if kind == "throttle":
            if error is not None:
                result.problems.append(f"a throttled call failed the command: {type(error).__name__}: {error}")
            elif shape(now) != shape(after_ok):
                result.problems.append(f"left {diff(after_ok, now)} against a clean run")
            return result
        if error is None:  # the failure was absorbed (a later step did the work): only if all is done
            if shape(now) != shape(after_ok):
                result.problems.append(f"the command succeeded though a write failed, and left {diff(after_ok, now)}")
            return result
        else:
            result.message = str(error)
            result.problems += judge_message(result.message, before, now, operation, after_ok)
            if self.operation == "delete" and now == after_ok:
                result.problems.append("the command failed, but its work is complete")
        if (now != before or error is None) and not (self.operation == "delete" and now == after_ok):
            self.finish(result, target, place, config, after_ok)  # intact or all gone: nothing to finish
        return result

    def throttled(self, writes: list[tuple[str, str]], after_ok: dict[str, list[str]]) -> Round:
        """Every write operation of the command throttled once (its first call): botocore retries
        each, and the command ends as a clean run does."""
        result = Round(0, "every", "write", "throttle")
        target, place, config = self.prepare()
        for service, operation in dict.fromkeys(writes):
            self.sandbox.control.add_fault(operation, kind="throttle", count=1, service=service)
        try:
            self.run(target, place, config)
        except Exception as error:  # noqa: BLE001
            result.problems.append(f"a throttled call failed the command: {type(error).__name__}: {error}")
        fired = {(f["service"], f["operation"]) for f in self.sandbox.control.faults()["fired"]}
        self.sandbox.control.clear_faults()
        if missed := sorted(set(writes) - fired):
            result.problems.append(f"these writes were never throttled: {missed}")
        if shape(now := inventory(self.aws)) != shape(after_ok):
            result.problems.append(f"left {diff(after_ok, now)} against a clean run")
        return result

    def finish(self, result: Round, target: Any, place: Place, config: Any, after_ok: dict[str, list[str]]) -> None:
        """The same command again finishes the work; delete then leaves the account as it was."""
        try:
            self.run(target, place, config)
        except Exception as error:  # noqa: BLE001
            result.problems.append(f"running it again failed: {type(error).__name__}: {error}")
            return
        if shape(inventory(self.aws)) != shape(after_ok):
            result.problems.append(f"run again, it left {diff(after_ok, inventory(self.aws))} against a clean run")
        if self.operation == "delete":
            return
        if not target.observe(place.name, config).serving:
            result.problems.append("run again, the deployment does not serve")
        try:
            target.delete(place.name, config)
        except Exception as error:  # noqa: BLE001
            result.problems.append(f"delete afterwards failed: {type(error).__name__}: {error}")
            return
        if (left := inventory(self.aws)) != self.baseline:
            result.problems.append(f"delete afterwards left {diff(self.baseline, left)}")


def shape(found: dict[str, list[str]]) -> dict[str, int]:
    return {key: len(value) for key, value in found.items()}


def diff(expected: dict[str, list[str]], found: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in expected:
        extra, missing = sorted(set(found[key]) - set(expected[key])), sorted(set(expected[key]) - set(found[key]))
        if extra or missing:
            out[key] = {"extra": extra, "missing": missing}
    return out


def named(key: str, resource: str, message: str) -> bool:
    """Whether the message names a resource: by its name (an ARN's or an alarm's last part), or an
    S3 object by its bucket and a folder of its key (archives are named by their prefix)."""
    if key == "objects":
        bucket, _, path = resource.partition("/")
        folders = path.split("/")[:-1]
        return any(f"{bucket}/{'/'.join(folders[:i])}" in message for i in range(1, len(folders) + 1))
    last = resource.rstrip("/").rsplit("/", 1)[-1]
    return last in message or last.rsplit(":", 1)[0] in message


def judge_message(
    message: str,
    before: dict[str, list[str]],
    now: dict[str, list[str]],
    operation: str,
    after_ok: dict[str, list[str]],
) -> list[str]:
    """The message is true: it names the call that failed; and either the account is as before,
    or the message does not claim so and names what is left beyond a clean run's end: in each
    kind of resource with more than a clean run leaves, at least that many are named."""
    problems = []
    if operation not in message:
        problems.append(f"the message does not name the failed call {operation}")
    changed = diff(before, now)
    if not changed:
        return problems
    if claim := next((c for c in INTACT_CLAIMS if c in message), None):
        problems.append(f"the message says {claim!r}, but the account changed: {changed}")
    for key, found in now.items():
        found = [r for r in found if not r.startswith("TargetTracking-")]  # a scaling policy's alarms go with it
        surplus = len(found) - len([r for r in after_ok[key] if not r.startswith("TargetTracking-")])
        if surplus > 0 and sum(named(key, r, message) for r in found) < surplus:
            problems.append(f"{surplus} more {key} than a clean run leaves, and the message names fewer: {found}")
    return problems


@pytest.mark.timeout(1800)  # up to ~12 writes, each a fresh account, a deploy and its checks
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("kind", sorted(PLACES))
def test_fault_matrix(kind, operation, aws, sandbox, models, monkeypatch, record_property):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    logging.getLogger("mlflow_plugins").setLevel(logging.WARNING)
    matrix = Matrix(kind, operation, aws, sandbox, models)
    writes, after_ok = matrix.reference()
    assert writes, f"{operation} on {kind} made no write"
    rounds = [matrix.cell(n, writes, "error", after_ok) for n in range(1, len(writes) + 1)]
    rounds.append(matrix.throttled(writes, after_ok))
    record_property("matrix", {"writes": [f"{s}:{o}" for s, o in writes], "cells": len(rounds)})
    bad = [str(r) for r in rounds if r.problems]
    assert not bad, f"{len(bad)} of {len(rounds)} cells broke the contract:\n  " + "\n  ".join(bad)
