"""Start serving-runtime processes from a warm launcher instead of a fresh interpreter each time.

A container's process imports MLflow, pandas and scikit-learn before it serves, which costs about
5 s of CPU per start here (``python -c "import mlflow.pyfunc, mlflow.sklearn"``), and the sandbox
starts one for every instance of every endpoint, rolling-update batch and ECS task. The launcher
is :mod:`multiprocessing`'s fork server, started once per sandbox with those modules imported;
each runtime process is forked from it and then runs exactly what the container runs: the
``mlflow-sagemaker-ops`` command line (``serve ...``), with the container's environment, its own
session (as ``start_new_session``), and stdout and stderr on a pipe the sandbox reads.

Where this differs from a container: the imports happened before the container's environment was
applied, so an environment variable that a library reads only at import time comes from the
sandbox's own environment. The runtime and MLflow read theirs when they run.

:class:`Launched` answers the parts of :class:`subprocess.Popen` the sandbox uses (``pid``,
``stdout``, ``poll``, ``wait``, ``terminate``, ``kill``) and ``stop``, which the hosts call.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

PRELOAD = [
    "mlflow_plugins.cli",
    "mlflow_plugins.cli.serve",
    "mlflow_plugins.serving.runtime",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "pandas",
    "boto3",
]


_EXTRA: list[str] = []


def preload(*modules: str) -> None:
    """Also import ``modules`` in the fork server, for other commands launched beside the runtime
    (the test suite's controllers: ``hooks run``). Only before the first launch of the process."""
    if _forkserver.cache_info().currsize:
        raise RuntimeError(f"the fork server is already set up; preload {', '.join(modules)} before the first launch")
    _EXTRA.extend(modules)


@functools.cache
def _forkserver() -> Any:
    """The fork server's context, its preload set once (the server starts on the first launch)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOAD, *_EXTRA])
    return context


def launch(argv: list[str], env: dict[str, str], log: str | os.PathLike[str] | None = None) -> Launched:
    """Run ``mlflow-sagemaker-ops *argv`` with environment ``env`` (the whole environment); its
    stdout and stderr go to :attr:`Launched.stdout`, or appended to the file ``log``."""
    read = output = None
    if log is None:
        read, write = os.pipe()
        output = Connection(write, readable=False)  # a Connection travels to the fork server with its fd
    target = os.fspath(log) if log is not None else None
    process = _forkserver().Process(target=_run, args=(argv, env, output, target), daemon=True)
    try:
        process.start()
    except BaseException:
        if read is not None:
            os.close(read)
        raise
    finally:
        if output is not None:
            output.close()  # the child holds its own copy; EOF comes when it exits
    return Launched(process, read, argv)


class Launched:
    """A runtime process started by :func:`launch` (the Popen subset the sandbox uses)."""

    def __init__(self, process: Any, output_fd: int | None, argv: list[str]) -> None:
        self._process = process
        self.pid: int = process.pid
        self.args = argv
        self.stdout = _Lines(output_fd) if output_fd is not None else None

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM now; reaped on a helper thread (SIGKILL after 10 s), so a caller holding the
        sandbox's lock does not wait for the runtime to shut down."""
        self.terminate()

        def reap() -> None:
            try:
                self.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
                self.wait()

        threading.Thread(target=reap, daemon=True).start()

    def _signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


class _Lines:
    """The child's stdout and stderr, line by line, as text (read by one thread)."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "r", encoding="utf-8", errors="replace")

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._file
        finally:
            self._file.close()


def _run(argv: list[str], env: dict[str, str], output: Connection | None, log: str | None) -> None:
    """In the forked child: become the container's process, then run its command line."""
    os.setsid()
    if sys.platform.startswith("linux"):  # die with the launcher, which dies with the sandbox
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if output is not None:
        fd = output.fileno()
    else:
        assert log is not None
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if output is not None:
        output.close()  # through the Connection, which would otherwise close its fd again later
    else:
        os.close(fd)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(env)
    from mlflow_plugins.cli import cli

    cli.main(args=list(argv), prog_name="mlflow-sagemaker-ops")
