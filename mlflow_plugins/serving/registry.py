"""Which models a multi-model server has loaded: name -> URL, shared by all of its workers.

A JSON file guarded by ``flock``. Loading (add) and unloading (remove) hold the lock, so two
concurrent loads of one name give one success and one conflict, whichever worker gets them.
Reads are cached until the file changes (one ``stat`` per request).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SharedRegistry:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_suffix(".lock")
        self._cache: dict[str, str] = {}
        self._stamp: tuple[int, int] | None = None
        if not self.path.exists():
            self._write({})

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def models(self) -> dict[str, str]:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._cache = json.loads(self.path.read_text() or "{}")
            self._stamp = stamp
        return self._cache

    def add(self, name: str, url: str) -> str | None:
        """Register ``name``; returns the URL it already has, or ``None`` when it was added."""
        with self._locked():
            current = dict(self.models())
            if name in current:
                return current[name]
            current[name] = url
            self._write(current)
            return None

    def remove(self, name: str) -> bool:
        with self._locked():
            current = dict(self.models())
            if current.pop(name, None) is None:
                return False
            self._write(current)
            return True

    def _write(self, models: dict[str, str]) -> None:
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(models, sort_keys=True))
        os.replace(temporary, self.path)
