"""Run the runtime: one process per worker, each with its own listening socket on the same port.

Every worker binds the port with ``SO_REUSEPORT``, so the kernel spreads connections across them
(one shared socket lets whichever worker is idle take a whole burst of keep-alive connections).
The parent binds the port first, without listening, to claim it and learn a port chosen with 0.

With one worker the server runs in the calling process. With more, the parent builds the app and
serves it itself until the app is ready (the model loaded: ``/ping`` answers 503 meanwhile), then
forks the workers, which share the loaded model copy-on-write and are all ready at once. The parent
restarts a worker that dies, and stops them all on SIGTERM or SIGINT; workers also die with the
parent (``PR_SET_PDEATHSIG``), so a killed server leaves nothing running.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlflow_plugins.serving.app import error_response
from mlflow_plugins.serving.http import App, Dispatcher, WorkQueue, serve_forever

log = logging.getLogger(__name__)
# How long a model computing in Python keeps the GIL from the event loop that wants it (Python's
# default is 5 ms; a ping needs the GIL once or twice, so this bounds its wait behind such a model).
SWITCH_INTERVAL = 0.001


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
    sock = bind(listener.host, listener.port)
    port = sock.getsockname()[1]
    announce(port)
    sock.listen(2048)
    app = make_app()
    if listener.workers == 1:
        _serve(sock, app, listener.max_body)
        return
    ready = getattr(app, "ready", None)
    if ready is not None:
        _serve(sock, app, listener.max_body, until=ready)  # /ping says 503 while the model loads
        if not app.healthy:
            _serve(sock, app, listener.max_body)  # it failed to load: keep saying why, no workers
            return
    claim = bind(listener.host, port)  # hold the port while the workers start
    sock.close()
    _supervise(listener, port, app)
    claim.close()


def _supervise(listener: Listener, port: int, app: App) -> None:
    children: dict[int, int] = {}
    stopping = False

    stops = {signal.SIGTERM, signal.SIGINT}

    def spawn(index: int) -> None:
        # A stop signal waits until the new worker is on the list (so it is told to stop too), and
        # a worker never runs the supervisor's handler: it starts with the default one.
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        pid = os.fork()
        if pid == 0:
            for sig in stops:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
            _die_with_parent()
            sock = bind(listener.host, port)
            sock.listen(2048)
            try:
                _serve(sock, app, listener.max_body)
            finally:
                os._exit(0)
        children[pid] = index
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)

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
        if index is not None and not stopping and not _stop_pending(stops):
            log.error("worker %s (pid %s) exited with status %s; starting a new one", index, pid, status)
            spawn(index)


def _serve(sock: socket.socket, app: App, max_body: int, until: threading.Event | None = None) -> None:
    """Serve ``app`` on ``sock`` until ``until`` is set; SIGTERM or SIGINT end the process.

    The event loop runs in a thread of its own; this (main) thread runs the predictions, so the
    loop answers ``/ping`` while a model predicts, and SIGALRM deadlines still reach the model.
    Every thread has ended when this returns (a parent forks its workers next).
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    loop = _new_loop()
    stop = asyncio.Event()
    work = WorkQueue()
    dispatcher = Dispatcher(app, error_response, work, loop)
    signalled = []

    def on_signal(*_: object) -> None:
        signalled.append(True)
        loop.call_soon_threadsafe(stop.set)

    def run_loop() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve_forever(sock, dispatcher, max_body, stop))
        except Exception:
            log.exception("the HTTP loop failed")
        finally:
            loop.close()
            work.close()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    with _signals_to_main_thread():  # threads started here (and theirs) never take SIGTERM or SIGALRM
        http = threading.Thread(target=run_loop, name="http", daemon=True)
        http.start()
        if until is not None:
            threading.Thread(target=lambda: (until.wait(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    try:
        while (items := work.take_all()) is not None:
            dispatcher.run_work(items)
    finally:
        http.join()
        dispatcher.admin.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if signalled:
        raise SystemExit(0)


@contextmanager
def _signals_to_main_thread() -> Iterator[None]:
    """Block the signals the main thread handles while threads start, so they inherit the mask.

    The kernel delivers a process's signal to any thread that does not block it; Python runs the
    handler only in the main thread, and only once that thread wakes. A SIGTERM taken by the loop
    thread would leave the main thread waiting for work that never comes, and a SIGALRM would not
    interrupt a model sleeping past its deadline.
    """
    handled = {signal.SIGTERM, signal.SIGINT, signal.SIGALRM}
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def _stop_pending(stops: set[int]) -> bool:
    """A worker that exited because the whole group was told to stop is not replaced, even when
    the supervisor's own stop signal has not been handled yet."""
    return bool(stops & signal.sigpending())


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
