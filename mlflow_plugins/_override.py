"""Make ``mlflow deployments ... -t sagemaker`` reach this suite's client.

MLflow binds the target name ``sagemaker`` to its own module when ``mlflow.deployments.interface``
is imported, after the entry points are loaded, so an entry point cannot claim it. The wheel
installs ``mlflow_sagemaker_ops.pth``, which imports this module at interpreter start. It only puts
a finder on ``sys.meta_path`` that waits for that one module; when it is imported, ``sagemaker``
is registered again to ``mlflow_plugins.clients.sagemaker``. ``MLFLOW_SAGEMAKER_OPS_OVERRIDE=0``
turns it off. Nothing else happens at start (no mlflow import).

It also mends one MLflow bug that stops ``mlflow deployments create-endpoint`` before any plugin
runs (MLflow 3.17): the command passes ``--endpoint`` as ``endpoint=`` to a callback that takes
``name``. When ``mlflow.deployments.cli`` is imported, the callback is wrapped to rename it; if a
later MLflow fixes it (the callback takes ``endpoint``), nothing is changed.
"""

import os
import sys

TARGET = "mlflow.deployments.interface"
CLI = "mlflow.deployments.cli"
CLIENT = "mlflow_plugins.clients.sagemaker"


def _rebind(module):
    try:
        module.plugin_store.register("sagemaker", CLIENT)
    except Exception as error:  # never break MLflow: say why, keep its own client
        print(
            f"mlflow-sagemaker-ops: could not take over -t sagemaker ({error}); "
            "MLflow's own client stays in place. Use -t sagemaker-ops.",
            file=sys.stderr,
        )


def _mend_create_endpoint(module):
    try:
        import functools
        import inspect

        command = module.commands.commands["create-endpoint"]
        callback = command.callback
        parameters = inspect.signature(callback).parameters
        if "endpoint" in parameters or "name" not in parameters:
            return  # fixed upstream, or changed: leave it

        def create_endpoint(endpoint=None, **kwargs):
            return callback(name=endpoint, **kwargs)

        command.callback = functools.update_wrapper(create_endpoint, callback)
    except Exception as error:  # never break MLflow
        print(f"mlflow-sagemaker-ops: could not mend `mlflow deployments create-endpoint` ({error}).", file=sys.stderr)


class _RebindSageMaker:
    """A meta path finder for ``mlflow.deployments.interface`` and ``mlflow.deployments.cli``,
    each once; it leaves ``sys.meta_path`` when both have been seen."""

    def __init__(self):
        self.waiting = {TARGET: _rebind, CLI: _mend_create_endpoint}

    def find_spec(self, name, path=None, target=None):
        if name not in self.waiting:
            return None
        fix = self.waiting.pop(name)
        if not self.waiting:
            sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            fix(module)

        spec.loader.exec_module = exec_module
        return spec


def install():
    if os.environ.get("MLFLOW_SAGEMAKER_OPS_OVERRIDE", "1").strip().lower() in ("0", "false", "no"):
        return
    if any(isinstance(f, _RebindSageMaker) for f in sys.meta_path):
        return
    finder = _RebindSageMaker()
    for name in list(finder.waiting):
        if name in sys.modules:
            finder.waiting.pop(name)(sys.modules[name])
    if finder.waiting:
        sys.meta_path.insert(0, finder)


install()
