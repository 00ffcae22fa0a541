"""Packaging for mlflow-sagemaker-ops.

Entry points are declared only once the capability behind them works end to end.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "mlflow_plugins" / "__init__.py").read_text(), re.M).group(1)
PTH = "mlflow_sagemaker_ops.pth"  # makes -t sagemaker reach our client (mlflow_plugins/_override.py)


def pth_line() -> bytes:
    """The .pth file (site.py executes a line that starts with "import"): import the hook, and
    never let a broken install break interpreter start. Importing the cached module measured
    faster than compiling its source in place (benchmarks/startup.py)."""
    return b'import sys; exec("try:\\n import mlflow_plugins._override\\nexcept Exception:\\n pass")\n'


class BuildWithPth(build_py):
    """Put the .pth file at the root of the wheel (site-packages), for pip install . and -e ."""

    def run(self):
        super().run()
        Path(self.build_lib, PTH).write_bytes(pth_line())

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


class EditableWithPth(editable_wheel):
    """pip install -e . maps only packages; add the .pth file (and its RECORD line) to the wheel."""

    def run(self):
        super().run()
        for wheel in Path(self.dist_dir).glob("*.whl"):
            _add_to_wheel(wheel, PTH, pth_line())


def _add_to_wheel(wheel, name, data):
    """Rewrite the wheel with ``name`` added and listed in RECORD."""
    import base64
    import hashlib
    import zipfile

    with zipfile.ZipFile(wheel) as old:
        if name in old.namelist():
            return
        entries = {info.filename: old.read(info) for info in old.infolist()}
    record = next(n for n in entries if n.endswith(".dist-info/RECORD"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    entries[record] += f"{name},sha256={digest},{len(data)}\n".encode()
    entries[name] = data
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as new:
        for filename, content in entries.items():
            new.writestr(filename, content)


setup(
    name="mlflow-sagemaker-ops",
    version=VERSION,
    description="MLflow plugins that take a model from an experiment to production on AWS",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mlflow_plugins", "mlflow_plugins.*", "registry_hooks", "registry_hooks.*"]),
    package_data={"mlflow_plugins.serving": ["docker/Dockerfile"], "registry_hooks.page": ["static/*"]},
    install_requires=[
        "mlflow>=3.17,<3.19",
        "boto3>=1.34",
        "click>=8",
        "pyyaml>=6",
        "requests>=2.31",  # imported directly (sandbox, ECS invoke, registry hooks, trial runs)
        "urllib3>=2",
        # The serving runtime's HTTP server (see mlflow_plugins/serving/http.py).
        "httptools>=0.6",
        "uvloop>=0.19; sys_platform != 'win32'",
    ],
    extras_require={
        # Flask-WTF (mlflow[auth]) is in dev because the tests run --app-name registry-hooks-auth.
        # sagemaker-core: the SageMaker SDK's lineage query reads what `lineage sync` writes (tests).
        # selenium drives Debian's chromium + chromium-driver in the Deployments page's browser tests.
        # The offline AWS sandbox (`mlflow-sagemaker-ops sandbox`, the demo, the tests) extends
        # moto's backends in-process; their internals change between releases, so the version is
        # pinned exactly. Not a runtime dependency: a controller or serving image does not carry it.
        "sandbox": ["moto[server]==5.2.5"],
        "dev": [
            "moto[server]==5.2.5",
            "jsonschema>=4",
            "ruff==0.17.6",
            "import-linter==2.17",
            "mypy>=1.10",
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",
            "Flask-WTF<2",
            "sagemaker-core>=2.27,<3",
            "selenium>=4.20",
            # Exported templates are linted offline, and the exported CDK apps synthesized with
            # aws-cdk-lib's own synth (it runs Node.js, which the machine has), in the tests.
            "cfn-lint>=1",
            "aws-cdk-lib>=2.150,<3",
        ],
        # --app-name registry-hooks-auth: MLflow's basic-auth app needs Flask-WTF.
        "auth": ["Flask-WTF<2"],
        "postgres": ["psycopg2-binary>=2.9"],
        # The MLflow project (projects/, MLproject). xgboost-cpu is xgboost without the CUDA
        # libraries (NCCL alone is ~300 MB); it installs the same `xgboost` module.
        "project": [
            "xgboost-cpu>=2",
            "optuna>=4",
            "pyarrow>=15",
            "scikit-learn>=1.5",
            "scipy>=1.11",
            "filelock>=3.12",
            "matplotlib>=3.7",  # the monitor's report picture
        ],
    },
    cmdclass={"build_py": BuildWithPth, "editable_wheel": EditableWithPth},
    entry_points={
        "console_scripts": ["mlflow-sagemaker-ops=mlflow_plugins.cli:cli"],
        "mlflow.deployments": ["sagemaker-ops=mlflow_plugins.clients.sagemaker", "ecs=mlflow_plugins.clients.ecs"],
        # The controller's MlflowClient sends its token, so the app plugin lets its deploy.* tag writes through.
        "mlflow.request_header_provider": ["registry-hooks=registry_hooks.page.token:ControllerTokenHeader"],
        "mlflow.app": [
            "registry-hooks=registry_hooks.app:create_app",
            "registry-hooks-auth=registry_hooks.app:create_app_with_auth",
        ],
    },
)
