"""The workers of one multi-model server tell each other about model loads and unloads.

Each worker listens on a Unix socket, ``<directory>/<pid>.sock``, served by its event loop (which
never waits for a model, so it answers at once). After a worker changed the shared registry, it
tells every other worker ``sync``; each one drops the models it no longer holds as loaded and
answers ``ok``. The call that made the change returns only after every live worker answered, so
an unload frees the model in every worker, and no worker answers from a model that was replaced.

A worker that died leaves a socket nobody listens on: it is removed (its replacement starts with
an empty cache). A worker that does not answer within ``TIMEOUT`` seconds is logged and skipped:
it still never serves a replaced model, because each invoke checks the model's load id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
TIMEOUT = 10.0


class Peers:
    def __init__(self, directory: Path, on_sync: Callable[[], object]) -> None:
        self.directory = directory
        self.on_sync = on_sync
        self._server: asyncio.AbstractServer | None = None
        self._path: Path | None = None

    async def listen(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / f"{os.getpid()}.sock"
        self._path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._answer, path=str(self._path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline() == b"sync\n":
                self.on_sync()
                writer.write(b"ok\n")
                await writer.drain()
        finally:
            writer.close()

    def tell_all(self) -> int:
        """Tell every other worker to sync, and wait for each answer; returns how many answered."""
        if not self.directory.is_dir():
            return 0
        mine = f"{os.getpid()}.sock"
        answered = 0
        for path in sorted(self.directory.glob("*.sock")):
            if path.name != mine:
                answered += self._tell(path)
        return answered

    def _tell(self, path: Path) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
                peer.settimeout(TIMEOUT)
                peer.connect(str(path))
                peer.sendall(b"sync\n")
                with peer.makefile("rb") as reply:
                    if reply.readline() == b"ok\n":
                        return True
                log.warning("worker socket %s closed without answering sync", path)
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # its worker is gone
        except OSError as error:  # a timeout included
            log.warning("worker socket %s did not answer sync (%s); it still checks load ids on invoke", path, error)
        return False
