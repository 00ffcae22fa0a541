"""Make ``mlflow deployments ... -t sagemaker`` reach this suite's client.

MLflow binds the target name ``sagemaker`` to its own module when ``mlflow.deployments.interface``
is imported, after the entry points are loaded, so an entry point cannot claim it. The wheel
installs ``mlflow_sagemaker_ops.pth``, which imports this module at interpreter start. It only puts
a finder on ``sys.meta_path`` that waits for that one module; when it is imported, ``sagemaker``
is registered again to ``mlflow_plugins.deploy.sagemaker``. ``MLFLOW_SAGEMAKER_OPS_OVERRIDE=0``
turns it off. Nothing else happens at start (no mlflow import).
"""

import os
import sys

TARGET = "mlflow.deployments.interface"
CLIENT = "mlflow_plugins.deploy.sagemaker"


def _rebind(module):
    try:
        module.plugin_store.register("sagemaker", CLIENT)
    except Exception as error:  # never break MLflow: say why, keep its own client
        print(f"mlflow-sagemaker-ops: could not take over -t sagemaker ({error}); "
              "MLflow's own client stays in place. Use -t sagemaker-ops.", file=sys.stderr)


class _RebindSageMaker:
    """A one-shot meta path finder for ``mlflow.deployments.interface``."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _rebind(module)

        spec.loader.exec_module = exec_module
        return spec


def install():
    if os.environ.get("MLFLOW_SAGEMAKER_OPS_OVERRIDE", "1").strip().lower() in ("0", "false", "no"):
        return
    if TARGET in sys.modules:
        _rebind(sys.modules[TARGET])
    elif not any(isinstance(f, _RebindSageMaker) for f in sys.meta_path):
        sys.meta_path.insert(0, _RebindSageMaker())


install()
