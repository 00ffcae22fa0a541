"""Packaging for mlflow-sagemaker-ops.

Entry points are declared only once the capability behind them works end to end.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "mlflow_plugins" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="mlflow-sagemaker-ops",
    version=VERSION,
    description="MLflow plugins that take a model from an experiment to production on AWS",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mlflow_plugins", "mlflow_plugins.*", "registry_hooks", "registry_hooks.*"]),
    package_data={"mlflow_plugins.serving": ["docker/Dockerfile"]},
    install_requires=[
        "mlflow>=3.17,<3.19",
        "boto3>=1.34",
        "click>=8",
        # The sandbox extends moto's backends in-process; their internals change between
        # releases, so the version is pinned exactly.
        "moto[server]==5.2.5",
        "pyyaml>=6",
        # The serving runtime's HTTP server (see mlflow_plugins/serving/http.py).
        "httptools>=0.6",
        "uvloop>=0.19; sys_platform != 'win32'",
    ],
    extras_require={
        "dev": ["pytest>=8", "pytest-timeout>=2.3"],
        "postgres": ["psycopg2-binary>=2.9"],
    },
    entry_points={
        "console_scripts": ["mlflow-sagemaker-ops=mlflow_plugins.cli:cli"],
        "mlflow.deployments": ["sagemaker-ops=mlflow_plugins.deploy.sagemaker"],
    },
)
