"""Which models a multi-model server has loaded: name -> (URL, load id), shared by all of its workers.

A JSON file guarded by ``flock``. Loading (add) and unloading (remove) hold the lock, so two
concurrent loads of one name give one success and one conflict, whichever worker gets them.
Every change gets a new generation number, kept in the file and in an 8-byte counter that every
worker maps into memory: a worker re-reads the file exactly when the counter moved, so checking
for changes costs one memory read per request, and no change can be missed (a file's timestamp
and size can stay the same across a quick unload and reload). Each load gets its own id (the
generation that added it), so a worker can tell a reloaded model from the one it holds.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_COUNTER = struct.Struct("<Q")


@dataclass(frozen=True)
class Entry:
    url: str
    load_id: int


class SharedRegistry:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_suffix(".lock")
        counter_path = self.path.with_suffix(".generation")
        self._entries: dict[str, Entry] = {}
        self._generation = -1
        with self._locked():
            if not counter_path.exists() or counter_path.stat().st_size != _COUNTER.size:
                counter_path.write_bytes(_COUNTER.pack(0))
            if not self.path.exists():
                self._write(0, {})
        with open(counter_path, "r+b") as handle:
            self._counter = mmap.mmap(handle.fileno(), _COUNTER.size)  # MAP_SHARED: survives fork

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def generation(self) -> int:
        return _COUNTER.unpack_from(self._counter)[0]

    def entries(self) -> dict[str, Entry]:
        """The current models; re-read only when another change was made since the last read."""
        if self.generation != self._generation:
            state = json.loads(self.path.read_text())
            self._entries = {name: Entry(e["url"], e["load_id"]) for name, e in state["models"].items()}
            self._generation = state["generation"]
        return self._entries

    def models(self) -> dict[str, str]:
        return {name: entry.url for name, entry in self.entries().items()}

    def add(self, name: str, url: str) -> tuple[Entry, bool]:
        """Register ``name``: ``(its entry, True)`` when added, ``(the existing entry, False)`` if present."""
        with self._locked():
            current = dict(self.entries())
            if name in current:
                return current[name], False
            generation = self._generation + 1
            current[name] = Entry(url, generation)
            self._commit(generation, current)
            return current[name], True

    def remove(self, name: str, load_id: int | None = None) -> bool:
        """Unregister ``name`` (only that load of it, when ``load_id`` is given)."""
        with self._locked():
            current = dict(self.entries())
            entry = current.get(name)
            if entry is None or (load_id is not None and entry.load_id != load_id):
                return False
            del current[name]
            self._commit(self._generation + 1, current)
            return True

    def _commit(self, generation: int, models: dict[str, Entry]) -> None:
        self._write(generation, models)  # the file first, then the counter that announces it
        _COUNTER.pack_into(self._counter, 0, generation)
        self._entries, self._generation = models, generation

    def _write(self, generation: int, models: dict[str, Entry]) -> None:
        state = {
            "generation": generation,
            "models": {n: {"url": e.url, "load_id": e.load_id} for n, e in sorted(models.items())},
        }
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.path)
