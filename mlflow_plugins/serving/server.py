"""Run the runtime: one process per worker, each with its own listening socket on the same port.

Every worker binds the port with ``SO_REUSEPORT``, so the kernel spreads connections across them
(one shared socket lets whichever worker is idle take a whole burst of keep-alive connections).
The parent binds the port first, without listening, to claim it and learn a port chosen with 0.

With one worker the server runs in the calling process. With more, the parent forks the workers,
restarts one that dies, and stops them all on SIGTERM or SIGINT; workers also die with the parent
(``PR_SET_PDEATHSIG``), so a killed server leaves nothing running.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from mlflow_plugins.serving.app import error_response
from mlflow_plugins.serving.http import App, serve_forever

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    workers: int
    max_body: int


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run(listener: Listener, make_app: Callable[[], App], announce: Callable[[int], None]) -> None:
    claim = bind(listener.host, listener.port)
    port = claim.getsockname()[1]
    announce(port)
    if listener.workers == 1:
        claim.listen(2048)
        _serve(claim, make_app, listener.max_body)
        return
    _supervise(listener, port, make_app)


def _supervise(listener: Listener, port: int, make_app: Callable[[], App]) -> None:
    children: dict[int, int] = {}
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            _die_with_parent()
            sock = bind(listener.host, port)
            sock.listen(2048)
            try:
                _serve(sock, make_app, listener.max_body)
            finally:
                os._exit(0)
        children[pid] = index

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(listener.workers):
        spawn(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is not None and not stopping:
            log.error("worker %s (pid %s) exited with status %s; starting a new one", index, pid, status)
            spawn(index)


def _serve(sock: socket.socket, make_app: Callable[[], App], max_body: int) -> None:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = make_app()
    try:
        loop.run_until_complete(serve_forever(sock, app, max_body, error_response, stop))
    finally:
        loop.close()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
