"""MLproject and conda.yaml against the code: every entry point's parameters are its module's
options (same names and defaults), and conda.yaml lists every package the project imports."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULES = {
    "main": "projects.train",
    "train": "projects.train",
    "tune": "projects.tune",
    "retrain": "projects.retrain",
    "evaluate": "projects.evaluate",
    "monitor": "projects.monitor",
    "batch_score": "projects.batch_score",
}
ALIASES = {"xgboost-cpu": "xgboost"}  # the [project] extra installs xgboost without CUDA


def mlproject() -> dict:
    return yaml.safe_load((ROOT / "MLproject").read_text())


def test_every_entry_point_the_issue_names_exists_and_uses_conda_yaml():
    project = mlproject()
    assert project["conda_env"] == "conda.yaml"
    assert set(project["entry_points"]) == set(MODULES)


@pytest.mark.parametrize("entry", sorted(MODULES))
def test_parameters_match_the_modules_options(entry):
    spec = mlproject()["entry_points"][entry]
    parser = importlib.import_module(MODULES[entry]).parser()
    options = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(spec["parameters"]) == set(options), f"{entry}: MLproject and {MODULES[entry]} differ"
    for name, param in spec["parameters"].items():
        action = options[name]
        flag = action.option_strings[0]
        assert f"{flag} {{{name}}}" in spec["command"], f"{entry}: {flag} is not passed {{{name}}}"
        if "default" not in param:
            assert action.required, f"{entry}.{name} has no default in MLproject but is optional in the code"
            continue
        assert not action.required, f"{entry}.{name} has an MLproject default but the code requires it"
        assert str(param["default"]) == str(action.default), (
            f"{entry}.{name}: {param['default']!r} != {action.default!r}"
        )
        if action.choices:
            assert param["default"] in action.choices


def test_conda_yaml_lists_every_package_the_project_imports():
    env = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {re.split(r"[<>=!~ ]", line)[0].lower() for line in pip}
    if any(line.strip() in (".", "-e .") for line in pip):  # the suite itself, from the project's directory
        listed.add("mlflow-sagemaker-ops")
    dists = packages_distributions()
    missing = set()
    for source in (ROOT / "projects").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            )
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "projects":
                    continue
                # A module may come from several distributions (mlflow: mlflow, mlflow-skinny): one listed is enough.
                candidates = {ALIASES.get(d.lower(), d.lower()) for d in dists.get(top, [top])}
                if not candidates & listed:
                    missing.add(f"{top} ({', '.join(sorted(candidates))})")
    # pandas reads Parquet through pyarrow, and skops is how MLflow saves the pipelines: both are
    # imported indirectly, so they are named here rather than found by the scan.
    missing |= {"pyarrow", "skops"} - listed
    assert not missing, f"conda.yaml misses {sorted(missing)}"
