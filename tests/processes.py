"""Waiting on other processes in tests, without sleep loops where the OS can tell us."""

from __future__ import annotations

import os
import select
import subprocess
import threading


def exits_within(pid: int, seconds: float) -> bool:
    """Wait for ``pid`` (any process, not only a child) to exit, on its pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def eventually(check, seconds: float = 10.0) -> bool:
    """Re-check an external process table until ``check()`` holds or time runs out."""
    tick = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if check():
            return True
        tick.wait(0.05)
    return check()


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]
